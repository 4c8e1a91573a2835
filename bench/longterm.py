"""Long-term memory benchmark: PrepareTurn with recall over real gRPC, with 10k facts in
the vector store (Chroma embedded, and the Redis vector index), query embedding included;
at each --concurrency (clients calling back to back); plus embedding throughput at batch 1
and 32.

    python -m bench.longterm [--facts 10000] [--users 10] [--queries 200]
        [--concurrency 1 32] [--backends chroma redis]
        [--embedding-backend onnx|sentence-transformers] [--no-batching]

Writes bench/results/longterm.json and bench/results/longterm.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

SUBJECTS = [
    "sister",
    "dentist",
    "landlord",
    "manager",
    "neighbour",
    "cat",
    "dog",
    "car",
    "flat",
    "garden",
    "bike",
    "laptop",
    "phone",
    "team",
    "coach",
    "doctor",
]
VERBS = [
    "is called",
    "lives near",
    "prefers",
    "dislikes",
    "visited",
    "bought",
    "repaired",
    "recommended",
    "booked",
    "cancelled",
]
OBJECTS = [
    "Lisbon",
    "green tea",
    "the Tuesday yoga class",
    "a blue umbrella",
    "Mount Fuji",
    "jazz records",
    "the night train",
    "spicy ramen",
    "a vintage camera",
    "chess club",
    "the river walk",
    "oat milk",
    "a standing desk",
    "Italian lessons",
    "board games",
]


def synthetic_facts(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"User's {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} (note {i})"
        for i in range(n)
    ]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def embedding_throughput(embedder: Any, texts: list[str]) -> dict[str, float]:
    out = {}
    for batch in (1, 32):
        embedder.batch_size = batch
        sample = texts[: 32 if batch == 1 else 320]
        started = time.perf_counter()
        if batch == 1:
            for t in sample:
                await embedder.encode([t])
        else:
            await embedder.encode(sample)
        out[f"batch_{batch}_sentences_per_s"] = round(
            len(sample) / (time.perf_counter() - started), 1
        )
    embedder.batch_size = 32
    return out


async def bench_backend(
    backend: str, args: argparse.Namespace, embedder: Any, vectors: Any, texts: list[str]
) -> dict[str, Any]:
    import grpc
    from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc
    from mnemo_common.testing.procs import RedisServer, redis_modules_dir
    from mnemo_memory.config import build_settings
    from mnemo_memory.longterm import build_longterm
    from mnemo_memory.server import create_server
    from mnemo_memory.stores.vector import MemoryRecord

    workdir = Path(tempfile.mkdtemp(prefix=f"mnemo-bench-{backend}-"))
    modules = [redis_modules_dir() / "redisearch.so"] if backend == "redis" else []
    redis_server = RedisServer(data_dir=workdir / "redis", modules=modules).start()
    try:
        settings = build_settings(
            redis_url=redis_server.url,
            redis={"key_prefix": "bench"},
            server={"host": "127.0.0.1", "grpc_port": 0, "metrics_port": 0},
            vector={"backend": backend, "chroma_path": str(workdir / "chroma")},
            rate_limit={"enabled": False},
            worker={"metrics_port": 0},
        )
        embedder._cache.clear()  # every backend starts with a cold query cache
        lt = build_longterm(settings, embedder=embedder)
        await lt.open()
        now = int(time.time() * 1000)
        started = time.perf_counter()
        for start in range(0, len(texts), 500):
            recs = [
                MemoryRecord(
                    id=f"f{i}",
                    user_id=f"user{i % args.users}",
                    text=texts[i],
                    created_at_ms=now - i * 1000,
                    updated_at_ms=now - i * 1000,
                    valid_from_ms=now - i * 1000,
                    source_thread_id="t",
                )
                for i in range(start, min(len(texts), start + 500))
            ]
            await lt.store.upsert(recs, vectors[start : start + len(recs)])
        insert_s = time.perf_counter() - started
        server, port, handles = await create_server(settings, longterm=lt)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        rng = random.Random(3)
        counter = iter(range(10**9))

        def next_query() -> tuple[str, str]:
            # distinct queries: the LRU query cache never hits, the embedding is always paid
            q = next(counter)
            query = (
                f"what do you remember about my {rng.choice(SUBJECTS)} and "
                f"{rng.choice(OBJECTS)}? #{q}"
            )
            return f"user{q % args.users}", query

        degraded: list[int] = [0]

        async def call() -> float:
            user, query = next_query()
            t0 = time.perf_counter()
            resp = await stub.PrepareTurn(
                memory_pb2.PrepareTurnRequest(
                    user_id=user, thread_id=f"{user}-chat", query=query, token_budget=2000
                )
            )
            elapsed = (time.perf_counter() - t0) * 1000
            if resp.degraded:  # the recall budget ran out: answered without memories
                degraded[0] += 1
            else:
                assert resp.memories
            return elapsed

        # the first query per user builds its keyword index: reported on its own
        cold = [await call() for _ in range(args.users)]
        runs = []
        for conc in args.concurrency:
            lat: list[float] = []
            total = max(args.queries, conc * 4)
            left = iter(range(total))
            batches_before = embedder.batches
            degraded[0] = 0

            async def client(lat: list[float] = lat, left: Any = left) -> None:
                for _ in left:
                    lat.append(await call())

            print(f"== {backend} concurrency {conc}: {total} calls", flush=True)  # profilers
            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(conc)))
            wall = time.perf_counter() - started
            batches = embedder.batches - batches_before
            runs.append(
                {
                    "concurrency": conc,
                    "queries": len(lat),
                    "prepare_turn_ms_p50": round(pct(lat, 50), 1),
                    "prepare_turn_ms_p99": round(pct(lat, 99), 1),
                    "prepare_turn_ms_mean": round(statistics.fmean(lat), 1),
                    "turns_per_s": round(len(lat) / wall, 1),
                    "queries_per_model_call": round(len(lat) / max(1, batches), 1),
                    "degraded": degraded[0],
                }
            )
        await channel.close()
        await handles.shutdown(server, 0)
        return {
            "backend": backend,
            "facts": len(texts),
            "users": args.users,
            "facts_per_user": len(texts) // args.users,
            "insert_s": round(insert_s, 1),
            "first_query_per_user_ms_p50": round(pct(cold, 50), 1),
            "runs": runs,
        }
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from mnemo_memory.embed import Embedder

    embedder = Embedder(threads=args.threads, backend=args.embedding_backend)
    embedder.load()
    texts = synthetic_facts(args.facts)
    throughput = await embedding_throughput(embedder, texts)
    started = time.perf_counter()
    vectors = await embedder.encode(texts)
    embed_all_s = time.perf_counter() - started
    # --no-batching: one query per model call, as before micro-batching
    embedder.batch_size = 1 if args.no_batching else 32
    results = [await bench_backend(b, args, embedder, vectors, texts) for b in args.backends]
    return {
        "embedding": {
            **throughput,
            "embed_all_facts_s": round(embed_all_s, 1),
            "backend": args.embedding_backend,
            "variant": getattr(embedder.load(), "variant", "fp32"),
            "threads": embedder.threads,
            "micro_batching": not args.no_batching,
        },
        "prepare_turn": results,
        "cpus": os.cpu_count(),
        # client, server and model in one process: an upper bound of the service's RSS
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def markdown(res: dict[str, Any]) -> str:
    e = res["embedding"]
    runtime = (
        f"{e['backend']} ({e['variant']}), {e['threads']} threads, "
        f"micro-batching {'on' if e['micro_batching'] else 'off'}"
    )
    lines = [
        "## Long-term memory",
        "",
        f"Embedding runtime: {runtime}; peak RSS of the benchmark process (client, "
        f"service and model) {res.get('max_rss_mb', '?')} MB.",
        "",
        "| backend | facts (users x per user) | concurrency | PrepareTurn p50 ms | p99 ms | "
        "turns/s | queries per model call | answered without recall (budget) | "
        "first query per user p50 ms | bulk insert s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["prepare_turn"]:
        for run in r["runs"]:
            lines.append(
                f"| {r['backend']} | {r['facts']} ({r['users']} x {r['facts_per_user']}) "
                f"| {run['concurrency']} | {run['prepare_turn_ms_p50']} | "
                f"{run['prepare_turn_ms_p99']} | {run['turns_per_s']} | "
                f"{run['queries_per_model_call']} | {run['degraded']} of {run['queries']} | "
                f"{r['first_query_per_user_ms_p50']} | "
                f"{r['insert_s']} |"
            )
    lines += [
        "",
        f"| embedding ({runtime.split(', micro')[0]}) | sentences/s |",
        "|---|---|",
        f"| batch 1 | {e['batch_1_sentences_per_s']} |",
        f"| batch 32 | {e['batch_32_sentences_per_s']} |",
        "",
        "Method: synthetic facts are embedded once and bulk-inserted; then `PrepareTurn` "
        "is called over real gRPC (in-process server, real Redis; the client shares the "
        "server's process and event loop) with a distinct query each time, so every call "
        "pays the query embedding (no LRU hit), the Redis pipeline, the vector KNN with "
        "the user filter, BM25 over the user's memories (keyword index cached per user "
        "for `LONGTERM__KEYWORD_CACHE_S`; the first query per user, which builds it, is "
        "reported separately) and the budget fit. At concurrency N, N clients call "
        "back to back. The machine is shared (2 cores); numbers are indicative.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.longterm", description=__doc__)
    parser.add_argument("--facts", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["chroma", "redis"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 32])
    parser.add_argument(
        "--embedding-backend", choices=["onnx", "sentence-transformers"], default="onnx"
    )
    parser.add_argument("--threads", type=int, default=0, help="0 = the CPUs given")
    parser.add_argument(
        "--no-batching", action="store_true", help="one query per model call (the old path)"
    )
    parser.add_argument("--out", default="longterm", help="results file stem in bench/results")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    text = markdown(res)
    notes = RESULTS / "longterm-runtime.md"
    if args.out == "longterm" and notes.exists():
        # before/after figures and py-spy shares of the embedding-runtime change (kept by
        # hand: they come from several interleaved runs and profiles, see that file)
        text += "\n" + notes.read_text()
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
