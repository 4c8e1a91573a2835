"""The worker's ``/livez`` follows its consumer loop, not the metrics thread: while a job
blocks the event loop, ``/metrics`` still answers but ``/livez`` turns 503, and it recovers
once the loop runs again."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
import uuid

import redis.asyncio as aioredis
from mnemo_common import metrics
from mnemo_common.testing.procs import free_port, wait_for
from mnemo_memory.stores.jobs import JobQueue, JobType
from mnemo_memory.stores.keys import KeyBuilder
from mnemo_memory.worker.consumer import StreamWorker
from mnemo_memory.worker.liveness import Heartbeat
from mnemo_memory.worker.settings import WorkerSettings
from mnemo_memory.worker.tasks import TaskContext, TaskRegistry


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class WorkerThread:
    """A StreamWorker on its own event loop in a thread, with a job type that blocks it."""

    def __init__(self, redis_url: str, heartbeat: Heartbeat, prefix: str) -> None:
        self.redis_url, self.heartbeat, self.prefix = redis_url, heartbeat, prefix
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker: StreamWorker | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        registry = TaskRegistry()

        # a job whose handler makes a synchronous call that hangs the event loop
        @registry.register(JobType.CREATE_EPISODE)
        async def stall(ctx, job):
            time.sleep(STALL_S)  # noqa: ASYNC251 -- the point of the test
            return "stalled"

        client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        ctx = TaskContext(threads=None, longterm=None, extractor=None, summarizer=None, policy=None)
        settings = WorkerSettings(block_ms=50, idle_scan_interval_s=0, liveness_timeout_s=0.5)
        self.loop = asyncio.get_running_loop()
        self.worker = StreamWorker(
            redis=client,
            jobs=JobQueue(client, KeyBuilder(self.prefix)),
            ctx=ctx,
            registry=registry,
            settings=settings,
            idle_minutes=30,
            heartbeat=self.heartbeat,
        )
        try:
            await self.worker.run()
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.loop and self.worker:
            self.loop.call_soon_threadsafe(self.worker.request_stop)
        self.thread.join(15)


STALL_S = 4.0


async def _enqueue_stall(redis_url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        jobs = JobQueue(client, KeyBuilder(prefix))
        await jobs.enqueue("create_episode", "n.u1", "t1", reason="closed")
    finally:
        await client.aclose()


def test_livez_fails_while_the_loop_is_stuck_and_metrics_still_answer(redis_url) -> None:
    heartbeat = Heartbeat(0.5)
    port = free_port()
    server = metrics.start_metrics_server(port, "127.0.0.1", routes={"/livez": heartbeat.status})
    prefix = "l" + uuid.uuid4().hex[:8]
    worker = WorkerThread(redis_url, heartbeat, prefix)
    try:
        assert get(port, "/livez") == (200, "starting\n")  # model loading: startup probe's time
        worker.thread.start()
        wait_for(lambda: get(port, "/livez") == (200, "alive\n"), 20, "the loop to beat")
        asyncio.run(_enqueue_stall(redis_url, prefix))
        wait_for(lambda: get(port, "/livez")[0] == 503, 10, "/livez to notice the stuck loop")
        _, body = get(port, "/livez")
        assert "consumer loop silent" in body
        assert get(port, "/metrics")[0] == 200  # what the old liveness probe looked at
        wait_for(lambda: get(port, "/livez") == (200, "alive\n"), 20, "/livez to recover")
    finally:
        worker.stop()
        server.shutdown()
        server.server_close()


def test_a_redis_outage_keeps_livez_up() -> None:
    """Redis killed under a running worker: the loop fails, waits and beats again, so /livez
    stays 200 for many times its timeout (restarting the worker would not bring Redis back)."""
    from mnemo_common.testing.procs import RedisServer

    redis_server = RedisServer().start()
    # each failed round waits 1 s before the next (the loop's back-off): a 2.5 s timeout
    heartbeat = Heartbeat(2.5)
    worker = WorkerThread(redis_server.url, heartbeat, "o" + uuid.uuid4().hex[:8])
    try:
        worker.thread.start()
        wait_for(lambda: heartbeat.status() == (200, "alive\n"), 20, "the loop to beat")
        redis_server.kill()
        deadline = time.monotonic() + 6.0  # over two liveness timeouts without Redis
        while time.monotonic() < deadline:
            assert heartbeat.status()[0] == 200, heartbeat.status()
            time.sleep(0.1)
        assert worker.thread.is_alive()
    finally:
        worker.stop()
        redis_server.stop()
