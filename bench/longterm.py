"""Long-term memory benchmark: PrepareTurn with recall over real gRPC, with 10k facts in
the vector store (Chroma embedded, and the Redis vector index), query embedding included,
for each --users spread (10,000 facts for 1 user, and over 100 users) at each
--concurrency (clients calling back to back), with the embedding floor (the query
embedding alone, one at a time and 32 concurrent callers micro-batched) in the same run.

    python -m bench.longterm [--facts 10000] [--users 1 100] [--queries 200]
        [--concurrency 1 32] [--backends chroma redis] [--rounds 3]
        [--baseline-src DIR] [--variant NAME=JSON ...] [--py-spy-dir DIR]
        [--embedding-backend onnx|sentence-transformers]

The memory service runs in its own process (``bench.serve longterm``: its own interpreter
and GIL, as deployed) with its own Redis; the load client is this process. Variants, all
up at once and measured interleaved round by round on the same facts: ``branch`` (this
checkout); ``main`` with ``--baseline-src DIR`` (another checkout's libs/ and services/,
e.g. ``git -C /work/main archive main | tar -x -C /tmp/lt-base``); and each ``--variant
NAME=JSON`` (this checkout with settings overrides, e.g.
``where='{"longterm": {"knn_within_ids_max": 0}}'``). ``--py-spy-dir``: py-spy records
each variant's service during its first run at the highest concurrency (raw collapsed
stacks and a summary of the top functions). CPU per turn counts the client, the service
process and the Redis server. Writes bench/results/<out>.json and bench/results/<out>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
_TICK = os.sysconf("SC_CLK_TCK")


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


async def fill_store(lt: Any, users: int, texts: list[str], vectors: Any) -> float:
    """Store the facts (user ``user{i % users}``) through the service's store, keyword
    index maintained as on any write; the seconds it took."""
    from mnemo_memory.stores.vector import MemoryRecord

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
    return time.perf_counter() - started


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def parse_variants(args: argparse.Namespace) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(name, source checkout or None = this one, settings overrides) of each variant."""
    out: list[tuple[str, str | None, dict[str, Any]]] = []
    if args.baseline_src:
        out.append(("main", args.baseline_src, {}))
    out.append(("branch", None, {}))
    for spec in args.variant:
        name, _, raw = spec.partition("=")
        out.append((name, None, json.loads(raw or "{}")))
    return out


async def start_variants(
    backend: str, users: int, args: argparse.Namespace, workdir: Path
) -> list[dict[str, Any]]:
    """One Redis and one service process per variant, all filled with the same facts."""
    from mnemo_common.testing.procs import RedisServer, redis_modules_dir

    from bench.serve import start

    modules = [redis_modules_dir() / "redisearch.so"] if backend == "redis" else []
    out = []
    for name, src, overrides in parse_variants(args):
        data = workdir / name
        data.mkdir(parents=True)
        redis_server = RedisServer(data_dir=data / "redis", modules=modules).start()
        started = time.perf_counter()
        address, proc = await asyncio.to_thread(
            start,
            "longterm",
            src,
            redis_url=redis_server.url,
            data_dir=str(data),
            backend=backend,
            users=users,
            facts=args.facts,
            vectors=args.vectors_cache,
            settings=overrides,
        )
        print(f"   {name}: up in {time.perf_counter() - started:.0f} s", flush=True)
        out.append(
            {
                "name": name,
                "redis_server": redis_server,
                "address": address,
                "proc": proc,
                "insert_s": float((data / "insert_s").read_text()),
            }
        )
    return out


#: frames every sample of a thread has (thread start, the event loop): not informative
_SPY_PLUMBING = ("threading.py", "thread.py", "base_events.py", "events.py", "runners.py")


def _frame(raw: str) -> str:
    """``func (path/file.py:line)`` -> ``func (file.py)``."""
    name, _, where = raw.partition(" (")
    return f"{name} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def py_spy_summary(raw: Path, top: int = 25) -> dict[str, Any]:
    """Shares of the samples (py-spy's raw collapsed stacks): per function, inclusive (on
    the stack) and self (the innermost frame); thread and event-loop plumbing left out."""
    total = 0
    incl: dict[str, int] = {}
    own: dict[str, int] = {}
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [_frame(f) for f in stack.split(";")]
        for f in set(frames):
            if not f.endswith(tuple(p + ")" for p in _SPY_PLUMBING)):
                incl[f] = incl.get(f, 0) + count
        own[frames[-1]] = own.get(frames[-1], 0) + count

    def share(d: dict[str, int]) -> list[list[Any]]:
        best = sorted(d.items(), key=lambda x: -x[1])[:top]
        return [[f, round(100 * c / max(1, total), 1)] for f, c in best]

    return {"samples": total, "inclusive_pct": share(incl), "self_pct": share(own)}


