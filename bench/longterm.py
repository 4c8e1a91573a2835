"""Long-term memory benchmark: PrepareTurn with recall over real gRPC, with 10k facts in
the vector store (Chroma embedded, and the Redis vector index), query embedding included,
for each --users spread (10,000 facts for 1 user, and over 100 users) at each
--concurrency (clients calling back to back), with the embedding floor (the query
embedding alone, one at a time and 32 concurrent callers micro-batched) in the same run.

    python -m bench.longterm [--facts 10000] [--users 1 100] [--queries 200]
        [--concurrency 1 32] [--backends chroma redis] [--rounds 3]
        [--keyword-index redis inprocess] [--embedding-backend onnx|sentence-transformers]
        [--no-batching]

``--keyword-index``: ``redis`` is the service's path (the keyword index kept in Redis,
ADR 0024); ``inprocess`` the previous one (BM25 over all of the user's memories, cached
per process), on the same stored data; several are measured interleaved, round by round.
CPU per turn counts the whole benchmark process (client, service, model) and the Redis
server. Writes bench/results/<out>.json and bench/results/<out>.md.
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
from collections.abc import Awaitable, Callable
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


async def measure(
    call: Callable[[], Awaitable[float]], conc: int, total: int, cpu: Callable[[], Any]
) -> dict[str, Any]:
    """``total`` calls by ``conc`` clients back to back: latency, throughput, CPU/turn."""
    lat: list[float] = []
    left = iter(range(total))

    async def client() -> None:
        for _ in left:
            lat.append(await call())

    cpu0 = await cpu()
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(conc)))
    wall = time.perf_counter() - started
    cpu_s = (await cpu()) - cpu0
    return {
        "concurrency": conc,
        "queries": len(lat),
        "p50_ms": round(pct(lat, 50), 2),
        "p99_ms": round(pct(lat, 99), 2),
        "per_s": round(len(lat) / wall, 1),
        "cpu_ms_per_call": round(1000 * cpu_s / max(1, len(lat)), 2),
    }


async def embedding_floor(embedder: Any, args: argparse.Namespace, rnd: int) -> list[Any]:
    """The query embedding alone (unique texts, so the query cache never hits)."""
    counter = iter(range(10**9))

    async def call() -> float:
        t0 = time.perf_counter()
        await embedder.encode_query(
            f"what do you remember about my car? floor {rnd} #{next(counter)}"
        )
        return (time.perf_counter() - t0) * 1000

    async def cpu() -> float:
        return time.process_time()

    return [await measure(call, c, max(args.queries, c * 4), cpu) for c in args.concurrency]


def vectors_for(embedder: Any, texts: list[str], cache: str) -> Any:
    """The facts' vectors, from ``cache`` (an .npy outside the repo) when it matches."""
    import numpy as np

    path = Path(cache) if cache else None
    if path and path.exists():
        vectors = np.load(path)
        if vectors.shape == (len(texts), embedder.info.dimension):
            return vectors
    vectors = embedder.encode_sync(texts)
    if path:
        np.save(path, vectors)
    return vectors


