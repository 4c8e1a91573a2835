"""Micro-batcher settings against the embedding floor: unique query embeddings by N
concurrent callers for each EMBEDDING__BATCH_WAIT_MS / EMBEDDING__BATCH_SIZE pair,
interleaved round by round (medians).

    python -m bench.batching [--waits 0 1 2] [--sizes 32 64] [--concurrency 1 32]
        [--queries 256] [--rounds 3]

Writes bench/results/batching.json and bench/results/batching.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
from pathlib import Path
from typing import Any

from bench.longterm import RESULTS, measure


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from mnemo_memory.embed import Embedder

    rows: dict[tuple[float, int, int], list[dict[str, Any]]] = {}
    embedders = {}
    for wait in args.waits:
        for size in args.sizes:
            e = Embedder(batch_size=size, batch_wait_ms=wait, query_cache_size=0)
            e.load()
            embedders[(wait, size)] = e
    counter = iter(range(10**9))

    async def cpu() -> float:
        return __import__("time").process_time()

    for _ in range(args.rounds):
        for (wait, size), e in embedders.items():
            for conc in args.concurrency:

                async def call(e: Any = e) -> float:
                    t0 = asyncio.get_running_loop().time()
                    await e.encode_query(f"what do you remember about my bike? #{next(counter)}")
                    return (asyncio.get_running_loop().time() - t0) * 1000

                before = e.batches
                r = await measure(call, conc, max(args.queries, conc * 4), cpu)
                r["queries_per_model_call"] = round(r["queries"] / max(1, e.batches - before), 1)
                rows.setdefault((wait, size, conc), []).append(r)
    out = []
    for (wait, size, conc), rs in rows.items():
        row: dict[str, Any] = {"batch_wait_ms": wait, "batch_size": size, "concurrency": conc}
        for k in ("p50_ms", "p99_ms", "per_s", "cpu_ms_per_call", "queries_per_model_call"):
            row[k] = round(statistics.median(r[k] for r in rs), 2)
        row["raw_per_s"] = [r["per_s"] for r in rs]
        out.append(row)
    threads = next(iter(embedders.values())).threads
    return {"rows": out, "threads": threads, "load_average": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__)
    parser.add_argument("--waits", nargs="+", type=float, default=[0, 1, 2])
    parser.add_argument("--sizes", nargs="+", type=int, default=[32, 64])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 32])
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    res = asyncio.run(run(args))
    lines = [
        "### Micro-batcher settings (query embedding alone)",
        "",
        f"ONNX fp32, {res['threads']} threads; medians of {args.rounds} interleaved rounds; "
        f"load average {', '.join(f'{x:.1f}' for x in res['load_average'])} (shared).",
        "",
        "| BATCH_WAIT_MS | BATCH_SIZE | concurrency | p50 ms | p99 ms | queries/s | "
        "CPU ms/query | queries per model call |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['batch_wait_ms']:g} | {r['batch_size']} | {r['concurrency']} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['per_s']} | {r['cpu_ms_per_call']} | "
            f"{r['queries_per_model_call']} |"
        )
    text = "\n".join(lines) + "\n"
    Path(RESULTS).mkdir(parents=True, exist_ok=True)
    (RESULTS / "batching.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "batching.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
