"""The gauges the chart's alerts and dashboard read, from a real `mnemo-memory serve` process
scraped over HTTP: serving status, Redis persistence (INFO persistence of a real Redis whose
data directory is taken away) and the long-term store's record count."""

from __future__ import annotations

import contextlib
import re
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import redis
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo.memory.v1 import memory_pb2_grpc
from mnemo_common.testing.procs import RedisServer, free_port, wait_for

pytestmark = pytest.mark.slow


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        m = re.match(r"^(mnemo_memory_[a-z_]+(?:\{[^}]*\})?) (\S+)$", line)
        if m:
            samples[m.group(1)] = float(m.group(2))
    return samples


def _wait_gauges(port: int, want: dict[str, float], what: str, timeout: float = 30) -> None:
    seen: dict[str, float] = {}

    def check() -> bool:
        seen.update(_scrape(port))
        return all(seen.get(k) == v for k, v in want.items())

    try:
        wait_for(check, timeout, what, interval=0.1)
    except TimeoutError:
        got = {k: seen.get(k) for k in want}
        raise AssertionError(f"{what}: wanted {want}, scraped {got}") from None


def _ops(value: float) -> dict[str, float]:
    return {
        f'mnemo_memory_redis_persistence_ok{{operation="{op}"}}': value
        for op in ("rdb_bgsave", "aof_rewrite")
    }


@pytest.fixture
def private_redis(tmp_path: Path):
    # CONFIG SET dir (a protected config) lets the test move Redis onto a doomed directory
    server = RedisServer(
        appendonly=True,
        data_dir=tmp_path / "redis",
        extra_args=["--enable-protected-configs", "yes"],
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def serve(memory_process, memory_settings, private_redis) -> Callable[[], tuple[str, int]]:
    """Start the service on the private Redis; (gRPC address, metrics port)."""

    def start() -> tuple[str, int]:
        port = free_port()
        env = {"SERVER__METRICS_PORT": str(port), "SERVER__STATS_INTERVAL_S": "0.2"}
        proc = memory_process(memory_settings(redis_url=private_redis.url), env=env).start()
        return proc.address, port

    return start


def _save_and_rewrite(client: redis.Redis) -> None:
    """BGSAVE, then BGREWRITEAOF once the save has ended (Redis refuses the rewrite at
    once when it cannot create its file; INFO records that failure all the same)."""
    client.bgsave()
    wait_for(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0, 10, "bgsave")
    with contextlib.suppress(redis.ResponseError):
        client.bgrewriteaof()
    wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0, 10, "rewrite")


def test_persistence_gauges_follow_failed_and_recovered_writes(
    serve, private_redis, tmp_path: Path
) -> None:
    _, port = serve()
    aof_write = 'mnemo_memory_redis_persistence_ok{operation="aof_write"}'
    _wait_gauges(port, {**_ops(1.0), aof_write: 1.0}, "persistence ok")
    client = redis.Redis.from_url(private_redis.url)
    try:
        # the data directory disappears (a lost volume mount): saves and rewrites fail
        doomed = tmp_path / "doomed"
        doomed.mkdir()
        client.config_set("dir", str(doomed))
        shutil.rmtree(doomed)
        _save_and_rewrite(client)
        _wait_gauges(port, _ops(0.0), "persistence failures reported")
        # a writable directory again: the next save and rewrite succeed, the gauges recover
        client.config_set("dir", str(private_redis.data_dir))
        _save_and_rewrite(client)
        _wait_gauges(port, _ops(1.0), "persistence recovered")
    finally:
        client.close()


def test_serving_gauge_follows_redis(serve, private_redis) -> None:
    _, port = serve()
    _wait_gauges(port, {"mnemo_memory_serving": 1.0, "mnemo_memory_redis_up": 1.0}, "serving")
    private_redis.kill()
    _wait_gauges(port, {"mnemo_memory_serving": 0.0, "mnemo_memory_redis_up": 0.0}, "down")
    private_redis.start()
    _wait_gauges(port, {"mnemo_memory_serving": 1.0, "mnemo_memory_redis_up": 1.0}, "back")


def _add(stub: memory_pb2_grpc.MemoryServiceStub, user: str, text: str) -> bool:
    try:
        stub.AddMemory(pb.AddMemoryRequest(user_id=user, text=text), timeout=10)
    except grpc.RpcError as exc:  # the embedding model or the store is still opening
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return False
    return True


def test_vector_gauge_counts_long_term_records(serve) -> None:
    address, port = serve()
    _wait_gauges(port, {"mnemo_memory_vectors": 0.0}, "empty store counted", timeout=60)
    with grpc.insecure_channel(address) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        for user, text in (
            ("alice", "Alice keeps bees"),
            ("alice", "Alice lives in Lyon"),
            ("bob", "Bob keeps goats"),
        ):
            wait_for(lambda u=user, t=text: _add(stub, u, t), 60, "AddMemory", interval=0.2)
    _wait_gauges(port, {"mnemo_memory_vectors": 3.0}, "records counted")


def test_the_worker_exports_none_of_the_memory_service_gauges(
    private_redis, chroma_server, tmp_path: Path
) -> None:
    """The per-pod MnemoMemoryNotServing alert reads mnemo_memory_serving without a job
    filter: a worker exporting the gauge (0, never set) would fire it for every worker pod."""
    import os
    import sys

    from mnemo_common.testing.procs import ManagedProcess

    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": private_redis.url,
        "CHROMADB_URL": chroma_server.url,
        "WORKER__METRICS_PORT": str(port),
    }
    argv = [sys.executable, "-m", "mnemo_memory", "worker"]
    proc = ManagedProcess(argv, env=env, log_path=tmp_path / "worker.log").start()
    try:
        scraped: dict[str, str] = {}

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    scraped["text"] = r.read().decode()
            except OSError:
                return False
            return "mnemo_worker_" in scraped["text"]

        wait_for(up, 60, "worker metrics")
        names = {line.split("{")[0].split(" ")[0] for line in scraped["text"].splitlines()}
        assert not names & {
            "mnemo_memory_serving",
            "mnemo_memory_redis_up",
            "mnemo_memory_redis_persistence_ok",
            "mnemo_memory_vectors",
        }
    finally:
        proc.stop()