async def setup_backend(
    backend: str, users: int, embedder: Any, vectors: Any, texts: list[str], workdir: Path
) -> dict[str, Any]:
    """A Redis (+ RediSearch for the Redis index), the facts stored through the service's
    store (keyword index maintained), and one server per keyword-index variant."""
    import grpc
    from mnemo.memory.v1 import memory_pb2_grpc
    from mnemo_common.testing.procs import RedisServer, redis_modules_dir
    from mnemo_memory.config import build_settings
    from mnemo_memory.longterm import build_longterm
    from mnemo_memory.longterm.service import LongTermMemory
    from mnemo_memory.server import create_server
    from mnemo_memory.stores.vector import MemoryRecord

    modules = [redis_modules_dir() / "redisearch.so"] if backend == "redis" else []
    redis_server = RedisServer(data_dir=workdir / "redis", modules=modules).start()
    settings = build_settings(
        redis_url=redis_server.url,
        redis={"key_prefix": "bench"},
        server={"host": "127.0.0.1", "grpc_port": 0, "metrics_port": 0},
        vector={"backend": backend, "chroma_path": str(workdir / "chroma")},
        rate_limit={"enabled": False},
        worker={"metrics_port": 0},
    )
    lt = build_longterm(settings, embedder=embedder)
    await lt.open()
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for start in range(0, len(texts), 500):
        recs = [
            MemoryRecord(
                id=f"f{i}",
                user_id=f"user{i % users}",
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
    variants = {
        "redis": lt,
        # the previous path on the same data: BM25 over all of the user's memories
        "inprocess": LongTermMemory(
            embedder=embedder, store=lt.store.store, cfg=lt.cfg, default_top_k=lt.default_top_k
        ),
    }
    servers = {}
    for name, longterm in variants.items():
        server, port, handles = await create_server(settings, longterm=longterm)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        servers[name] = (server, handles, channel, memory_pb2_grpc.MemoryServiceStub(channel))
    return {
        "redis_server": redis_server,
        "servers": servers,
        "insert_s": round(insert_s, 1),
        "lt": lt,
    }


async def bench_backend(
    backend: str, users: int, args: argparse.Namespace, ctx: dict[str, Any], embedder: Any
) -> dict[str, Any]:
    from mnemo.memory.v1 import memory_pb2

    rng = random.Random(3)
    counter = iter(range(10**9))
    degraded = [0]
    info_client = ctx["lt"].store.keywords.redis

    async def cpu() -> float:
        info = await info_client.info("cpu")
        return time.process_time() + float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def caller(stub: Any) -> Callable[[], Awaitable[float]]:
        async def call() -> float:
            # distinct queries: the LRU query cache never hits, the embedding is always paid
            q = next(counter)
            user = f"user{q % users}"
            query = (
                f"what do you remember about my {rng.choice(SUBJECTS)} and "
                f"{rng.choice(OBJECTS)}? #{q}"
            )
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

        return call

    first: dict[str, float] = {}
    for name in args.keyword_index:
        call = caller(ctx["servers"][name][3])
        # the first query per user (the in-process index builds over all its memories)
        first[name] = round(pct([await call() for _ in range(min(users, 20))], 50), 1)
    rounds = []
    for rnd in range(args.rounds):
        for name in args.keyword_index:
            call = caller(ctx["servers"][name][3])
            for conc in args.concurrency:
                total = max(args.queries, conc * 4)
                batches_before, degraded[0] = embedder.batches, 0
                print(f"== {backend} {users} users {name} round {rnd} conc {conc}", flush=True)
                run = await measure(call, conc, total, cpu)
                run.update(
                    variant=name,
                    round=rnd,
                    degraded=degraded[0],
                    queries_per_model_call=round(
                        total / max(1, embedder.batches - batches_before), 1
                    ),
                )
                rounds.append(run)
    return {
        "backend": backend,
        "facts": args.facts,
        "users": users,
        "facts_per_user": args.facts // users,
        "insert_s": ctx["insert_s"],
        "first_query_per_user_ms_p50": first,
        "runs": rounds,
    }


async def close_backend(ctx: dict[str, Any]) -> None:
    for server, handles, channel, _ in ctx["servers"].values():
        await channel.close()
        await handles.shutdown(server, 0)
    ctx["redis_server"].stop()


def medians(runs: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Per (variant, concurrency): the median of each figure over the rounds."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r.get("variant", "floor"), r["concurrency"]), []).append(r)
    out = []
    for (variant, conc), rs in groups.items():
        row: dict[str, Any] = {"variant": variant, "concurrency": conc, "rounds": len(rs)}
        for k in keys:
            row[k] = round(statistics.median(r[k] for r in rs), 2)
        row["raw_" + keys[0]] = [r[keys[0]] for r in rs]
        row["raw_per_s"] = [r["per_s"] for r in rs]
        out.append(row)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from mnemo_memory.embed import Embedder

    embedder = Embedder(threads=args.threads, backend=args.embedding_backend)
    embedder.load()
    texts = synthetic_facts(args.facts)
    throughput = await embedding_throughput(embedder, texts)
    started = time.perf_counter()
    vectors = vectors_for(embedder, texts, args.vectors_cache)
    embed_all_s = time.perf_counter() - started
    # --no-batching: one query per model call, as before micro-batching
    embedder.batch_size = 1 if args.no_batching else 32
    results, floor = [], []
    keys = ("p50_ms", "p99_ms", "per_s", "cpu_ms_per_call")
    for backend in args.backends:
        for users in args.users:
            workdir = Path(tempfile.mkdtemp(prefix=f"mnemo-bench-{backend}-"))
            try:
                embedder._cache.clear()  # every backend starts with a cold query cache
                ctx = await setup_backend(backend, users, embedder, vectors, texts, workdir)
                try:
                    res = await bench_backend(backend, users, args, ctx, embedder)
                finally:
                    await close_backend(ctx)
                floor += await embedding_floor(embedder, args, len(results))  # interleaved
                res["summary"] = medians(res["runs"], (*keys, "degraded"))
                results.append(res)
                partial = RESULTS / f"{args.out}.partial.json"  # a run cut short keeps these
                partial.write_text(json.dumps({"prepare_turn": results, "floor": floor}) + "\n")
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
    return {
        "embedding": {
            **throughput,
            "embed_all_facts_s": round(embed_all_s, 1),
            "backend": args.embedding_backend,
            "variant": getattr(embedder.load(), "variant", "fp32"),
            "threads": embedder.threads,
            "micro_batching": not args.no_batching,
            "floor": medians(floor, keys),
            "floor_runs": floor,
        },
        "prepare_turn": results,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
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
        f"service and model) {res.get('max_rss_mb', '?')} MB; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in res.get('load_average', []))} on "
        f"{res['cpus']} CPUs (shared machine).",
        "",
        "| path | facts (users x per user) | keyword index | concurrency | p50 ms | p99 ms | "
        "turns/s | CPU ms per turn | answered without recall | first query per user p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in e["floor"]:
        lines.append(
            f"| floor: query embedding alone | — | — | {f['concurrency']} | {f['p50_ms']} | "
            f"{f['p99_ms']} | {f['per_s']} | {f['cpu_ms_per_call']} | — | — |"
        )
    for r in res["prepare_turn"]:
        for row in r["summary"]:
            lines.append(
                f"| PrepareTurn, {r['backend']} | {r['facts']} ({r['users']} x "
                f"{r['facts_per_user']}) | {row['variant']} | {row['concurrency']} | "
                f"{row['p50_ms']} | {row['p99_ms']} | {row['per_s']} | "
                f"{row['cpu_ms_per_call']} | {int(row['degraded'])} | "
                f"{r['first_query_per_user_ms_p50'].get(row['variant'], '?')} |"
            )
    lines += [
        "",
        f"| embedding ({runtime.split(', micro')[0]}) | sentences/s |",
        "|---|---|",
        f"| batch 1 | {e['batch_1_sentences_per_s']} |",
        f"| batch 32 | {e['batch_32_sentences_per_s']} |",
        "",
        "Method: synthetic facts are embedded once and bulk-inserted through the service's "
        "store (the keyword index maintained as on any write); then `PrepareTurn` is "
        "called over real gRPC (in-process server, real Redis; the client shares the "
        "server's process and event loop) with a distinct query each time, so every call "
        "pays the query embedding (no LRU hit), the Redis pipeline, the vector KNN with "
        "the user filter, the keyword candidates and the fusion and budget fit. At "
        "concurrency N, N clients call back to back. Figures are medians over the rounds; "
        "the keyword-index variants (`redis`: ADR 0024; `inprocess`: the previous BM25 "
        "over all of the user's memories, cached per process for "
        "`LONGTERM__KEYWORD_CACHE_S`) run interleaved on the same data, and the floor "
        "(the query embedding alone, unique texts) is measured after each backend. CPU ms "
        "per turn = CPU time of the benchmark process (client, service, model) and of "
        "the Redis server over the calls: independent of how busy the shared machine "
        "was. The machine is shared (2 cores); latencies and rates are indicative.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.longterm", description=__doc__)
    parser.add_argument("--facts", type=int, default=10_000)
    parser.add_argument("--users", nargs="+", type=int, default=[1, 100])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["chroma", "redis"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--keyword-index", nargs="+", choices=["redis", "inprocess"], default=["redis"]
    )
    parser.add_argument(
        "--vectors-cache",
        default="auto",
        help="an .npy keeping the facts' vectors between runs (auto: in the temp dir, "
        "by runtime and count; '' = embed every run)",
    )
    parser.add_argument(
        "--embedding-backend", choices=["onnx", "sentence-transformers"], default="onnx"
    )
    parser.add_argument("--threads", type=int, default=0, help="0 = the CPUs given")
    parser.add_argument(
        "--no-batching", action="store_true", help="one query per model call (the old path)"
    )
    parser.add_argument("--out", default="longterm", help="results file stem in bench/results")
    args = parser.parse_args(argv)
    if args.vectors_cache == "auto":
        name = f"mnemo-bench-{args.embedding_backend}-{args.facts}.npy"
        args.vectors_cache = str(Path(tempfile.gettempdir()) / name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / f"{args.out}.partial.json").unlink(missing_ok=True)
    text = markdown(res)
    for name in ("longterm-recall-path.md", "longterm-runtime.md"):
        notes = RESULTS / name
        if args.out == "longterm" and notes.exists():
            # before/after figures and py-spy shares of the recall-path and embedding-
            # runtime changes (kept by hand: they come from several interleaved runs and
            # profiles, see those files)
            text += "\n" + notes.read_text()
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
