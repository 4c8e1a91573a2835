"""One benchmark component in its own process, as a deployment runs it.

    python -m bench.serve KIND READY_FILE [JSON_OPTIONS]

KIND is ``fake`` (the fake Anthropic upstream), ``memory`` (the memory service;
``{"redis_url", "data_dir", "recall": bool}``), ``longterm`` (the memory service with
long-term recall on a given vector backend, filled with ``bench.longterm``'s synthetic
facts before it reports ready; ``{"redis_url", "data_dir", "backend", "users", "facts",
"vectors", "settings"}``) or ``gateway`` (``{"fake_url", "memory_addr"}``). The
process writes its address to READY_FILE once it serves (a memory service: its gRPC address
and its memory-wire address, which gateways started against it then use, as ``make run``
does), then runs until SIGTERM.
:func:`start` launches one and waits for that file. The benchmarks use it so that the
client, the gateway, the memory service and the fake upstream each have their own
interpreter (and GIL), like separate pods, instead of sharing one.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mnemo_common.testing.procs import ManagedProcess

ROOT = Path(__file__).resolve().parent.parent


class _FakeRef:
    """What ``gateway_settings`` needs of a fake LLM server that runs elsewhere."""

    def __init__(self, url: str) -> None:
        self.url = url

    def env(self, **llm: Any) -> dict[str, str]:
        from mnemo_common.testing.fake_llm import FakeAnthropicServer

        return FakeAnthropicServer.env(self, **llm)  # type: ignore[arg-type]


def _serve(kind: str, opts: dict[str, Any]) -> tuple[str, Any]:
    from mnemo_common.logging import configure_logging

    configure_logging("bench", "ERROR", json_format=False)
    if kind == "fake":
        from mnemo_common.testing.fake_llm import FakeAnthropicServer

        fake = FakeAnthropicServer().start()
        fake.set_default_reply(opts.get("reply", "Your garden has tomatoes and a fig tree."))
        return fake.url, fake
    if kind == "memory":
        from mnemo_memory.testing.memory_server import InProcessMemoryServer, build_test_settings

        settings = build_test_settings(
            opts["redis_url"], Path(opts["data_dir"]), rate_limit={"enabled": False}
        )
        if opts.get("recall", True):
            server = InProcessMemoryServer(settings).start()
        else:
            server = InProcessMemoryServer(settings, longterm=None).start()
        wire = getattr(server, "wire_port", 0)  # a --baseline-src checkout may have none
        return server.address + (f" {server.wire_address}" if wire else ""), server
    if kind == "longterm":
        return _serve_longterm(opts)
    if kind == "gateway":
        from mnemo_gateway.testing.gateway import GatewayServer, gateway_settings

        gw: dict[str, Any] = {"memory_timeout_s": 30}
        if opts.get("memory_wire_addr"):  # the memory service's wire, as make run sets it
            gw["memory_wire_addr"] = opts["memory_wire_addr"]
        settings = gateway_settings(
            _FakeRef(opts["fake_url"]), opts.get("memory_addr"), llm={"max_retries": 0}, gateway=gw
        )
        server = GatewayServer(settings).start()
        return server.url, server
    raise SystemExit(f"unknown component {kind!r}")


def _serve_longterm(opts: dict[str, Any]) -> tuple[str, Any]:
    """The memory service as deployed (``create_server``'s own long-term memory), its
    vector store filled through the service's store (keyword index maintained)."""
    import numpy as np
    from mnemo_common.testing.dicts import deep_merge
    from mnemo_memory.config import build_settings
    from mnemo_memory.testing.memory_server import InProcessMemoryServer

    from bench.longterm import fill_store, synthetic_facts

    base: dict[str, Any] = {
        "redis": {"key_prefix": "bench"},
        "server": {"host": "127.0.0.1", "grpc_port": 0, "metrics_port": 0},
        "vector": {
            "backend": opts["backend"],
            "chroma_path": str(Path(opts["data_dir"]) / "chroma"),
        },
        "rate_limit": {"enabled": False},
        "worker": {"metrics_port": 0},
    }
    settings = build_settings(
        redis_url=opts["redis_url"], **deep_merge(base, opts.get("settings", {}))
    )
    server = InProcessMemoryServer(settings).start()
    texts = synthetic_facts(int(opts["facts"]))
    vectors = np.load(opts["vectors"])

    async def fill(handles: Any) -> float:
        await handles.longterm.open()  # the model and the store, as the server's warm-up
        return await fill_store(handles.longterm, int(opts["users"]), texts, vectors)

    insert_s = server.run(fill, timeout=1800)
    (Path(opts["data_dir"]) / "insert_s").write_text(f"{insert_s:.1f}")
    return server.address, server


def main(argv: list[str]) -> int:
    kind, ready = argv[0], Path(argv[1])
    opts = json.loads(argv[2]) if len(argv) > 2 else {}
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    address, server = _serve(kind, opts)
    tmp = ready.with_suffix(".tmp")
    tmp.write_text(address)
    tmp.rename(ready)  # the parent never reads a half-written address
    done.wait()
    server.stop()
    return 0


#: gRPC address -> memory-wire address of the memory services this process started
_WIRES: dict[str, str] = {}


def start(kind: str, src: str | None = None, **opts: Any) -> tuple[str, ManagedProcess]:
    """Launch one component; returns its address (URL or host:port) and its process.
    ``src``: run the code of another checkout (its libs/ and services/), e.g. the
    baseline of a before/after comparison."""
    if kind == "gateway" and _WIRES.get(opts.get("memory_addr") or ""):
        opts = {**opts, "memory_wire_addr": _WIRES[opts["memory_addr"]]}
    tmp = Path(tempfile.mkdtemp(prefix=f"mnemo-bench-{kind}-"))
    ready = tmp / "ready"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    if src is not None:
        base = Path(src).resolve()
        env["PYTHONPATH"] = os.pathsep.join(
            str(base / d) for d in ("libs", "services/memory", "services/gateway")
        )
    argv = [sys.executable, "-m", "bench.serve", kind, str(ready), json.dumps(opts)]
    proc = ManagedProcess(argv, env=env, cwd=ROOT, log_path=tmp / "log").start()
    deadline = time.monotonic() + 180
    while not ready.exists():
        if not proc.running or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"{kind} did not start:\n{proc.log_tail()}")
        time.sleep(0.1)
    address, _, wire = ready.read_text().partition(" ")
    if wire:  # a memory service's wire: the gateways started against it use it
        _WIRES[address] = wire
    return address, proc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
