"""The extraction worker on a real Redis Stream with real Chroma (server mode) and the
fake Anthropic API: crash mid-job → redelivery via XAUTOCLAIM without duplicate facts;
malformed LLM output → retries then a dead letter, the worker keeps going; Chroma down →
jobs wait in the stream and are processed when it returns; offline rule extraction."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import urllib.request
import uuid

import pytest
import redis.asyncio as aioredis
from mnemo_common.testing.procs import ManagedProcess, free_port, wait_for
from mnemo_memory.config import build_settings
from mnemo_memory.errors import UnavailableError
from mnemo_memory.longterm import build_longterm
from mnemo_memory.stores.jobs import JobQueue
from mnemo_memory.stores.keys import KeyBuilder
from mnemo_memory.stores.vector import VectorFilter
from mnemo_memory.worker.consumer import STORE_WAITS, StreamWorker
from mnemo_memory.worker.main import build_context
from mnemo_memory.worker.tasks import InProcessTasks, registry

FACT_REPLY = {
    "facts": [
        {
            "text": "User lives in Porto",
            "kind": "fact",
            "importance": 7,
            "source_message_ids": [],
            "replaces": None,
        }
    ]
}


def make_settings(redis_url, chroma_url=None, tmp_path=None, **extra):
    base = dict(
        redis_url=redis_url,
        redis={"key_prefix": "w" + uuid.uuid4().hex[:8]},
        vector={
            "collection_prefix": "w" + uuid.uuid4().hex[:8],
            "chroma_path": str(tmp_path / "chroma") if tmp_path else "./var/chroma",
        },
        chromadb_url=chroma_url,
        worker={
            "metrics_port": 0,
            "block_ms": 50,
            "claim_idle_ms": 300,
            "claim_interval_s": 0.2,
            "backoff_base_s": 0.05,
            "backoff_max_s": 0.2,
            "idle_scan_interval_s": 0,
            "max_attempts": 3,
        },
        memory={"extract_every_messages": 2},
    )
    base.update(extra)
    return build_settings(**base)


async def seed_thread(settings, text="I live in Porto and I love hiking."):
    from mnemo_memory.stores.threads import ThreadStore

    client = aioredis.Redis.from_url(settings.effective_redis_url, decode_responses=True)
    keys = KeyBuilder(settings.redis.key_prefix)
    jobs = JobQueue(client, keys)
    await jobs.ensure_group()
    threads = ThreadStore(client, keys, settings.memory, jobs)
    # one turn crosses the extraction threshold (every 2 messages): one job on the stream
    await threads.append_turn("alice", "th-1", "k1", text, "Nice!")
    return client, jobs


async def facts_of(lt, user="alice"):
    """The user's extracted memories (message memories are tested in test_message_units)."""
    kinds = ("fact", "preference", "event", "episode")
    records, _ = await lt.list_memories(user, VectorFilter(user_id=user, kinds=kinds), 100, "")
    return sorted(r.text for r in records)


@pytest.fixture
def worker_env(redis_url, chroma_server):
    return redis_url, chroma_server


