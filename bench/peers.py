"""Mnemo side by side with agent-memory-server (AMS): short-term and recall paths.

    make bench-peers        # installs AMS in .venv-peers, then runs this
    python -m bench.peers [--facts 1000] [--calls 200] [--calls32 640] [--rounds 3]

One Redis (8.x, with its query engine) serves both. Both embed with the same
all-MiniLM-L6-v2: Mnemo in its memory service, AMS through ``bench/embeddings_server.py``
(an OpenAI-compatible ``/v1/embeddings`` in front of Mnemo's embedder), selected with
``EMBEDDING_MODEL=openai/all-MiniLM-L6-v2`` + ``OPENAI_API_BASE``. AMS runs as its docs
say (``agent-memory api``) with auth, LLM extraction, topics, NER and summarisation
off and in-process background tasks (``--task-backend asyncio``). Every service is its own
process; this one only drives them over HTTP / gRPC.

Paths compared (unique query per recall call):

* short-term read — Mnemo ``PrepareTurn`` (recall off) vs AMS ``GET /v1/working-memory/{id}``;
* short-term write — Mnemo ``CommitTurn`` vs AMS ``PUT /v1/working-memory/{id}``;
* recall — Mnemo ``PrepareTurn`` with recall vs AMS ``POST /v1/long-term-memory/search``.

Rounds interleave the two systems per path and concurrency; medians of the rounds.
Writes bench/results/peers.{json,md}.
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PEERS_VENV = ROOT / ".venv-peers"
MODEL = "all-MiniLM-L6-v2"
PREFIX = "bench"
THREADS = 200


def ams_env(redis_url: str, embed_url: str) -> dict[str, str]:
    """AMS settings: our Redis, our embeddings endpoint, no LLM features, no auth."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "PORT": "0",
        "DISABLE_AUTH": "true",
        "AUTH_MODE": "disabled",
        "LONG_TERM_MEMORY": "true",
        "OPENAI_API_KEY": "unused-local-endpoint",
        "OPENAI_API_BASE": embed_url + "/v1",
        "EMBEDDING_MODEL": f"openai/{MODEL}",
        "REDISVL_VECTOR_DIMENSIONS": "384",
        "ENABLE_DISCRETE_MEMORY_EXTRACTION": "false",
        "ENABLE_TOPIC_EXTRACTION": "false",
        "ENABLE_NER": "false",
        "ENABLE_WORKING_MEMORY_SUMMARIZATION": "false",
        "INDEX_ALL_MESSAGES_IN_LONG_TERM_MEMORY": "false",
        "WORKING_MEMORY_MIGRATION_COMPLETE": "true",
        "USE_DOCKET": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # LiteLLM fetches it from the web otherwise
        "PYTHONPATH": "",  # AMS's own venv only
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_load(op: Callable[[int], Awaitable[None]], total: int, conc: int) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            t0 = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - t0)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    elapsed = time.perf_counter() - t
    return {
        "p50_ms": round(pct(latencies, 0.5) * 1000, 2),
        "p99_ms": round(pct(latencies, 0.99) * 1000, 2),
        "ops_per_s": round(total / elapsed, 1),
    }


