"""Which failures the worker retries: a bug or a malformed job is dead-lettered at the
first failure (a retry runs the same code on the same fields), anything else is retried up
to WORKER__MAX_ATTEMPTS. Real Redis Streams; the handlers are stand-ins that fail on purpose."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from mnemo_memory.config import build_settings
from mnemo_memory.stores.jobs import JobQueue, JobType
from mnemo_memory.stores.keys import KeyBuilder
from mnemo_memory.worker.consumer import JOBS_RETRIED, StreamWorker
from mnemo_memory.worker.extract import ExtractiveSummarizer, RuleExtractor
from mnemo_memory.worker.tasks import TaskContext, TaskRegistry

MAX_ATTEMPTS = 3


def worker_for(redis_url: str, failure: Exception) -> tuple[StreamWorker, JobQueue, list[int]]:
    settings = build_settings(
        redis_url=redis_url,
        redis={"key_prefix": "wf" + str(id(failure))},
        worker={
            "metrics_port": 0,
            "block_ms": 50,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.02,
            "idle_scan_interval_s": 0,
            "max_attempts": MAX_ATTEMPTS,
        },
    )
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    jobs = JobQueue(client, KeyBuilder(settings.redis.key_prefix))
    calls: list[int] = []
    registry = TaskRegistry()

    @registry.register(JobType.EXTRACT_FACTS)
    async def failing(ctx, job):
        calls.append(1)
        raise failure

    ctx = TaskContext(
        threads=None,
        longterm=None,
        extractor=RuleExtractor(),
        summarizer=ExtractiveSummarizer(200),
        policy=settings.memory,
    )
    worker = StreamWorker(
        redis=client,
        jobs=jobs,
        ctx=ctx,
        registry=registry,
        settings=settings.worker,
        idle_minutes=30,
    )
    return worker, jobs, calls


async def dead_letters_of(worker: StreamWorker, jobs: JobQueue) -> list[dict[str, str]]:
    await jobs.ensure_group()
    await jobs.enqueue(JobType.EXTRACT_FACTS, "alice", "th-1", new_messages=2)
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(600):
            if await jobs.redis.xlen(jobs.dead_stream):
                break
            await asyncio.sleep(0.05)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    assert await jobs.redis.xlen(jobs.stream) == 0  # nothing left behind either way
    letters = [fields for _id, fields in await jobs.redis.xrange(jobs.dead_stream)]
    await jobs.redis.aclose()
    return letters


@pytest.mark.parametrize(
    "bug",
    [
        TypeError("unsupported operand"),
        AttributeError("'NoneType' object has no attribute 'id'"),
        KeyError("user_id"),
        ValueError("invalid literal for int()"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_a_bug_is_dead_lettered_at_its_first_failure(redis_url, bug):
    worker, jobs, calls = worker_for(redis_url, bug)
    retried = JOBS_RETRIED.labels("extract_facts")._value.get()
    letters = await dead_letters_of(worker, jobs)
    assert len(calls) == 1
    assert len(letters) == 1 and letters[0]["attempts"] == "1"
    assert type(bug).__name__ in letters[0]["error"]
    assert JOBS_RETRIED.labels("extract_facts")._value.get() == retried


@pytest.mark.parametrize(
    "transient",
    [RuntimeError("the LLM answered 529"), TimeoutError("the LLM did not answer")],
    ids=lambda e: type(e).__name__,
)
async def test_a_transient_failure_is_retried_before_it_is_dead_lettered(redis_url, transient):
    worker, jobs, calls = worker_for(redis_url, transient)
    letters = await dead_letters_of(worker, jobs)
    assert len(calls) == MAX_ATTEMPTS
    assert len(letters) == 1 and letters[0]["attempts"] == str(MAX_ATTEMPTS)


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "extract_facts", "user_id": "alice", "thread_id": "th-1", "enqueued_at_ms": "x"},
        {"type": "no_such_type", "user_id": "alice", "thread_id": "th-1"},
        {"user_id": "alice"},
    ],
    ids=["bad-number", "unknown-type", "no-type"],
)
async def test_a_malformed_entry_is_dead_lettered_with_its_fields_and_the_worker_goes_on(
    redis_url, raw
):
    """An entry no Job can be read from (written by another version, or by hand) is
    dead-lettered as it was, with why; the worker neither crashes nor retries it, and the
    next job runs."""
    worker, jobs, calls = worker_for(redis_url, RuntimeError("unused"))
    await jobs.ensure_group()
    await jobs.redis.xadd(jobs.stream, {"job_id": "job-raw", **raw})
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(600):
            if await jobs.redis.xlen(jobs.dead_stream):
                break
            await asyncio.sleep(0.05)
        assert not task.done()  # the loop survived the entry
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    (letter,) = [fields for _id, fields in await jobs.redis.xrange(jobs.dead_stream)]
    assert {k: letter[k] for k in raw} == raw and letter["job_id"] == "job-raw"
    assert letter["attempts"] == "1" and letter["error"]
    assert calls == []  # no handler ran on it
    assert await jobs.redis.xlen(jobs.stream) == 0
    await jobs.redis.aclose()