async def test_killed_mid_job_is_redelivered_and_writes_no_duplicate(
    worker_env, fake_anthropic, embedder, tmp_path
):
    redis_url, chroma = worker_env
    settings = make_settings(redis_url, chroma.url)
    client, jobs = await seed_thread(settings)
    assert await client.xlen(jobs.stream) == 1
    env = {
        **os.environ,
        **fake_anthropic.env(max_retries=0, timeout_s=60),
        "REDIS_URL": redis_url,
        "REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "CHROMADB_URL": chroma.url,
        "VECTOR__COLLECTION_PREFIX": settings.vector.collection_prefix,
        "WORKER__METRICS_PORT": "0",
        "WORKER__BLOCK_MS": "50",
        "WORKER__CLAIM_IDLE_MS": "300",
        "WORKER__CLAIM_INTERVAL_S": "0.2",
        "WORKER__IDLE_SCAN_INTERVAL_S": "0",
        "LOG__LEVEL": "INFO",
    }
    fake_anthropic.set_delay(60)  # the first worker hangs inside the LLM call
    argv = [sys.executable, "-m", "mnemo_memory", "worker"]
    first = ManagedProcess(argv, env=env, log_path=tmp_path / "w1.log").start()
    try:
        wait_for(lambda: len(fake_anthropic.requests) >= 1, 90, "worker's LLM call")
        first.kill()  # SIGKILL mid-job
        info = await client.xpending(jobs.stream, "workers")
        assert info["pending"] == 1  # delivered, never acked
        fake_anthropic.set_delay(0)
        fake_anthropic.enqueue_json(FACT_REPLY)
        metrics_port = free_port()
        env2 = {**env, "WORKER__METRICS_PORT": str(metrics_port)}
        second = ManagedProcess(argv, env=env2, log_path=tmp_path / "w2.log").start()
        try:

            async def drained():
                return await client.xlen(jobs.stream) == 0

            for _ in range(600):
                if await drained():
                    break
                await asyncio.sleep(0.1)
            assert await drained(), second.log_tail()
            scraped = await asyncio.to_thread(scrape, metrics_port)
            assert 'mnemo_worker_jobs_processed_total{type="extract_facts"} 1.0' in scraped
            assert "mnemo_worker_jobs_claimed_total 1.0" in scraped
            assert (
                'mnemo_worker_llm_tokens_total{direction="input",type="extract_facts"}' in scraped
            )
            second.signal(signal.SIGTERM)  # graceful: exits 0 after the job in hand
            assert second.proc.wait(timeout=30) == 0
        finally:
            second.stop()
        log = (tmp_path / "w2.log").read_text()
        assert "claimed stale job" in log and "worker stopped" in log
        lt = build_longterm(settings, embedder=embedder)
        assert await facts_of(lt) == ["User lives in Porto"]
        # the same job once more (at-least-once delivery can repeat it): nothing new
        fake_anthropic.enqueue_json(FACT_REPLY)
        ctx = build_context(settings, client, lt, _provider(fake_anthropic))
        await InProcessTasks(ctx).run(
            {
                "type": "extract_facts",
                "user_id": "alice",
                "thread_id": "th-1",
                "job_id": "again",
                "new_messages": "2",
            }
        )
        assert await facts_of(lt) == ["User lives in Porto"]
        await lt.aclose()
    finally:
        first.stop()
        await client.aclose()


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
        return resp.read().decode()


def _provider(fake):
    from mnemo_common.llm import build_provider

    return build_provider(fake.settings(max_retries=0))


async def run_worker_until(worker, predicate, limit_s=60.0):
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(int(limit_s * 20)):
            if await predicate():
                return True
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        return False
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)


async def test_malformed_llm_output_is_retried_then_dead_lettered(
    redis_url, fake_anthropic, embedder, tmp_path
):
    settings = make_settings(redis_url, tmp_path=tmp_path)
    client, jobs = await seed_thread(settings)
    lt = build_longterm(settings, embedder=embedder)
    provider = _provider(fake_anthropic)
    for _ in range(3):
        fake_anthropic.enqueue_text("Sure! The user lives in Porto.")  # not JSON
    ctx = build_context(settings, client, lt, provider)
    worker = StreamWorker(
        redis=client,
        jobs=jobs,
        ctx=ctx,
        registry=registry,
        settings=settings.worker,
        idle_minutes=30,
    )

    async def dead():
        return await client.xlen(jobs.dead_stream) == 1

    assert await run_worker_until(worker, dead)
    [(_, letter)] = await client.xrange(jobs.dead_stream)
    assert letter["attempts"] == "3" and "invalid_output" in letter["error"]
    assert letter["type"] == "extract_facts" and letter["user_id"] == "alice"
    assert await client.xlen(jobs.stream) == 0
    assert await facts_of(lt) == []  # no garbage stored
    assert len(fake_anthropic.requests) == 3
    # the worker is still fine: a JSON reply whose only fact is unusable stores nothing
    # and completes (the fact is dropped, not retried), a good one works
    await client.hset("x", "y", "z")
    fake_anthropic.enqueue_json({"facts": [{"text": "x", "kind": "weird", "importance": 99}]})
    fake_anthropic.enqueue_json(FACT_REPLY)
    await jobs.enqueue("extract_facts", "alice", "th-1", new_messages=2)
    await jobs.enqueue("extract_facts", "alice", "th-1", new_messages=2)

    async def done():
        return await client.xlen(jobs.stream) == 0 and await facts_of(lt) != []

    worker = StreamWorker(
        redis=client,
        jobs=jobs,
        ctx=ctx,
        registry=registry,
        settings=settings.worker,
        idle_minutes=30,
    )
    assert await run_worker_until(worker, done)
    assert await facts_of(lt) == ["User lives in Porto"]
    assert "EXISTING facts" in fake_anthropic.last_user_message()
    await provider.aclose()
    await lt.aclose()
    await client.aclose()