async def bench_variants(
    backend: str, users: int, args: argparse.Namespace, variants: list[dict[str, Any]]
) -> dict[str, Any]:
    import grpc
    import redis.asyncio as aioredis
    from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc

    rng = random.Random(3)
    counter = iter(range(10**9))
    degraded, failed = [0], [0]
    for v in variants:
        v["channel"] = grpc.aio.insecure_channel(v["address"])
        v["stub"] = memory_pb2_grpc.MemoryServiceStub(v["channel"])
        v["info"] = aioredis.Redis.from_url(v["redis_server"].url)

    def cpu_of(v: dict[str, Any]) -> Callable[[], Awaitable[float]]:
        async def cpu() -> float:
            info = await v["info"].info("cpu")
            redis_s = float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
            return time.process_time() + proc_cpu_s(v["proc"].proc.pid) + redis_s

        return cpu

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
            try:
                resp = await stub.PrepareTurn(
                    memory_pb2.PrepareTurnRequest(
                        user_id=user, thread_id=f"{user}-chat", query=query, token_budget=2000
                    )
                )
            except grpc.aio.AioRpcError:
                # e.g. UNAVAILABLE: the service's Redis health probe timed out under load
                failed[0] += 1
                return (time.perf_counter() - t0) * 1000
            elapsed = (time.perf_counter() - t0) * 1000
            if resp.degraded:  # the recall budget ran out: answered without memories
                degraded[0] += 1
            else:
                assert resp.memories
            return elapsed

        return call

    first: dict[str, float] = {}
    for v in variants:
        call = caller(v["stub"])
        # the first query per user (and the model's first calls in that process)
        first[v["name"]] = round(pct([await call() for _ in range(min(users, 20))], 50), 1)
        for _ in range(8):  # warm-up, not measured
            await call()
    rounds, profiles = [], {}
    top_conc = max(args.concurrency)
    for rnd in range(args.rounds):
        order = variants if rnd % 2 == 0 else variants[::-1]  # neither always goes first
        for v in order:
            call = caller(v["stub"])
            for conc in args.concurrency:
                total = max(args.queries, conc * 4)
                degraded[0] = failed[0] = 0
                print(f"== {backend} {users} users {v['name']} round {rnd} conc {conc}", flush=True)
                spy = None
                if args.py_spy_dir and rnd == 0 and conc == top_conc:
                    raw = Path(args.py_spy_dir) / f"{backend}-{users}u-{v['name']}-c{conc}.txt"
                    spy = await asyncio.create_subprocess_exec(
                        str(Path(sys.executable).parent / "py-spy"),
                        "record",
                        "--pid",
                        str(v["proc"].proc.pid),
                        "--format",
                        "raw",
                        "--rate",
                        "200",
                        "--output",
                        str(raw),
                        "--nonblocking",
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    await asyncio.sleep(1.0)  # py-spy attached
                run = await measure(call, conc, total, cpu_of(v))
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    await asyncio.wait_for(spy.wait(), 60)
                    if raw.exists():
                        profiles[v["name"]] = py_spy_summary(raw)
                run.update(variant=v["name"], round=rnd, degraded=degraded[0], failed=failed[0])
                rounds.append(run)
    for v in variants:
        await v["channel"].close()
        await v["info"].aclose()
    return {
        "backend": backend,
        "facts": args.facts,
        "users": users,
        "facts_per_user": args.facts // users,
        "insert_s": {v["name"]: v["insert_s"] for v in variants},
        "first_query_per_user_ms_p50": first,
        "runs": rounds,
        "py_spy": profiles,
    }


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

    load_before = os.getloadavg()
    embedder = Embedder(threads=args.threads, backend=args.embedding_backend)
    embedder.load()
    texts = synthetic_facts(args.facts)
    throughput = await embedding_throughput(embedder, texts)
    started = time.perf_counter()
    vectors_for(embedder, texts, args.vectors_cache)  # the services load them from there
    embed_all_s = time.perf_counter() - started
    embedder.batch_size = 32
    results, floor = [], []
    keys = ("p50_ms", "p99_ms", "per_s", "cpu_ms_per_call")
    for backend in args.backends:
        for users in args.users:
            workdir = Path(tempfile.mkdtemp(prefix=f"mnemo-bench-{backend}-"))
            variants: list[dict[str, Any]] = []
            try:
                print(f"== {backend} {users} users: starting the services", flush=True)
                variants = await start_variants(backend, users, args, workdir)
                res = await bench_variants(backend, users, args, variants)
                floor += await embedding_floor(embedder, args, len(results))  # interleaved
                res["summary"] = medians(res["runs"], (*keys, "degraded", "failed"))
                results.append(res)
                partial = RESULTS / f"{args.out}.partial.json"  # a run cut short keeps these
                partial.write_text(json.dumps({"prepare_turn": results, "floor": floor}) + "\n")
            finally:
                for v in variants:
                    v["proc"].stop()
                    v["redis_server"].stop()
                shutil.rmtree(workdir, ignore_errors=True)
    return {
        "embedding": {
            **throughput,
            "embed_all_facts_s": round(embed_all_s, 1),
            "backend": args.embedding_backend,
            "variant": getattr(embedder.load(), "variant", "fp32"),
            "threads": embedder.threads,
            "floor": medians(floor, keys),
            "floor_runs": floor,
        },
        "prepare_turn": results,
        "variants": [
            {"name": n, "src": s or "this checkout", "settings": o}
            for n, s, o in parse_variants(args)
        ],
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }


def markdown(res: dict[str, Any]) -> str:
    e = res["embedding"]
    runtime = f"{e['backend']} ({e['variant']}), {e['threads']} threads, micro-batched"
    load = ", ".join(f"{x:.1f}" for x in res["load_average_before"])
    load_after = ", ".join(f"{x:.1f}" for x in res["load_average_after"])
    lines = [
        "## Long-term memory (service in its own process)",
        "",
        f"Embedding runtime: {runtime}; load average (1, 5, 15 min) before {load}, after "
        f"{load_after} on {res['cpus']} CPUs (shared machine). Variants: "
        + "; ".join(
            f"`{v['name']}` = {v['src']}"
            + (f" with {json.dumps(v['settings'])}" if v["settings"] else "")
            for v in res["variants"]
        )
        + ".",
        "",
        "| path | facts (users x per user) | variant | concurrency | p50 ms | p99 ms | "
        "turns/s | CPU ms per turn | answered without recall | failed | "
        "first query per user p50 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in e["floor"]:
        lines.append(
            f"| floor: query embedding alone | — | — | {f['concurrency']} | {f['p50_ms']} | "
            f"{f['p99_ms']} | {f['per_s']} | {f['cpu_ms_per_call']} | — | — | — |"
        )
    for r in res["prepare_turn"]:
        for row in sorted(r["summary"], key=lambda x: (x["concurrency"], x["variant"])):
            lines.append(
                f"| PrepareTurn, {r['backend']} | {r['facts']} ({r['users']} x "
                f"{r['facts_per_user']}) | {row['variant']} | {row['concurrency']} | "
                f"{row['p50_ms']} | {row['p99_ms']} | {row['per_s']} | "
                f"{row['cpu_ms_per_call']} | {int(row['degraded'])} | {int(row['failed'])} | "
                f"{r['first_query_per_user_ms_p50'].get(row['variant'], '?')} |"
            )
    for r in res["prepare_turn"]:
        for name, prof in r.get("py_spy", {}).items():
            lines += [
                "",
                f"py-spy, {r['backend']} {r['users']} x {r['facts_per_user']}, `{name}`, "
                f"concurrency {max(x['concurrency'] for x in r['runs'])} "
                f"({prof['samples']} samples of the service's busy threads): "
                + ", ".join(f"{f} {p} %" for f, p in prof["inclusive_pct"][:12])
                + " (inclusive).",
            ]
    lines += [
        "",
        f"| embedding ({runtime.split(', micro')[0]}) | sentences/s |",
        "|---|---|",
        f"| batch 1 | {e['batch_1_sentences_per_s']} |",
        f"| batch 32 | {e['batch_32_sentences_per_s']} |",
        "",
        "Method: synthetic facts are embedded once (cached in an .npy) and bulk-inserted by "
        "each service process through its own store (keyword index maintained as on any "
        "write); then `PrepareTurn` is called over real gRPC from this process (the load "
        "client) to the memory service in its own process, with its own Redis, with a "
        "distinct query each time (no LRU hit): the query embedding, the Redis pipeline, "
        "the vector KNN, the keyword candidates, fusion and the budget fit. At concurrency "
        "N, N clients call back to back. Figures are medians over the rounds; the "
        "variants run interleaved (the order alternates by round). CPU ms per turn = CPU "
        "time of the client, the service process and its Redis over the calls. The "
        "machine is shared (2 cores, client, service and Redis on them); latencies and "
        "rates are indicative.",
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
        "--baseline-src", default="", help="another checkout to run as variant `main`"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="NAME=JSON: this checkout with settings overrides (repeatable)",
    )
    parser.add_argument("--py-spy-dir", default="", help="profile each variant's service")
    parser.add_argument(
        "--vectors-cache",
        default="auto",
        help="the .npy the facts' vectors are kept in between runs (auto: in the temp dir, "
        "by runtime and count)",
    )
    parser.add_argument(
        "--embedding-backend", choices=["onnx", "sentence-transformers"], default="onnx"
    )
    parser.add_argument("--threads", type=int, default=0, help="0 = the CPUs given")
    parser.add_argument("--out", default="longterm", help="results file stem in bench/results")
    args = parser.parse_args(argv)
    if args.vectors_cache in ("auto", ""):
        name = f"mnemo-bench-{args.embedding_backend}-{args.facts}.npy"
        args.vectors_cache = str(Path(tempfile.gettempdir()) / name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.py_spy_dir:
        Path(args.py_spy_dir).mkdir(parents=True, exist_ok=True)
    res = asyncio.run(main_async(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / f"{args.out}.partial.json").unlink(missing_ok=True)
    text = markdown(res)
    for name in ("longterm-hardware.md", "longterm-recall-path.md", "longterm-runtime.md"):
        notes = RESULTS / name
        if args.out == "longterm" and notes.exists():
            # before/after figures and py-spy shares of earlier changes, kept by hand: they
            # come from several interleaved runs and profiles (see those files)
            text += "\n" + notes.read_text()
    (RESULTS / f"{args.out}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
