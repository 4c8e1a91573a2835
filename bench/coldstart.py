"""Cold start of the memory service: seconds from spawning ``mnemo-memory serve`` until
gRPC health reports the service SERVING, until recall (``mnemo.memory.v1.Recall``, set
once the embedding model is loaded and the vector store open) is SERVING, and until a
first ``PrepareTurn`` answers with memories (not degraded).

    python -m bench.coldstart [--rounds 3] [--backend chroma|redis]

Writes bench/results/coldstart.json and bench/results/coldstart.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def one_start(backend: str, workdir: Path) -> dict[str, float]:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc
    from mnemo_common.testing.procs import ManagedProcess, RedisServer, free_port, redis_modules_dir

    modules = [redis_modules_dir() / "redisearch.so"] if backend == "redis" else []
    redis = RedisServer(data_dir=workdir / "redis", modules=modules).start()
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis.url,
        "SERVER__HOST": "127.0.0.1",
        "SERVER__GRPC_PORT": str(port),
        "SERVER__METRICS_PORT": "0",
        "VECTOR__BACKEND": backend,
        "VECTOR__CHROMA_PATH": str(workdir / "chroma"),
        "HF_HUB_OFFLINE": "1",
    }
    argv = [sys.executable, "-m", "mnemo_memory", "serve"]
    started = time.perf_counter()
    proc = ManagedProcess(argv, env=env, log_path=workdir / "serve.log").start()
    out: dict[str, float] = {}
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        health = health_pb2_grpc.HealthStub(channel)
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        deadline = started + 120
        wanted = {
            "serving": "mnemo.memory.v1.MemoryService",
            "recall_serving": "mnemo.memory.v1.Recall",
        }
        while (
            not all(k in out for k in (*wanted, "first_recall")) and time.perf_counter() < deadline
        ):
            for key, service in wanted.items():
                if key in out:
                    continue
                try:
                    status = health.Check(
                        health_pb2.HealthCheckRequest(service=service), timeout=1
                    ).status
                except grpc.RpcError:
                    continue
                if status == health_pb2.HealthCheckResponse.SERVING:
                    out[key] = round(time.perf_counter() - started, 2)
            if "serving" in out and "first_recall" not in out:
                if "seeded" not in out:
                    stub.AddMemory(
                        memory_pb2.AddMemoryRequest(user_id="u", text="User's cat is Pixel"),
                        timeout=30,
                    )
                    out["seeded"] = 1
                resp = stub.PrepareTurn(
                    memory_pb2.PrepareTurnRequest(
                        user_id="u", thread_id="t", query="what is my cat called?"
                    ),
                    timeout=30,
                )
                if resp.memories and not resp.degraded:
                    out["first_recall"] = round(time.perf_counter() - started, 2)
            time.sleep(0.05)
        out.pop("seeded", None)
        channel.close()
        return out
    finally:
        proc.stop()
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backend", choices=["chroma", "redis"], default="chroma")
    args = parser.parse_args(argv)
    runs = []
    for _ in range(args.rounds):
        workdir = Path(tempfile.mkdtemp(prefix="mnemo-coldstart-"))
        try:
            runs.append(one_start(args.backend, workdir))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    keys = ("serving", "recall_serving", "first_recall")
    res: dict[str, Any] = {
        "backend": args.backend,
        "runs": runs,
        "median_s": {k: statistics.median(r[k] for r in runs if k in r) for k in keys},
        "load_average": os.getloadavg(),
    }
    m = res["median_s"]
    text = "\n".join(
        [
            "## Cold start",
            "",
            f"`mnemo-memory serve` ({args.backend}), seconds from spawning the process, "
            f"median of {len(runs)} (load average "
            f"{', '.join(f'{x:.1f}' for x in res['load_average'])}, shared 2 CPUs):",
            "",
            "| health SERVING (Redis) | recall SERVING (model loaded, store open) | "
            "first PrepareTurn with memories |",
            "|---|---|---|",
            f"| {m['serving']} | {m['recall_serving']} | {m['first_recall']} |",
            "",
            "Raw: " + "; ".join(json.dumps(r) for r in runs),
            "",
        ]
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "coldstart.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "coldstart.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