async def test_chroma_down_jobs_wait_and_run_when_it_returns(redis_url, chroma_server, embedder):
    settings = make_settings(redis_url, chroma_server.url)
    client, jobs = await seed_thread(settings, "My favourite colour is teal.")
    lt = build_longterm(settings, embedder=embedder)
    ctx = build_context(settings, client, lt, None)  # offline: rule-based extraction
    worker = StreamWorker(
        redis=client,
        jobs=jobs,
        ctx=ctx,
        registry=registry,
        settings=settings.worker,
        idle_minutes=30,
    )
    chroma_server.stop()
    try:
        with pytest.raises(UnavailableError):
            await lt.recall("alice", "colour", VectorFilter(user_id="alice"))
        waits = STORE_WAITS.labels("vector_store")
        waits_before = waits._value.get()
        task = asyncio.create_task(worker.run())

        async def pending_one():
            info = await client.xpending(jobs.stream, "workers")
            return info["pending"] == 1

        for _ in range(200):
            if await pending_one():
                break
            await asyncio.sleep(0.05)
        assert await pending_one()
        # more waits than WORKER__MAX_ATTEMPTS (3): attempts would have dead-lettered it
        for _ in range(600):
            if waits._value.get() >= waits_before + 5:
                break
            await asyncio.sleep(0.05)
        assert waits._value.get() >= waits_before + 5
        assert await client.xlen(jobs.stream) == 1 and await client.xlen(jobs.dead_stream) == 0
    finally:
        chroma_server.start()
    for _ in range(600):
        if await client.xlen(jobs.stream) == 0:
            break
        await asyncio.sleep(0.1)
    worker.request_stop()
    await asyncio.wait_for(task, 30)
    assert await client.xlen(jobs.stream) == 0
    assert await facts_of(lt) == ["User's favourite colour is teal"]
    await lt.aclose()
    await client.aclose()


def test_offline_rule_extractor_reads_first_person_statements():
    from mnemo_memory.worker.extract import rule_facts

    got = rule_facts(
        "Hi! I live in Berlin. My favourite food is ramen. I'm a nurse. "
        "What time is it? I prefer tea over coffee."
    )
    assert got == [
        ("User lives in Berlin", "fact", 7),
        ("User's favourite food is ramen", "preference", 6),
        ("User is a nurse", "fact", 6),
        ("User prefers tea over coffee", "preference", 6),
    ]
    # one sentence, two statements
    assert rule_facts("I live in Lisbon and I prefer short answers.") == [
        ("User lives in Lisbon", "fact", 7),
        ("User prefers short answers", "preference", 6),
    ]
    assert rule_facts("My dog is Rex, but I'm a cat person.") == [
        ("User's dog is Rex", "fact", 6),
        ("User is a cat person", "fact", 6),
    ]