def _message(role: str, text: str) -> dict[str, str]:
    return {
        "role": role,
        "content": text,
        "id": uuid.uuid4().hex,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def history(turns: int) -> list[dict[str, str]]:
    out = []
    for t in range(turns):
        out.append(_message("user", f"user message {t} " + "x" * 200))
        out.append(_message("assistant", f"assistant answer {t} " + "y" * 400))
    return out


class Queries:
    """Distinct recall queries (no cache hit on either side)."""

    def __init__(self) -> None:
        from bench.longterm import OBJECTS, SUBJECTS

        self.subjects, self.objects, self.n = SUBJECTS, OBJECTS, 0

    def next(self) -> str:
        self.n += 1
        s, o = self.subjects[self.n % len(self.subjects)], self.objects[self.n % len(self.objects)]
        return f"what do you remember about my {s} and {o}? #{self.n}"


async def load_mnemo(redis_url: str, facts: list[str], data_dir: Path) -> None:
    """Store the facts for user0 through Mnemo's long-term store (the Redis index)."""
    from mnemo_memory.config import build_settings
    from mnemo_memory.longterm import build_longterm
    from mnemo_memory.stores.vector import MemoryRecord

    settings = build_settings(**mnemo_settings(redis_url, data_dir))
    lt = build_longterm(settings)
    await lt.open()
    vectors = await lt.embedder.encode(facts)
    now = int(time.time() * 1000)
    recs = [
        MemoryRecord(
            id=f"f{i}",
            user_id="user0",
            text=t,
            created_at_ms=now - i,
            updated_at_ms=now - i,
            valid_from_ms=now - i,
            source_thread_id="t",
        )
        for i, t in enumerate(facts)
    ]
    await lt.store.upsert(recs, vectors)
    await lt.aclose()


def mnemo_settings(redis_url: str, data_dir: Path) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "redis": {"key_prefix": PREFIX},
        "vector": {"backend": "redis", "chroma_path": str(data_dir / "chroma")},
        "rate_limit": {"enabled": False},
    }


async def load_ams(client: httpx.AsyncClient, facts: list[str], redis_url: str) -> None:
    for start in range(0, len(facts), 100):
        batch = [
            {"id": f"f{i}", "text": facts[i], "user_id": "user0", "namespace": "bench"}
            for i in range(start, min(len(facts), start + 100))
        ]
        resp = await client.post(
            "/v1/long-term-memory/", json={"memories": batch, "deduplicate": False}, timeout=600
        )
        resp.raise_for_status()
    import redis as redis_py

    r = redis_py.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:  # indexing runs as background tasks
        try:
            info = r.execute_command("FT.INFO", "memory_records")
            fields = (
                info if isinstance(info, dict) else dict(zip(info[::2], info[1::2], strict=False))
            )
            indexed = int(float(fields.get("num_docs", 0)))
        except redis_py.ResponseError:
            indexed = 0
        print("AMS indexed", indexed, "of", len(facts), flush=True)
        if indexed >= len(facts):
            r.close()
            return
        await asyncio.sleep(2)
    raise TimeoutError("AMS did not index the facts")


def mnemo_ops(stub: Any, pb: Any, queries: Queries) -> dict[str, Callable[[int], Awaitable[None]]]:
    run = uuid.uuid4().hex[:6]

    async def read(i: int) -> None:
        await stub.PrepareTurn(
            pb.PrepareTurnRequest(
                user_id=f"user{i % 50}",
                thread_id=f"thread-{i % THREADS}",
                query="what next?",
                recall=pb.RecallOptions(disabled=True),
            )
        )

    async def write(i: int) -> None:
        await stub.CommitTurn(
            pb.CommitTurnRequest(
                user_id=f"user{i % 50}",
                thread_id=f"thread-{i % THREADS}",
                idempotency_key=f"{run}-{i}",
                user_message="user message " + "x" * 200,
                assistant_message="assistant answer " + "y" * 400,
            )
        )

    async def recall(i: int) -> None:
        await stub.PrepareTurn(
            pb.PrepareTurnRequest(
                user_id="user0", thread_id=f"recall-{i % THREADS}", query=queries.next()
            )
        )

    return {"short_read": read, "short_write": write, "recall": recall}


