"""LoCoMo recall evaluation through the real service path.

Per conversation (one user per sample, one thread per session): every turn is appended
with ``ThreadStore.append_turn`` (dated with its session's date), the ``extract_facts``
jobs that appends enqueue on the real Redis Stream are run by the worker's task registry
(in-process backend) into the real vector store (embedded Chroma), and every question of
categories 1-4 is asked through ``SearchMemories`` over real gRPC. A question's recall is
the fraction of its evidence turns among the source turns of the top k results.

The jobs write the product's message memories (``longterm/messages.py``; LoCoMo's two
speakers are both people, stored as the user and assistant turns of each pair, so the
bench keeps both: ``LONGTERM__MESSAGE_MEMORIES=all``). What the LLM extractor would add
is the only stand-in (``--facts``): ``messages`` adds nothing (what the product stores
offline), ``observation`` the file's LLM-extracted observation facts (kind fact, mapped
back to their source turns) with message memories off, ``both`` (default) both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .locomo import Sample, load

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}


class BenchExtractor:
    """Stand-in for the LLM extractor: the file's observation facts, or nothing."""

    wants_existing = False

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.dia_by_msg: dict[str, str] = {}
        self.msg_by_dia: dict[str, str] = {}
        self.obs_by_dia: dict[str, list[tuple[str, list[str]]]] = {}
        self.date_by_dia: dict[str, int] = {}

    async def extract(self, messages: Sequence[Any], existing: Sequence[Any]) -> Any:
        from mnemo_common.llm import Usage
        from mnemo_memory.longterm.facts import CandidateFact

        out = []
        if self.mode not in ("observation", "both"):
            return out, Usage()
        for m in messages:
            dia = self.dia_by_msg.get(m.id)
            if m.content.strip() and dia:
                for text, dias in self.obs_by_dia.get(dia, []):
                    src = tuple(self.msg_by_dia[d] for d in dias if d in self.msg_by_dia)
                    out.append(
                        CandidateFact(
                            text=text,
                            kind="fact",
                            importance=5,
                            source_message_ids=src or (m.id,),
                            valid_from_ms=m.created_at_ms,
                        )
                    )
        return out, Usage()


async def ingest(
    sample: Sample, threads: Any, tasks: Any, redis: Any, stream: str, extractor: BenchExtractor
) -> int:
    """Append every turn, then run the jobs the appends enqueued; returns jobs run."""
    extractor.obs_by_dia = {}
    for session in sample.sessions:
        for text, dias in session.observations:
            if dias:  # emitted with its first source turn
                extractor.obs_by_dia.setdefault(dias[0], []).append((text, dias))
    for session in sample.sessions:
        thread_id = f"{sample.sample_id}-s{session.index}"
        turns = session.turns
        for j in range(0, len(turns), 2):
            first = turns[j]
            second = turns[j + 1] if j + 1 < len(turns) else None
            result = await threads.append_turn(
                sample.sample_id,
                thread_id,
                f"t{j}",
                first.text,
                second.text if second else "",
                now=session.date_ms + j * 1000,
            )
            user_id, asst_id = result.message_ids
            extractor.dia_by_msg[user_id] = first.dia_id
            extractor.msg_by_dia[first.dia_id] = user_id
            if second:
                extractor.dia_by_msg[asst_id] = second.dia_id
                extractor.msg_by_dia[second.dia_id] = asst_id
    return int(await tasks.drain(redis, stream))


