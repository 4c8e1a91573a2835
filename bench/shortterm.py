"""Short-term memory benchmark: PrepareTurn / CommitTurn through the real service vs the
floor (a raw redis-py pipeline doing the same reads and writes).

    python -m bench.shortterm [--threads 10000] [--ops 2000] [--ops32 8000]
                              [--baseline-src ../main]

Starts a private redis-server and a ``mnemo-memory serve`` subprocess, preloads
``--threads`` threads (5 turns each) over 1,000 users, then measures at concurrency 1
and 32 from one asyncio client process. Writes bench/results/shortterm.{json,md}.
``--baseline-src`` also runs another checkout's memory service (e.g. the main branch) on
the same Redis and data, measured right after this one's in the same run (rows marked
"baseline code", each with its own floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo.memory.v1 import memory_pb2_grpc
from mnemo_common.testing.procs import RedisServer
from mnemo_memory.config import build_settings
from mnemo_memory.stores.shortterm import build_stores
from mnemo_memory.testing.memory_server import MemoryServiceProcess

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
USERS = 1000
PREFIX = "bench"


def thread_of(i: int) -> tuple[str, str]:
    return f"user-{i % USERS}", f"thread-{i}"


async def preload(redis_url: str, threads: int) -> None:
    settings = build_settings(redis_url=redis_url, redis={"key_prefix": PREFIX})
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=64)
    stores = build_stores(settings, client)
    await stores.jobs.ensure_group()
    sem = asyncio.Semaphore(64)

    async def one(i: int, turn: int) -> None:
        uid, tid = thread_of(i)
        async with sem:
            await stores.threads.append_turn(
                uid,
                tid,
                f"pre-{turn}",
                f"user message {turn} " + "x" * 200,
                f"assistant answer {turn} " + "y" * 400,
            )

    for turn in range(5):
        await asyncio.gather(*(one(i, turn) for i in range(threads)))
    for u in range(USERS):
        await stores.preferences.set(f"user-{u}", "language", "Python")
    # the benchmark measures the chat path, not the worker: drop the preload's jobs
    await client.delete(stores.jobs.stream)
    await stores.jobs.ensure_group()
    await client.aclose()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return {
        "p50_ms": round(pct(0.50), 3),
        "p99_ms": round(pct(0.99), 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


async def run_load(op: Any, total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            start = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {**percentiles(latencies), "ops_per_s": round(total / elapsed, 1), "ops": total}


def service_ops(stub: Any, threads: int, run_id: str) -> dict[str, Any]:
    async def prepare(i: int) -> None:
        uid, tid = thread_of((i * 7919) % threads)
        await stub.PrepareTurn(
            pb.PrepareTurnRequest(
                user_id=uid,
                thread_id=tid,
                query="what next?",
                count_rate_limit=True,
                recall=pb.RecallOptions(disabled=True),
            )
        )

    async def commit(i: int) -> None:
        uid, tid = thread_of((i * 7919) % threads)
        await stub.CommitTurn(
            pb.CommitTurnRequest(
                user_id=uid,
                thread_id=tid,
                idempotency_key=f"{run_id}-{i}",
                user_message="user message " + "x" * 200,
                assistant_message="assistant answer " + "y" * 400,
            )
        )

    return {"PrepareTurn": prepare, "CommitTurn": commit}


def floor_ops(client: Any, threads: int, run_id: str) -> dict[str, Any]:
    """The same Redis work as the service, issued directly: one MULTI pipeline each."""
    p = PREFIX
    day, hour = 86_400_000, 3_600_000

    async def prepare(i: int) -> None:
        uid, tid = thread_of((i * 7919) % threads)
        base = f"{p}:u:{{{uid}}}"
        now = int(time.time() * 1000)
        pipe = client.pipeline(transaction=True)
        for name, win in (("minute", 60_000), ("hour", hour), ("day", day)):
            pipe.hincrby(f"{base}:ratelimit", f"{name}:{now // win}", 1)
        pipe.pexpire(f"{base}:ratelimit", 2 * day)
        pipe.get(f"{p}:t:{tid}:owner")
        pipe.lrange(f"{base}:t:{tid}:messages", 0, -1)
        pipe.get(f"{base}:t:{tid}:summary")
        pipe.hgetall(f"{base}:prefs")
        await pipe.execute()

    async def commit(i: int) -> None:
        uid, tid = thread_of((i * 7919) % threads)
        base, tbase = f"{p}:u:{{{uid}}}", f"{p}:u:{{{uid}}}:t:{tid}"
        now = int(time.time() * 1000)
        key = f"{run_id}-{i}"
        msg_u = json.dumps(
            {
                "id": key + "u",
                "role": "user",
                "created_at_ms": now,
                "content": "user message " + "x" * 200,
            }
        )
        msg_a = json.dumps(
            {
                "id": key + "a",
                "role": "assistant",
                "created_at_ms": now,
                "content": "assistant answer " + "y" * 400,
            }
        )
        pipe = client.pipeline(transaction=True)
        pipe.zscore(f"{tbase}:idem", key)
        pipe.rpush(f"{tbase}:messages", msg_u, msg_a)
        pipe.ltrim(f"{tbase}:messages", -50, -1)
        pipe.hincrby(f"{tbase}:meta", "total_messages", 2)
        pipe.hset(f"{tbase}:meta", mapping={"updated_at_ms": now, "message_count": 50})
        pipe.zadd(f"{tbase}:idem", {key: now})
        pipe.zadd(f"{base}:threads", {tid: now})
        for k in ("messages", "meta", "idem"):
            pipe.pexpire(f"{tbase}:{k}", day)
        pipe.pexpire(f"{base}:threads", day)
        pipe.set(f"{p}:t:{tid}:owner", uid, px=day)
        pipe.zadd(f"{p}:threads:activity", {f"{uid}:{tid}": now})
        await pipe.execute()

    return {"PrepareTurn": prepare, "CommitTurn": commit}


async def measure(
    address: str, redis_url: str, threads: int, ops: dict[int, int]
) -> list[dict[str, Any]]:
    rows = []
    channel = grpc.aio.insecure_channel(address)
    stub = memory_pb2_grpc.MemoryServiceStub(channel)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True, max_connections=64)
    run_id = uuid.uuid4().hex[:8]
    service, floor = service_ops(stub, threads, run_id), floor_ops(client, threads, run_id + "f")
    for name in ("PrepareTurn", "CommitTurn"):
        for conc, total in ops.items():
            await run_load(service[name], min(200, total), conc)  # warm-up
            await run_load(floor[name], min(200, total), conc)
            svc = await run_load(service[name], total, conc)
            flo = await run_load(floor[name], total, conc)
            rows.append(
                {
                    "rpc": name,
                    "concurrency": conc,
                    "service": svc,
                    "floor": flo,
                    "added_p50_ms": round(svc["p50_ms"] - flo["p50_ms"], 3),
                    "ratio_p50": round(svc["p50_ms"] / flo["p50_ms"], 2),
                }
            )
            print(
                f"{name:12s} c={conc:<3d} service p50 {svc['p50_ms']:.3f} ms "
                f"p99 {svc['p99_ms']:.3f} ms {svc['ops_per_s']:.0f}/s | floor p50 "
                f"{flo['p50_ms']:.3f} ms p99 {flo['p99_ms']:.3f} ms "
                f"{flo['ops_per_s']:.0f}/s",
                flush=True,
            )
    # the bare gRPC hop (health Check: no Redis) shows how much of "added" is transport
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health = health_pb2_grpc.HealthStub(channel)

    async def hop(i: int) -> None:
        await health.Check(health_pb2.HealthCheckRequest(service=""))

    for conc, total in ops.items():
        await run_load(hop, min(200, total), conc)
        h = await run_load(hop, total, conc)
        rows.append({"rpc": "grpc_hop", "concurrency": conc, "service": h})
        print(
            f"gRPC hop     c={conc:<3d} p50 {h['p50_ms']:.3f} ms p99 {h['p99_ms']:.3f} ms "
            f"{h['ops_per_s']:.0f}/s",
            flush=True,
        )
    await channel.close()
    await client.aclose()
    return rows


def write_results(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shortterm.json").write_text(
        json.dumps({"meta": meta, "results": rows}, indent=2) + "\n"
    )
    lines = [
        "## Short-term memory (PrepareTurn / CommitTurn)\n",
        f"{meta['threads']:,} threads preloaded (5 turns each, {USERS:,} users); "
        f"Redis {meta['redis_version']}; {meta['cpus']} CPU cores shared by the Redis server, "
        "the memory service and the load generator.\n",
        "| RPC | concurrency | service p50 / p99 (ms) | service ops/s | floor p50 / p99 (ms) "
        "| floor ops/s | added p50 (ms) | p50 ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    hops = {
        r["concurrency"]: r["service"]
        for r in rows
        if r["rpc"] == "grpc_hop" and not r.get("baseline")
    }
    for r in rows:
        if r["rpc"] == "grpc_hop":
            continue
        s, f = r["service"], r["floor"]
        name = f"{r['rpc']} (baseline code)" if r.get("baseline") else r["rpc"]
        lines.append(
            f"| {name} | {r['concurrency']} | {s['p50_ms']:.2f} / {s['p99_ms']:.2f}"
            f" | {s['ops_per_s']:,.0f} | {f['p50_ms']:.2f} / {f['p99_ms']:.2f} | "
            f"{f['ops_per_s']:,.0f} | {r['added_p50_ms']:+.2f} | {r['ratio_p50']:.1f}x |"
        )
    lines += [
        "",
        "The bare gRPC round trip (grpc.health.v1 `Check`, no Redis) on the same channel: "
        + ", ".join(
            f"concurrency {c}: p50 {h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms, "
            f"{h['ops_per_s']:,.0f}/s"
            for c, h in sorted(hops.items())
        )
        + " — most of what the service adds over the floor at concurrency 1 is this hop "
        "(Python grpc.aio on both ends), not the Redis work.",
        "",
        "**Method.** A private `redis-server` and a real `mnemo-memory serve` process "
        "(short-term only for this run: recall disabled per request; rate limiting on, "
        "counted) run on this machine. One asyncio client process drives the gRPC API "
        "(grpc.aio) and, for the floor, issues the same Redis reads and writes directly "
        "with redis-py asyncio in one MULTI pipeline per call — PrepareTurn: the rate-limit "
        "counters, owner, messages, summary and preferences; CommitTurn: the idempotency "
        "check, append, trim, metadata, indexes, TTLs, owner and activity index. Calls pick "
        "threads spread over all preloaded threads; each figure is from "
        f"{meta['ops']} calls at concurrency 1 and {meta['ops32']} at 32, after a warm-up. "
        "The service's extra cost is the gRPC hop (client and server are Python), protobuf, "
        "validation, the Lua scripts and the JSON decoding and token-budget fitting of up "
        "to 50 messages. Latencies are wall-clock per call as the client saw them; on a "
        "2-core machine shared with other work the concurrency-32 numbers mostly measure "
        "CPU contention between the three processes. redis-py uses the hiredis parser on "
        "both sides (without it, RESP parsing in Python doubled the service's Redis time). "
        "Goal: under 1 ms p50 added over the floor at concurrency 1 — the bare gRPC hop "
        "alone takes most of that budget; see the table for whether this run met it.",
        "",
    ]
    if meta.get("baseline_src"):
        lines[-1:-1] = [
            "",
            f"Rows marked *baseline code* ran `{meta['baseline_src']}`'s memory service (commit "
            f"{meta.get('baseline_commit', '?')}) against the same Redis and preloaded data, "
            "measured right after this checkout's in the same run, each with its own floor.",
        ]
    (RESULTS / "shortterm.md").write_text("\n".join(lines))


def _commit_of(src: str) -> str:
    import subprocess

    out = subprocess.run(
        ["git", "-C", src, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=2_000, help="calls at concurrency 1")
    parser.add_argument("--ops32", type=int, default=8_000, help="calls at concurrency 32")
    parser.add_argument(
        "--baseline-src",
        help="also measure the memory service of this checkout (e.g. the main branch)",
    )
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mnemo-bench-"))
    redis_server = RedisServer(data_dir=tmp / "redis").start()
    proc = None
    try:
        print(f"preloading {args.threads} threads ...", flush=True)
        started = time.monotonic()
        asyncio.run(preload(redis_server.url, args.threads))
        print(f"preloaded in {time.monotonic() - started:.1f}s", flush=True)
        settings = build_settings(redis_url=redis_server.url, redis={"key_prefix": PREFIX})
        rows = []
        for src in (None, args.baseline_src) if args.baseline_src else (None,):
            env = {
                "RATE_LIMIT__PER_MINUTE": "100000000",
                "RATE_LIMIT__PER_HOUR": "100000000",
                "RATE_LIMIT__PER_DAY": "100000000",
                "LOG__LEVEL": "INFO",
                "SERVER__STATS_INTERVAL_S": "3600",
            }
            if src is not None:
                base = Path(src).resolve()
                env["PYTHONPATH"] = os.pathsep.join(
                    str(base / d) for d in ("libs", "services/memory", "services/gateway")
                )
            proc = MemoryServiceProcess(settings, log_dir=tmp, env=env).start()
            # serve() loads the embedding model in the background at startup: let it
            # finish so it does not compete for the CPU with the measurement
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and "long-term memory" not in proc.log_tail(20_000):
                time.sleep(0.5)
            ops = {1: args.ops, 32: args.ops32}
            measured = asyncio.run(measure(proc.address, redis_server.url, args.threads, ops))
            rows += [{**r, "baseline": src is not None} for r in measured]
            proc.stop()
            proc = None
        meta = {
            "threads": args.threads,
            "ops": args.ops,
            "ops32": args.ops32,
            "redis_version": ".".join(map(str, redis_server.version())),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
            "baseline_src": args.baseline_src,
            "baseline_commit": _commit_of(args.baseline_src) if args.baseline_src else None,
        }
        write_results(rows, meta)
        print(f"wrote {RESULTS / 'shortterm.md'}")
        return 0
    finally:
        if proc is not None:
            proc.stop()
        redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