def ams_ops(
    client: httpx.AsyncClient, queries: Queries
) -> dict[str, Callable[[int], Awaitable[None]]]:
    async def read(i: int) -> None:
        resp = await client.get(
            f"/v1/working-memory/thread-{i % THREADS}",
            params={"user_id": f"user{i % 50}", "namespace": "bench"},
        )
        resp.raise_for_status()

    async def write(i: int) -> None:
        body = {
            "messages": [*history(5), _message("user", "new"), _message("assistant", "reply")],
            "user_id": f"user{i % 50}",
            "namespace": "bench",
        }
        resp = await client.put(f"/v1/working-memory/thread-{i % THREADS}", json=body)
        resp.raise_for_status()

    async def recall(i: int) -> None:
        resp = await client.post(
            "/v1/long-term-memory/search",
            json={"text": queries.next(), "user_id": {"eq": "user0"}, "limit": 10},
        )
        resp.raise_for_status()

    return {"short_read": read, "short_write": write, "recall": recall}


async def measure(
    mnemo_addr: str, ams_url: str, args: argparse.Namespace
) -> dict[str, dict[int, dict[str, list[dict[str, float]]]]]:
    import grpc
    from mnemo.memory.v1 import memory_pb2 as pb
    from mnemo.memory.v1 import memory_pb2_grpc

    channel = grpc.aio.insecure_channel(mnemo_addr)
    stub = memory_pb2_grpc.MemoryServiceStub(channel)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    client = httpx.AsyncClient(base_url=ams_url, timeout=120, limits=limits)
    queries = Queries()
    systems = {"mnemo": mnemo_ops(stub, pb, queries), "ams": ams_ops(client, queries)}
    # the threads both systems read: 5 turns of history each
    for t in range(THREADS):
        await systems["ams"]["short_write"](t)
        for _ in range(5):
            await systems["mnemo"]["short_write"](t)
    out: dict[str, dict[int, dict[str, list[dict[str, float]]]]] = {}
    for rnd in range(args.rounds):
        for path in ("short_read", "short_write", "recall"):
            for conc, total in ((1, args.calls), (32, args.calls32)):
                for name, ops in systems.items():
                    await run_load(ops[path], min(32, total), conc)  # warm-up
                    res = await run_load(ops[path], total, conc)
                    out.setdefault(path, {}).setdefault(conc, {}).setdefault(name, []).append(res)
                    print(rnd, path, conc, name, res, flush=True)
    await client.aclose()
    await channel.close()
    return out


