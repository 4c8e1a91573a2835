#!/usr/bin/env python3
"""``make run``: the whole platform on one machine, in one terminal.

Starts, in order: a local Redis (AOF on, data in ``<var>/redis``), the memory service with
embedded Chroma in ``<var>/chroma`` and the extraction worker running inside it (an embedded
store belongs to one process; ``SERVER__RUN_WORKER``), and the gateway on
http://127.0.0.1:8000. ``--chroma server`` instead runs a local ``chroma run`` process and
the worker as its own process, as in Kubernetes. Logs are readable text, one line per
record, prefixed by process.
Ctrl-C (or SIGTERM) stops everything in reverse order; data survives a restart.

No ``ANTHROPIC_API_KEY`` → the offline provider (labelled as such in the logs and the page).
Facts are extracted after every turn (``MEMORY__EXTRACT_EVERY_MESSAGES=2`` unless set),
so what you just said is remembered in your next conversation.

    python scripts/devrun.py [--port 8000] [--memory-port 50051] [--wire-port 50052]
                             [--redis-port 6379]
                             [--chroma embedded|server] [--chroma-port 8001]
                             [--var-dir ./var] [--no-worker]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "libs"))

from mnemo_common.testing.procs import (  # noqa: E402
    free_port,
    port_open,
    redis_server_binary,
)

COLORS = {
    "chroma": "33",
    "redis": "31",
    "memory": "32",
    "worker": "35",
    "gateway": "36",
    "devrun": "1",
}
_print_lock = threading.Lock()


def say(name: str, line: str) -> None:
    tty = sys.stdout.isatty()
    tag = f"{name:<8}|"
    if tty:
        tag = f"\033[{COLORS.get(name, '0')}m{tag}\033[0m"
    with _print_lock:
        sys.stdout.write(f"{tag} {line}\n")
        sys.stdout.flush()


class Child:
    """One process of the platform, its output prefixed and relayed line by line."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], optional: bool = False
    ) -> None:
        self.name, self.argv, self.env, self.optional = name, argv, env, optional
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        # own process group: the terminal's Ctrl-C reaches devrun only, which then stops
        # the children in order
        self.proc = subprocess.Popen(  # noqa: S603
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._relay, daemon=True).start()
        return self

    def _relay(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            say(self.name, raw.decode("utf-8", "replace").rstrip())

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                say("devrun", f"{self.name} did not stop in {timeout:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        say("devrun", f"{self.name} stopped (exit code {self.proc.returncode})")


class Stop(Exception):
    pass


def wait_until(check, what: str, child: Child, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.running:
            raise Stop(f"{child.name} exited while starting (see its log above)")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise Stop(f"{what} not ready after {timeout:.0f}s")


def grpc_serving(port: int, service: str = "") -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        resp = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=1
        )
    return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str) -> bool:
    import httpx

    return httpx.get(url, timeout=1).status_code == 200


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--port",
        type=int,
        default=int(env("GATEWAY__PORT", "8000")),
        help="gateway HTTP port (web page, API)",
    )
    p.add_argument("--memory-port", type=int, default=int(env("SERVER__GRPC_PORT", "50051")))
    p.add_argument(
        "--wire-port",
        type=int,
        default=int(env("SERVER__WIRE_PORT", "50052")),
        help="the memory wire (ADR 0032): the gateway's memory calls; 0 = gRPC only",
    )
    p.add_argument("--redis-port", type=int, default=int(env("MNEMO_DEV_REDIS_PORT", "6379")))
    p.add_argument("--chroma-port", type=int, default=int(env("MNEMO_DEV_CHROMA_PORT", "8001")))
    p.add_argument(
        "--metrics-ports",
        default="auto",
        help="memory,worker Prometheus ports ('auto' = free ports)",
    )
    p.add_argument(
        "--var-dir",
        default=env("MNEMO_VAR_DIR", str(ROOT / "var")),
        help="where Redis (AOF) and Chroma keep their data",
    )
    p.add_argument(
        "--chroma",
        choices=("embedded", "server"),
        default=env("MNEMO_DEV_CHROMA", "embedded"),
        help="embedded: Chroma and the worker inside the memory service (default); "
        "server: a local `chroma run` and a separate worker process",
    )
    p.add_argument("--no-worker", action="store_true", help="do not start the worker")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    var = Path(args.var_dir).resolve()
    (var / "redis").mkdir(parents=True, exist_ok=True)
    (var / "chroma").mkdir(parents=True, exist_ok=True)
    if args.metrics_ports == "auto":
        mem_metrics, worker_metrics = free_port(), free_port()
    else:
        mem_metrics, worker_metrics = (int(x) for x in args.metrics_ports.split(","))
    for name, port in (
        ("gateway", args.port),
        ("memory", args.memory_port),
        ("wire", args.wire_port),
        ("redis", args.redis_port),
        ("chroma", args.chroma_port if args.chroma == "server" else 0),
    ):
        if port and port_open(port):
            say(
                "devrun",
                f"port {port} ({name}) is already in use; pick another with --"
                f"{'port' if name == 'gateway' else name + '-port'}",
            )
            return 1

    bin_dir = Path(sys.executable).parent
    redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
    chroma_url = f"http://127.0.0.1:{args.chroma_port}"
    base = {
        **os.environ,
        "LOG__JSON": "false",
        "PYTHONUNBUFFERED": "1",
        "REDIS_URL": redis_url,
        "CHROMADB_URL": chroma_url,
        "VECTOR__CHROMA_PATH": str(var / "chroma"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        # on a laptop, learn from every turn (the cluster default, 10 messages, is seed
        # 000's cost trade-off): what you just said is remembered in your next thread
        "MEMORY__EXTRACT_EVERY_MESSAGES": os.environ.get("MEMORY__EXTRACT_EVERY_MESSAGES", "2"),
    }
    embedded = args.chroma == "embedded"
    if embedded:
        base.pop("CHROMADB_URL")
    if not base.get("ANTHROPIC_API_KEY") and not base.get("LLM__PROVIDER"):
        say("devrun", "no ANTHROPIC_API_KEY: the OFFLINE provider answers (not a real model)")

    children = [
        Child(
            "redis",
            [
                redis_server_binary(),
                "--port",
                str(args.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(var / "redis"),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "no",
                "--maxmemory-policy",
                "noeviction",
                # one job per stream node: an erased job leaves no bytes in the AOF (ADR 0013)
                "--stream-node-max-entries",
                "1",
            ],
            base,
        ),
        Child(
            "chroma",
            [
                str(bin_dir / "chroma"),
                "run",
                "--path",
                str(var / "chroma"),
                "--host",
                "127.0.0.1",
                "--port",
                str(args.chroma_port),
            ],
            base,
        ),
        Child(
            "memory",
            [str(bin_dir / "mnemo-memory"), "serve"],
            {
                **base,
                "SERVER__GRPC_PORT": str(args.memory_port),
                "SERVER__WIRE_PORT": str(args.wire_port),
                "SERVER__HOST": "127.0.0.1",
                "SERVER__METRICS_PORT": str(mem_metrics),
                "SERVER__METRICS_HOST": "127.0.0.1",
                # loopback only, so grpcurl may discover the API (off by default elsewhere)
                "SERVER__REFLECTION": "true",
                "SERVER__GRACE_S": "3",
                "SERVER__RUN_WORKER": "true" if embedded and not args.no_worker else "false",
            },
        ),
        Child(
            "worker",
            [str(bin_dir / "mnemo-memory"), "worker"],
            {
                **base,
                "WORKER__METRICS_PORT": str(worker_metrics),
                "WORKER__METRICS_HOST": "127.0.0.1",
            },
            optional=True,
        ),
        Child(
            "gateway",
            [str(bin_dir / "mnemo-gateway")],
            {
                **base,
                "GATEWAY__PORT": str(args.port),
                "GATEWAY__HOST": "127.0.0.1",
                "GATEWAY__MEMORY_ADDR": f"127.0.0.1:{args.memory_port}",
                "GATEWAY__MEMORY_WIRE_ADDR": f"127.0.0.1:{args.wire_port}"
                if args.wire_port
                else "",
            },
        ),
    ]
    if args.no_worker or embedded:
        children = [c for c in children if c.name != "worker"]
    if embedded:
        children = [c for c in children if c.name != "chroma"]
    started: list[Child] = []
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    pids_file = var / "devrun.pids"
    try:
        for child in children:
            if stopping.is_set():
                raise Stop("interrupted")
            started.append(child.start())
            if child.name == "redis":
                wait_until(lambda: _redis_ping(redis_url), "redis", child, 30)
            elif child.name == "chroma":
                wait_until(lambda: http_ok(f"{chroma_url}/api/v2/heartbeat"), "chroma", child, 60)
            elif child.name == "memory":
                wait_until(lambda: grpc_serving(args.memory_port), "memory service", child)
                # the first chat should already recall: wait for the embedding model
                wait_until(
                    lambda: grpc_serving(args.memory_port, "mnemo.memory.v1.Recall"),
                    "long-term memory (embedding model)",
                    child,
                    180,
                )
                if embedded and not args.no_worker:  # the worker runs inside it
                    name = consumer_of(child)
                    wait_until(
                        lambda name=name: _consuming(redis_url, name),
                        "worker (job stream)",
                        child,
                        180,
                    )
            elif child.name == "worker":
                # it loads its own embedding model, then reads the job stream: until then a
                # turn's facts wait in the stream and the Try-it's next question recalls nothing
                name = consumer_of(child)
                wait_until(
                    lambda name=name: _consuming(redis_url, name),
                    "worker (embedding model, job stream)",
                    child,
                    180,
                )
            elif child.name == "gateway":
                wait_until(
                    lambda: http_ok(f"http://127.0.0.1:{args.port}/healthz"), "gateway", child, 60
                )
        pids_file.write_text(json.dumps({c.name: c.proc.pid for c in started if c.proc}))
        say("devrun", f"Mnemo is up: http://127.0.0.1:{args.port}  (Ctrl-C stops everything)")
        while not stopping.wait(0.5):
            for child in started:
                if not child.running and child.proc is not None:
                    if child.optional:
                        say(
                            "devrun",
                            f"{child.name} exited (code {child.proc.returncode}); "
                            "the rest keeps running",
                        )
                        started.remove(child)
                        break
                    raise Stop(f"{child.name} exited (code {child.proc.returncode})")
    except Stop as exc:
        if not stopping.is_set():
            say("devrun", f"stopping: {exc}")
            code = 1
    finally:
        say("devrun", "stopping…")
        for child in reversed(started):
            child.stop()
        with contextlib.suppress(FileNotFoundError):
            pids_file.unlink()
    return code


def consumer_of(child: Child) -> str:
    """The worker's consumer name in the job stream's group (``default_consumer_name``)."""
    assert child.proc is not None
    return child.env.get("WORKER__CONSUMER_NAME") or f"{socket.gethostname()}-{child.proc.pid}"


def _consuming(url: str, consumer: str) -> bool:
    """``consumer`` reads the job stream: it is in the ``workers`` group of
    ``{REDIS__KEY_PREFIX}:jobs`` (a worker joins it only once its model is loaded; its pid
    in the name tells it from the consumers of earlier runs, kept in the AOF)."""
    import redis

    prefix = os.environ.get("REDIS__KEY_PREFIX", "mnemo")
    client = redis.Redis.from_url(url, socket_timeout=0.5)
    try:
        consumers = client.xinfo_consumers(f"{prefix}:jobs", "workers")
    finally:
        client.close()
    return any(c["name"] in (consumer, consumer.encode()) for c in consumers)


def _redis_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=0.5)
    try:
        return bool(client.ping())
    finally:
        client.close()


if __name__ == "__main__":
    raise SystemExit(main())