async def test_user_erased_while_a_job_runs_gets_nothing_back(
    redis_url, fake_anthropic, embedder, tmp_path
):
    """ForgetUser while the worker is mid LLM call for that user: the job's facts must not
    come back (the erasure marker), and the user's next conversation is remembered again."""
    from mnemo_memory.stores import erasure
    from mnemo_memory.stores.shortterm import build_stores
    from mnemo_memory.worker.consumer import JOBS_DROPPED

    settings = make_settings(redis_url, tmp_path=tmp_path)
    client, jobs = await seed_thread(settings)
    lt = build_longterm(settings, embedder=embedder)
    provider = _provider(fake_anthropic)
    fake_anthropic.set_delay(1.0)
    fake_anthropic.enqueue_json(FACT_REPLY)
    ctx = build_context(settings, client, lt, provider)
    worker = StreamWorker(
        redis=client, jobs=jobs, ctx=ctx, registry=registry, settings=settings.worker,
        idle_minutes=30,
    )  # fmt: skip
    dropped_before = JOBS_DROPPED.labels("extract_facts")._value.get()
    task = asyncio.create_task(worker.run())
    try:
        for _ in range(200):  # the job's LLM call is in flight
            if fake_anthropic.requests:
                break
            await asyncio.sleep(0.02)
        assert fake_anthropic.requests
        # what ForgetUser does
        receipt = await erasure.forget_user(build_stores(settings, client), "alice")
        assert receipt["threads"] == 1
        await lt.forget_user("alice")
        for _ in range(200):
            if JOBS_DROPPED.labels("extract_facts")._value.get() > dropped_before:
                break
            await asyncio.sleep(0.05)
        assert JOBS_DROPPED.labels("extract_facts")._value.get() == dropped_before + 1
        assert await facts_of(lt) == []
        assert await client.xlen(jobs.stream) == 0 and await client.xlen(jobs.dead_stream) == 0
        # erasure is not a ban: what the user says afterwards is remembered
        fake_anthropic.set_delay(0)
        fake_anthropic.enqueue_json(FACT_REPLY)
        await seed_thread(settings)
        for _ in range(400):
            if await facts_of(lt) == ["User lives in Porto"]:
                break
            await asyncio.sleep(0.05)
        assert await facts_of(lt) == ["User lives in Porto"]
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    await provider.aclose()
    await lt.aclose()
    await client.aclose()


async def test_extraction_of_messages_no_longer_held_reads_nothing_else(
    redis_url, embedder, tmp_path
):
    """A job whose messages were summarised away must not extract the newest ones instead
    (the job that covers those would extract them a second time)."""
    settings = make_settings(redis_url, tmp_path=tmp_path)
    client, _jobs = await seed_thread(settings)
    lt = build_longterm(settings, embedder=embedder)
    tasks = InProcessTasks(build_context(settings, client, lt, None))  # offline rules
    job = {"type": "extract_facts", "user_id": "alice", "thread_id": "th-1", "new_messages": "2"}
    result = await tasks.run({**job, "upto_message_id": "msg_summarised_away"})
    assert result.detail == {"facts": 0, "reason": "messages no longer held"}
    assert await facts_of(lt) == []
    await tasks.run(job)  # a job naming no message takes the newest ones
    assert sorted(await facts_of(lt)) == ["User lives in Porto", "User loves hiking"]
    await lt.aclose()
    await client.aclose()


async def test_a_slow_job_is_not_taken_over_while_its_worker_lives(
    redis_url, fake_anthropic, embedder, tmp_path
):
    """An LLM call longer than WORKER__CLAIM_IDLE_MS: the other worker must not claim the
    job and run it again (double LLM cost, and a second, differently worded fact)."""
    from mnemo_memory.worker.consumer import JOBS_CLAIMED

    settings = make_settings(redis_url, tmp_path=tmp_path)
    client, jobs = await seed_thread(settings)
    lt = build_longterm(settings, embedder=embedder)
    provider = _provider(fake_anthropic)
    fake_anthropic.set_delay(3.0)  # three times the claim idle time (1 s, below)
    fake_anthropic.enqueue_json(FACT_REPLY)
    fake_anthropic.enqueue_json(FACT_REPLY)
    ctx = build_context(settings, client, lt, provider)
    workers = [
        StreamWorker(
            redis=client,
            jobs=jobs,
            ctx=ctx,
            registry=registry,
            settings=settings.worker.model_copy(
                update={"consumer_name": name, "claim_idle_ms": 1000}
            ),
            idle_minutes=30,
        )
        for name in ("w-one", "w-two")
    ]
    claimed_before = JOBS_CLAIMED._value.get()
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        for _ in range(200):
            if await client.xlen(jobs.stream) == 0:
                break
            await asyncio.sleep(0.05)
        # done: the entry is acked and deleted, so no claim can come later; a claim during
        # the 3 s call (the other worker scans every 0.2 s for jobs idle 1 s) counted in
        # JOBS_CLAIMED and sent a second LLM request before this point
        assert await client.xlen(jobs.stream) == 0
    finally:
        for w in workers:
            w.request_stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert len(fake_anthropic.chat_requests()) == 1
    assert JOBS_CLAIMED._value.get() == claimed_before
    assert await facts_of(lt) == ["User lives in Porto"]
    await provider.aclose()
    await lt.aclose()
    await client.aclose()