def summarise(raw: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for path, by_conc in raw.items():
        for conc, by_sys in by_conc.items():
            med = {
                name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                for name, runs in by_sys.items()
            }
            m, a = med["mnemo"], med["ams"]
            rows.append(
                {
                    "path": path,
                    "concurrency": conc,
                    "mnemo": m,
                    "ams": a,
                    "p50_ratio_mnemo_over_ams": round(m["p50_ms"] / a["p50_ms"], 2),
                    "throughput_ratio_mnemo_over_ams": round(m["ops_per_s"] / a["ops_per_s"], 2),
                }
            )
    return rows


LABELS = {
    "short_read": "short-term read: PrepareTurn (no recall) / GET working-memory",
    "short_write": "short-term write: CommitTurn / PUT working-memory",
    "recall": "recall: PrepareTurn with recall / long-term search",
}


def write_results(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "peers.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [
        "## Mnemo vs agent-memory-server (same Redis, same model)\n",
        f"agent-memory-server {meta['ams_version']}; {meta['facts']:,} facts for one user; "
        f"{meta['rounds']} interleaved rounds, medians; {meta['cpus']} CPU cores shared by "
        "Redis, both services, the embeddings endpoint and the load generator (and other "
        "work on the machine).\n",
        "| path | conc. | Mnemo p50 / p99 ms | Mnemo ops/s | AMS p50 / p99 ms | AMS ops/s "
        "| p50 Mnemo/AMS | throughput Mnemo/AMS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m, a = r["mnemo"], r["ams"]
        lines.append(
            f"| {LABELS[r['path']]} | {r['concurrency']} | {m['p50_ms']:.1f} / {m['p99_ms']:.1f}"
            f" | {m['ops_per_s']:,.0f} | {a['p50_ms']:.1f} / {a['p99_ms']:.1f} | "
            f"{a['ops_per_s']:,.0f} | {r['p50_ratio_mnemo_over_ams']:.2f} | "
            f"{r['throughput_ratio_mnemo_over_ams']:.2f} |"
        )
    lines.append("")
    (RESULTS / "peers.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    from mnemo_common.testing.procs import (
        ManagedProcess,
        RedisServer,
        free_port,
        redis_modules_dir,
        wait_for,
    )
    from mnemo_memory.config import build_settings
    from mnemo_memory.testing.memory_server import MemoryServiceProcess

    from bench.longterm import synthetic_facts

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--facts", type=int, default=1000)
    p.add_argument("--calls", type=int, default=200, help="calls per round at concurrency 1")
    p.add_argument("--calls32", type=int, default=640, help="calls per round at 32")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    ams_bin = PEERS_VENV / "bin" / "agent-memory"
    if not ams_bin.exists():
        raise SystemExit(f"{ams_bin} is missing: run `make bench-peers`")
    tmp = Path(tempfile.mkdtemp(prefix="mnemo-bench-peers-"))
    modules_dir = redis_modules_dir()
    # both need the query engine (AMS: also JSON for working memory)
    modules = [modules_dir / m for m in ("redisearch.so", "rejson.so")] if modules_dir else []
    redis = RedisServer(data_dir=tmp / "redis", modules=modules).start()
    procs: list[Any] = []
    try:
        embed_port = free_port()
        embed = ManagedProcess(
            [sys.executable, "-m", "bench.embeddings_server", str(embed_port)],
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            cwd=ROOT,
            log_path=tmp / "embed.log",
        ).start()
        procs.append(embed)
        embed_url = f"http://127.0.0.1:{embed_port}"
        wait_for(lambda: _answers(embed_url + "/v1/embeddings", {"input": "x"}), 120, "embeddings")
        ams_port = free_port()
        ams = ManagedProcess(
            [
                str(ams_bin),
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(ams_port),
                "--task-backend",
                "asyncio",
            ],
            env=ams_env(redis.url, embed_url),
            cwd=tmp,
            log_path=tmp / "ams.log",
        ).start()
        procs.append(ams)
        ams_url = f"http://127.0.0.1:{ams_port}"
        try:
            wait_for(lambda: _answers(ams_url + "/v1/health", None), 180, "agent-memory-server")
        except TimeoutError:
            raise SystemExit("AMS did not start:\n" + ams.log_tail(4000)) from None
        facts = synthetic_facts(args.facts)
        asyncio.run(load_mnemo(redis.url, facts, tmp))
        settings = build_settings(**mnemo_settings(redis.url, tmp))
        mnemo = MemoryServiceProcess(
            settings,
            log_dir=tmp,
            env={"VECTOR__BACKEND": "redis", "RATE_LIMIT__ENABLED": "false"},
        ).start()
        procs.append(mnemo)

        async def load() -> None:
            async with httpx.AsyncClient(base_url=ams_url, timeout=600) as c:
                await load_ams(c, facts, redis.url)

        print("loading AMS", flush=True)
        asyncio.run(load())
        raw = asyncio.run(measure(mnemo.address, ams_url, args))
        rows = summarise(raw)
        meta = {
            "ams_version": _ams_version(),
            "facts": args.facts,
            "rounds": args.rounds,
            "calls": args.calls,
            "calls32": args.calls32,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"),
            "raw": raw,
        }
        write_results(rows, meta)
        print((RESULTS / "peers.md").read_text())
        return 0
    finally:
        for proc in reversed(procs):
            proc.stop()
        redis.stop()


def _answers(url: str, body: Any) -> bool:
    try:
        resp = httpx.post(url, json=body, timeout=5) if body else httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


def _ams_version() -> str:
    import subprocess

    out = subprocess.run(
        [
            str(PEERS_VENV / "bin" / "python"),
            "-c",
            "import agent_memory_server as a; print(a.__version__)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
