"""Gateway overhead: time to first token through the gateway, memory on vs off.

    python -m bench.gateway [--requests 100] [--per-worker 8]

Everything real except the hosted LLM: a Redis server, the memory service (gRPC, with
long-term recall: one query embedding per turn), the gateway under uvicorn, and the fake
Anthropic server answering instantly (no delay) over HTTP/SSE. A client streams
``POST /v1/chat`` and measures the time from sending the request to the first ``delta``
event, at concurrency 1 and 32, against two gateways: memory on (PrepareTurn before the
LLM call, CommitTurn after) and memory off (GATEWAY__MEMORY_ENABLED=false). Writes
bench/results/gateway.{json,md}.

``--drop-in`` measures the pass-through instead: the anthropic SDK streams
``POST /v1/messages`` (forwarded as sent to the fake Anthropic upstream) and times the first
text delta, straight to the fake (direct), through a gateway with memory off, with memory
on (short-term only: no recall, the query embedding excluded) and with memory and recall
on, at concurrency 1 and 32. Writes bench/results/gateway_dropin.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = Path(__file__).resolve().parent / "results"
LABELS = {
    "llm_direct": "SDK → fake LLM (no gateway)",
    "memory_on": "gateway, memory on",
    "memory_off": "gateway, memory off",
}
DROPIN_LABELS = {
    "direct": "SDK → fake upstream (no gateway)",
    "off": "pass-through, memory off",
    "on_norecall": "pass-through, memory on, no recall",
    "on": "pass-through, memory on, recall on",
    "base_off": "baseline code: pass-through, memory off",
    "base_on_norecall": "baseline code: pass-through, memory on, no recall",
}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[idx]


async def one_turn(client: httpx.AsyncClient, url: str, user: str, thread: str) -> float:
    start = time.perf_counter()
    first = None
    async with client.stream(
        "POST",
        url + "/v1/chat",
        json={
            "prompt": "What did I say about my garden last week?",
            "user_id": user,
            "thread_id": thread,
            "stream": True,
        },
    ) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if first is None and line.startswith("event: delta"):
                first = time.perf_counter() - start
    assert first is not None, "no text arrived"
    return first


async def run_level(url: str, concurrency: int, per_worker: int, tag: str) -> list[float]:
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        for w in range(concurrency):  # warm-up: connections, model, thread creation
            await one_turn(client, url, f"{tag}-u{w}", f"{tag}-t{w}")

        async def worker(w: int) -> list[float]:
            return [
                await one_turn(client, url, f"{tag}-u{w}", f"{tag}-t{w}") for _ in range(per_worker)
            ]

        results = await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return [x for r in results for x in r]


async def direct_level(fake_url: str, concurrency: int, per_worker: int) -> list[float]:
    """The same first-token time straight from the fake LLM with the SDK: the baseline."""
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=fake_url, api_key="x", max_retries=0)

    async def turn() -> float:
        start = time.perf_counter()
        async with client.messages.stream(
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": "What did I say about my garden?"}],
        ) as stream:
            first = None
            async for _ in stream.text_stream:
                if first is None:
                    first = time.perf_counter() - start
        assert first is not None
        return first

    for _ in range(concurrency):
        await turn()

    async def worker() -> list[float]:
        return [await turn() for _ in range(per_worker)]

    results = await asyncio.gather(*(worker() for _ in range(concurrency)))
    await client.close()
    return [x for r in results for x in r]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sdk_interleaved(
    targets: dict[str, str], rounds: int, pids: dict[str, dict[str, int]] | None = None
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    """Concurrency 1, one request per target per round, in turn: drift in the shared
    machine's load hits every target alike, so per-round differences are comparable.
    Also returns the CPU milliseconds per request of each target's processes (``pids``:
    target → {"gateway": pid, "memory": pid}), read from /proc around each request."""
    pids = pids or {}
    turns = {name: _sdk_turn(url, f"{name}-c1") for name, url in targets.items()}
    for turn, _close in turns.values():
        await turn(0)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, dict[str, float]] = {n: dict.fromkeys(pids.get(n, {}), 0.0) for n in targets}
    for _ in range(rounds):
        for name, (turn, _close) in turns.items():
            before = {role: cpu_seconds(pid) for role, pid in pids.get(name, {}).items()}
            samples[name].append(await turn(0))
            for role, pid in pids.get(name, {}).items():
                cpu[name][role] += cpu_seconds(pid) - before[role]
    for _turn, close in turns.values():
        await close()
    per_request = {
        n: {role: round(total * 1000 / rounds, 3) for role, total in roles.items()}
        for n, roles in cpu.items()
    }
    return samples, per_request


def _sdk_turn(base_url: str, tag: str) -> tuple[Any, Any]:
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="x", max_retries=0)

    async def turn(w: int) -> float:
        start = time.perf_counter()
        async with client.messages.stream(
            model="m",
            max_tokens=64,
            metadata={"user_id": f"{tag}-u{w}"},
            extra_headers={"X-Mnemo-Thread-Id": f"{tag}-t{w}"},
            messages=[{"role": "user", "content": "What did I say about my garden?"}],
        ) as stream:
            first = None
            async for _ in stream.text_stream:
                if first is None:
                    first = time.perf_counter() - start
        assert first is not None
        return first

    return turn, client.close


async def sdk_level(base_url: str, concurrency: int, per_worker: int, tag: str) -> list[float]:
    """Time to the first text delta of ``messages.stream`` against ``base_url``."""
    import anthropic

    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="x", max_retries=0)

    async def turn(w: int) -> float:
        start = time.perf_counter()
        async with client.messages.stream(
            model="m",
            max_tokens=64,
            metadata={"user_id": f"{tag}-u{w}"},
            extra_headers={"X-Mnemo-Thread-Id": f"{tag}-t{w}"},
            messages=[{"role": "user", "content": "What did I say about my garden?"}],
        ) as stream:
            first = None
            async for _ in stream.text_stream:
                if first is None:
                    first = time.perf_counter() - start
        assert first is not None
        return first

    for w in range(concurrency):  # warm-up: connections, thread creation
        await turn(w)

    async def worker(w: int) -> list[float]:
        return [await turn(w) for _ in range(per_worker)]

    results = await asyncio.gather(*(worker(w) for w in range(concurrency)))
    await client.close()
    return [x for r in results for x in r]


def summarise(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "max_ms": round(max(ms), 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=100, help="requests at concurrency 1")
    p.add_argument("--per-worker", type=int, default=8, help="requests per worker at 32")
    p.add_argument("--drop-in", action="store_true", help="the /v1/messages pass-through")
    p.add_argument(
        "--baseline-src",
        help="with --drop-in: also run the gateway and memory service of this checkout "
        "(e.g. the main branch), interleaved with this one's (rows base_*)",
    )
    args = p.parse_args(argv)
    if args.drop_in:
        return drop_in(args.requests, args.per_worker, args.baseline_src)

    from mnemo_common.logging import configure_logging
    from mnemo_common.testing.fake_llm import FakeAnthropicServer
    from mnemo_common.testing.procs import RedisServer
    from mnemo_gateway.testing.gateway import GatewayServer, gateway_settings
    from mnemo_memory.testing.memory_server import InProcessMemoryServer, build_test_settings

    configure_logging("bench", "ERROR", json_format=False)
    redis = RedisServer().start()
    fake = FakeAnthropicServer().start()
    fake.stream_chunks = 4
    data = Path(tempfile.mkdtemp(prefix="mnemo-bench-gw-"))
    memory = InProcessMemoryServer(
        build_test_settings(redis.url, data, rate_limit={"enabled": False})
    ).start()
    # the first PrepareTurn loads the embedding model: keep that out of the figures
    import grpc
    from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc

    with grpc.insecure_channel(memory.address) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        for i in range(3):
            stub.PrepareTurn(
                memory_pb2.PrepareTurnRequest(
                    user_id="warmup", thread_id="warmup", query=f"warm up {i}"
                ),
                timeout=120,
            )
    gateways = {
        "memory_on": GatewayServer(
            gateway_settings(
                fake, memory.address, llm={"max_retries": 0}, gateway={"memory_timeout_s": 30}
            )
        ).start(),
        "memory_off": GatewayServer(gateway_settings(fake, None, llm={"max_retries": 0})).start(),
    }
    results: dict[str, Any] = {}
    try:
        # baseline at concurrency 1 only: the fake's small accept backlog is not under test
        results["llm_direct/c1"] = summarise(asyncio.run(direct_level(fake.url, 1, args.requests)))
        print("direct", results["llm_direct/c1"])
        for name, gw in gateways.items():
            for conc, per in ((1, args.requests), (32, args.per_worker)):
                samples = asyncio.run(run_level(gw.url, conc, per, f"{name}-c{conc}"))
                results[f"{name}/c{conc}"] = summarise(samples)
                print(name, conc, results[f"{name}/c{conc}"])
    finally:
        for gw in gateways.values():
            gw.stop()
        memory.stop()
        fake.stop()
        redis.stop()

    doc = {
        "benchmark": "gateway",
        "what": "time to first token through POST /v1/chat (SSE), instant fake LLM",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gateway.json").write_text(json.dumps(doc, indent=2) + "\n")
    rows = "\n".join(
        f"| {LABELS[k.split('/')[0]]} | {k.split('/')[1][1:]} | {v['n']} | "
        f"{v['p50_ms']} | {v['p99_ms']} | {v['mean_ms']} |"
        for k, v in results.items()
    )
    on1, off1 = results["memory_on/c1"], results["memory_off/c1"]
    direct1 = results["llm_direct/c1"]
    (RESULTS / "gateway.md").write_text(f"""# Gateway overhead: time to first token

