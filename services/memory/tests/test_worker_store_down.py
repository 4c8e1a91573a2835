"""A Redis outage is not the job's fault: the worker waits for Redis and retries the same
job without spending attempts, so a good job is never dead-lettered by an outage (issue
11: 3 ConnectionErrors used to send it to the dead-letter stream). Real Redis, killed and
restarted mid-job; the Chroma case is ``test_worker.py::test_chroma_down_...``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis
import redis.asyncio as aioredis
from mnemo_memory.longterm import build_longterm
from mnemo_memory.worker import consumer
from mnemo_memory.worker.consumer import StreamWorker
from mnemo_memory.worker.main import build_context
from mnemo_memory.worker.tasks import registry
from test_worker import FACT_REPLY, _provider, facts_of, make_settings, seed_thread


def waits(store: str) -> float:
    return consumer.STORE_WAITS.labels(store)._value.get()


async def poll(predicate: Any, limit_s: float, what: str) -> None:
    for _ in range(int(limit_s * 20)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_redis_killed_mid_job_waits_without_spending_attempts(
    fresh_redis, fake_anthropic, embedder, tmp_path
):
    settings = make_settings(fresh_redis.url, tmp_path=tmp_path)
    settings.worker.max_attempts = 2
    client, jobs = await seed_thread(settings)
    lt = build_longterm(settings, embedder=embedder)
    provider = _provider(fake_anthropic)
    calls: list[int] = []

    def answer_and_kill_redis_once(body: Any) -> str:
        calls.append(1)
        if len(calls) == 1:
            fresh_redis.kill()  # the job is in hand: Redis dies under it
        return json.dumps(FACT_REPLY)

    fake_anthropic.set_default_reply(answer_and_kill_redis_once)
    ctx = build_context(settings, client, lt, provider)
    worker = StreamWorker(
        redis=client,
        jobs=jobs,
        ctx=ctx,
        registry=registry,
        settings=settings.worker,
        idle_minutes=30,
    )
    before = waits("redis")
    task = asyncio.create_task(worker.run())
    try:
        # far more failed tries than max_attempts=2: none of them counted against the job
        await poll(lambda: _true(waits("redis") - before >= 4), 30, "the job to wait for Redis")
        assert not task.done()
        fresh_redis.start()

        async def done() -> bool:
            try:
                return await client.xlen(jobs.stream) == 0
            except redis.exceptions.ConnectionError:  # our pooled connection died with Redis
                return False

        await poll(done, 60, "the job to finish once Redis is back")
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    assert await client.xlen(jobs.dead_stream) == 0  # not dead-lettered
    assert await facts_of(lt) == ["User lives in Porto"]  # stored once, no duplicate
    assert len(calls) >= 2  # the job ran again after the outage
    await provider.aclose()
    await lt.aclose()
    await client.aclose()


async def _true(value: bool) -> bool:
    return value


async def test_a_bad_job_still_spends_its_attempts(redis_url, fake_anthropic, embedder, tmp_path):
    """The other side of the line: the LLM answering garbage is the job's problem."""
    settings = make_settings(redis_url, tmp_path=tmp_path)
    settings.worker.max_attempts = 2
    client, jobs = await seed_thread(settings)
    lt = build_longterm(settings, embedder=embedder)
    provider = _provider(fake_anthropic)
    fake_anthropic.set_default_reply("not JSON at all")
    worker = StreamWorker(
        redis=client,
        jobs=jobs,
        ctx=build_context(settings, client, lt, provider),
        registry=registry,
        settings=settings.worker,
        idle_minutes=30,
    )
    task = asyncio.create_task(worker.run())
    try:

        async def dead() -> bool:
            return await client.xlen(jobs.dead_stream) == 1

        await poll(dead, 30, "the dead letter")
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    [(_, letter)] = await client.xrange(jobs.dead_stream)
    assert letter["attempts"] == "2"
    await provider.aclose()
    await lt.aclose()
    await aioredis.Redis.aclose(client)