async def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    import grpc
    from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc
    from mnemo_common.testing.procs import RedisServer
    from mnemo_memory.config import build_settings
    from mnemo_memory.embed import Embedder
    from mnemo_memory.longterm import build_longterm
    from mnemo_memory.server import create_server
    from mnemo_memory.worker.main import build_context
    from mnemo_memory.worker.tasks import InProcessTasks

    samples = load(Path(args.data))
    if args.samples:
        wanted = set(args.samples)
        samples = [s for s in samples if s.sample_id in wanted]
        if not samples:
            raise SystemExit(f"--samples: none of {sorted(wanted)} is in {args.data}")
    workdir = Path(tempfile.mkdtemp(prefix="mnemo-recall-"))
    redis_server = RedisServer(data_dir=workdir / "redis").start()
    try:
        settings = build_settings(
            redis_url=redis_server.url,
            redis={"key_prefix": "recall"},
            server={"host": "127.0.0.1", "grpc_port": 0, "metrics_port": 0},
            vector={"chroma_path": str(workdir / "chroma"), "default_top_k": 10},
            rate_limit={"enabled": False},
            longterm={"message_memories": "off" if args.facts == "observation" else "all"},
            # keep whole sessions, extract after every turn pair, never summarise
            memory={
                "max_thread_messages": 5000,
                "summary_threshold_messages": 100000,
                "extract_every_messages": 2,
                "max_message_bytes": 65536,
            },
            worker={"metrics_port": 0},
        )
        embedder = Embedder.from_settings(settings)
        embedder.load()
        lt = build_longterm(settings, embedder=embedder)
        await lt.open()
        server, port, handles = await create_server(settings, longterm=lt)
        extractor = BenchExtractor(args.facts)
        ctx = build_context(settings, handles.redis, lt, provider=None)
        ctx.extractor = extractor
        tasks = InProcessTasks(ctx)
        stream = handles.stores.keys.jobs()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        kinds = [
            memory_pb2.MEMORY_KIND_FACT,
            memory_pb2.MEMORY_KIND_PREFERENCE,
            memory_pb2.MEMORY_KIND_EVENT,
            memory_pb2.MEMORY_KIND_MESSAGE,
        ]
        per_q: list[dict[str, Any]] = []
        t_ingest = t_query = 0.0
        jobs = memories = message_memories = 0
        dropped = fixed = no_evidence = 0
        for sample in samples:
            started = time.monotonic()
            jobs += await ingest(
                sample, handles.stores.threads, tasks, handles.redis, stream, extractor
            )
            t_ingest += time.monotonic() - started
            counts = await lt.store.count(sample.sample_id)
            memories += counts.get("total", 0)
            message_memories += counts.get("message", 0)
            dropped += sample.evidence_dropped
            fixed += sample.evidence_fixed
            started = time.monotonic()
            for q in sample.questions:
                if q.category not in CATEGORIES:
                    continue
                if not q.evidence:
                    no_evidence += 1
                    continue
                resp = await stub.SearchMemories(
                    memory_pb2.SearchMemoriesRequest(
                        user_id=sample.sample_id,
                        query=q.text,
                        top_k=max(args.k),
                        filter=memory_pb2.MemoryFilter(kinds=kinds),
                    )
                )
                row: dict[str, Any] = {"sample": sample.sample_id, "category": q.category}
                for k in args.k:
                    got: set[str] = set()
                    for r in resp.results[:k]:
                        got |= {
                            extractor.dia_by_msg.get(i, "") for i in r.memory.source_message_ids
                        }
                    row[f"recall@{k}"] = len(got & set(q.evidence)) / len(q.evidence)
                    row[f"tokens@{k}"] = sum(
                        max(1, -(-len(r.memory.text) // 4)) for r in resp.results[:k]
                    )
                per_q.append(row)
            t_query += time.monotonic() - started
        await channel.close()
        await handles.shutdown(server, 0)
    finally:
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"questions": len(rows)}
        for k in args.k:
            out[f"recall@{k}"] = (
                round(statistics.fmean(r[f"recall@{k}"] for r in rows), 4) if rows else 0.0
            )
            out[f"tokens@{k}"] = (
                round(statistics.fmean(r[f"tokens@{k}"] for r in rows), 1) if rows else 0.0
            )
        return out

    return {
        "data": os.path.basename(args.data),
        "facts": args.facts,
        "embedding_backend": embedder.backend,
        "samples": len(samples),
        "memories_indexed": memories,
        "message_memories": message_memories,
        "jobs_run": jobs,
        "evidence_ids_normalised": fixed,
        "evidence_ids_dropped": dropped,
        "questions_without_valid_evidence": no_evidence,
        "overall": summarize(per_q),
        "by_sample": {
            sample.sample_id: summarize([r for r in per_q if r["sample"] == sample.sample_id])
            for sample in samples
        },
        "by_category": {
            f"{c} {name}": summarize([r for r in per_q if r["category"] == c])
            for c, name in CATEGORIES.items()
        },
        "seconds": {"ingest": round(t_ingest, 1), "query": round(t_query, 1)},
    }


def markdown(res: dict[str, Any], ks: list[int]) -> str:
    head = (
        "| category | questions | "
        + " | ".join(f"R@{k}" for k in ks)
        + " | "
        + " | ".join(f"tokens@{k}" for k in ks)
        + " |"
    )
    lines = [
        f"## Recall on `{res['data']}` (facts: `{res['facts']}`, embedding runtime: "
        f"`{res.get('embedding_backend', 'onnx')}`)",
        "",
        head,
        "|" + "---|" * (2 + 2 * len(ks)),
    ]
    rows = [
        *res["by_category"].items(),
        ("**overall 1-4**", res["overall"]),
        *((f"conversation {sid}", v) for sid, v in res.get("by_sample", {}).items()),
    ]
    for name, s in rows:
        lines.append(
            f"| {name} | {s['questions']} | "
            + " | ".join(f"{s[f'recall@{k}']:.3f}" for k in ks)
            + " | "
            + " | ".join(f"{s[f'tokens@{k}']:.0f}" for k in ks)
            + " |"
        )
    lines += [
        "",
        f"{res['samples']} conversations, {res['memories_indexed']} memories indexed "
        f"({res.get('message_memories', 0)} message memories) "
        f"by {res['jobs_run']} extract_facts jobs; evidence ids normalised: "
        f"{res['evidence_ids_normalised']}, dropped (malformed or no such turn): "
        f"{res['evidence_ids_dropped']}; questions left without evidence: "
        f"{res['questions_without_valid_evidence']}. Ingest {res['seconds']['ingest']} s, "
        f"queries {res['seconds']['query']} s.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recall", description=__doc__)
    parser.add_argument("--data", required=True, help="a LoCoMo-format JSON file")
    parser.add_argument("--out", required=True, help="directory for recall.json / recall.md")
    parser.add_argument(
        "--facts",
        choices=["messages", "observation", "both"],
        default="both",
        help="message memories, the file's observation facts, or both (default: both)",
    )
    parser.add_argument(
        "--samples",
        nargs="+",
        default=[],
        help="only these conversations (sample ids, e.g. conv-26): a quick subset",
    )
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10])
    parser.add_argument(
        "--embedding-backend",
        choices=["onnx", "sentence-transformers"],
        default="",
        help="the embedding runtime (EMBEDDING__BACKEND; default: the service's, onnx)",
    )
    args = parser.parse_args(argv)
    if args.embedding_backend:
        os.environ["EMBEDDING__BACKEND"] = args.embedding_backend
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # one torch thread: on a shared 2-core machine two threads ran ~10x slower (spinning)
    os.environ.setdefault("EMBEDDING__THREADS", "1")
    res = asyncio.run(evaluate(args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "recall" if args.facts == "both" else f"recall-{args.facts}"
    if args.samples:
        stem += "-subset"
    if args.embedding_backend:
        stem += f"-{args.embedding_backend}"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown(res, args.k))
    print(markdown(res, args.k))
    return 0