| path | concurrency | requests | p50 ms | p99 ms | mean ms |
|---|---|---|---|---|---|
{rows}

Method: `python -m bench.gateway`. One process hosts a real Redis (child process), the
memory service (grpc.aio, in-process thread, long-term recall on), two gateways under
uvicorn (memory on / GATEWAY__MEMORY_ENABLED=false) and the fake Anthropic server, which
answers instantly over HTTP/SSE; an httpx client streams `POST /v1/chat` and times the
first `delta` event. The first row is the baseline: the anthropic SDK streaming straight
from the same fake (no gateway), so gateway overhead = gateway row - baseline row. Each
client worker continues its own thread (history grows to the
50-message cap) after one warm-up turn. Machine: {os.cpu_count()} CPUs shared with the
other processes of the build; treat absolute numbers as indicative. At concurrency 1 the
memory round trips (PrepareTurn with one query embedding before the LLM call; CommitTurn
runs after the last token and is not in this figure) add
{round(on1["p50_ms"] - off1["p50_ms"], 1)} ms at the median; the gateway without memory adds
{round(off1["p50_ms"] - direct1["p50_ms"], 1)} ms over calling the LLM directly (within noise:
the ~50 ms floor of every row is the fake server's first SSE write, not Mnemo). At
concurrency 32 the client, both gateways, the memory service and the fake share one Python
process (one GIL) and 2 cores, so those rows measure saturation of this machine more than
the gateway; the memory-on/off difference there is the cost of PrepareTurn under load.
""")
    return 0


def _pid(proc: Any) -> int:
    return int(proc.proc.pid)


def _cpu_rows(cpu_ms: dict[str, dict[str, float]]) -> str:
    return "\n".join(
        f"| {DROPIN_LABELS[name]} | {roles.get('gateway', '—')} | {roles.get('memory', '—')} |"
        for name, roles in cpu_ms.items()
        if roles
    )


def _baseline_line(added: dict[str, float]) -> str:
    if "base_off" not in added:
        return ""
    return (
        f"Baseline code in the same run: memory off {added['base_off']} ms, memory on "
        f"without recall {added['base_on_norecall']} ms."
    )


def drop_in(requests: int, per_worker: int, baseline_src: str | None = None) -> int:
    """The pass-through overhead (see the module docstring)."""
    from mnemo_common.testing.procs import RedisServer

    from .serve import start

    redis = RedisServer().start()
    data = Path(tempfile.mkdtemp(prefix="mnemo-bench-dropin-"))
    procs = []
    try:
        fake_url, p = start("fake")
        procs.append(p)
        short_addr, p = start("memory", redis_url=redis.url, data_dir=str(data / "s"), recall=False)
        procs.append(p)
        memory_pid = {short_addr: _pid(p)}
        recall_addr, p = start("memory", redis_url=redis.url, data_dir=str(data / "r"))
        procs.append(p)
        memory_pid[recall_addr] = _pid(p)
        import grpc
        from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc

        with grpc.insecure_channel(recall_addr) as channel:  # load the embedding model
            stub = memory_pb2_grpc.MemoryServiceStub(channel)
            for i in range(3):
                stub.PrepareTurn(
                    memory_pb2.PrepareTurnRequest(user_id="w", thread_id="w", query=f"warm {i}"),
                    timeout=120,
                )
        gateways: dict[str, str] = {}
        pids: dict[str, dict[str, int]] = {}
        for name, addr in (("off", None), ("on_norecall", short_addr), ("on", recall_addr)):
            gateways[name], p = start("gateway", fake_url=fake_url, memory_addr=addr)
            procs.append(p)
            pids[name] = {"gateway": _pid(p), **({"memory": memory_pid[addr]} if addr else {})}
        if baseline_src:
            base_short, p = start(
                "memory", baseline_src, redis_url=redis.url, data_dir=str(data / "b"), recall=False
            )
            procs.append(p)
            memory_pid[base_short] = _pid(p)
            for name, addr in (("base_off", None), ("base_on_norecall", base_short)):
                gateways[name], p = start(
                    "gateway", baseline_src, fake_url=fake_url, memory_addr=addr
                )
                procs.append(p)
                pids[name] = {
                    "gateway": _pid(p),
                    **({"memory": memory_pid[addr]} if addr else {}),
                }
    except BaseException:
        for p in procs:
            p.stop()
        redis.stop()
        raise
    results: dict[str, Any] = {}
    try:
        targets = {"direct": fake_url, **gateways}
        c1, cpu_ms = asyncio.run(sdk_interleaved(targets, requests, pids))
        print("CPU ms per request", cpu_ms)
        for name in targets:
            results[f"{name}/c1"] = summarise(c1[name])
            print(name, 1, results[f"{name}/c1"])
        for name, url in targets.items():
            samples = asyncio.run(sdk_level(url, 32, per_worker, f"{name}-c32"))
            results[f"{name}/c32"] = summarise(samples)
            print(name, 32, results[f"{name}/c32"])
        paired = {
            k: round(
                statistics.median((a - b) * 1000 for a, b in zip(c1[k], c1["direct"], strict=True)),
                2,
            )
            for k in gateways
        }
    finally:
        for p in procs:
            p.stop()
        redis.stop()
    doc = {
        "benchmark": "gateway_dropin",
        "what": "time to first text delta, anthropic SDK messages.stream, POST /v1/messages "
        "forwarded as sent to the instant fake Anthropic upstream",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
        "added_p50_ms_c1_paired": paired,
        "cpu_ms_per_request_c1": cpu_ms,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gateway_dropin.json").write_text(json.dumps(doc, indent=2) + "\n")
    rows = "\n".join(
        f"| {DROPIN_LABELS[k.split('/')[0]]} | {k.split('/')[1][1:]} | {v['n']} | "
        f"{v['p50_ms']} | {v['p99_ms']} | {v['mean_ms']} |"
        for k, v in results.items()
    )
    added = paired
    (
        RESULTS / "gateway_dropin.md"
    ).write_text(f"""# Drop-in pass-through overhead: time to first token

| path | concurrency | requests | p50 ms | p99 ms | mean ms |
|---|---|---|---|---|---|
{rows}

Added over direct at concurrency 1 (median of the per-round differences): memory off
{added["off"]} ms, memory on without recall {added["on_norecall"]} ms (target ≤ 3 ms),
memory on with recall {added["on"]} ms (PrepareTurn's query embedding included).
{_baseline_line(added)}

CPU time per request at concurrency 1 (ms, from /proc, user + system; steadier than
latency on a shared machine):

| path | gateway process | memory service process |
|---|---|---|
{_cpu_rows(cpu_ms)}

Method: `python -m bench.gateway --drop-in --requests {requests} --per-worker {per_worker}`.
Every component runs in its own process, as in a deployment (`bench/serve.py`): a real
Redis, two memory services (short-term only, and with long-term recall), the gateways
under uvicorn and the fake Anthropic server (instant, TCP_NODELAY); the bench process runs
only the anthropic SDK client, which streams `POST /v1/messages` and times the first text
delta. Every row uses the same SDK and body; "direct" streams from the fake without a
gateway; `base_*` rows (with `--baseline-src`) run another checkout's gateway and memory
service in the same run. At concurrency 1 the targets take turns, one request each per
round, so the machine's changing load hits them alike. {os.cpu_count()} CPU cores, shared
with other work: at concurrency 32 the rows show saturation of this machine as much as
the gateway.
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
