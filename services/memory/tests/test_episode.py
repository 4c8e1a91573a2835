"""Episodes and summaries through the worker's handlers (offline provider: deterministic
extractive summaries), on real Redis (ThreadStore) and real embedded Chroma."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis
from mnemo_memory.config import build_settings
from mnemo_memory.longterm import build_longterm
from mnemo_memory.stores.jobs import JobQueue
from mnemo_memory.stores.keys import KeyBuilder
from mnemo_memory.stores.threads import ThreadStore
from mnemo_memory.stores.vector import VectorFilter
from mnemo_memory.worker.main import build_context
from mnemo_memory.worker.tasks import InProcessTasks, enqueue_idle_episodes

TALK = [
    ("I am planning a trip to Japan in April.", "Great, Kyoto is lovely then."),
    ("My budget is 3000 euros.", "That works for two weeks."),
    ("I prefer trains over planes.", "The JR pass fits that."),
    ("I live in Lyon.", "Flights leave from Lyon or Paris."),
]


async def setup(redis_url, tmp_path, embedder, **memory):
    settings = build_settings(
        redis_url=redis_url,
        redis={"key_prefix": "e" + uuid.uuid4().hex[:8]},
        vector={"chroma_path": str(tmp_path / "chroma")},
        memory={"summary_keep_recent": 2, **memory},
        worker={"metrics_port": 0},
    )
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    keys = KeyBuilder(settings.redis.key_prefix)
    jobs = JobQueue(client, keys)
    await jobs.ensure_group()
    threads = ThreadStore(client, keys, settings.memory, jobs)
    for i, (u, a) in enumerate(TALK):
        await threads.append_turn("alice", "trip", f"k{i}", u, a)
    lt = build_longterm(settings, embedder=embedder)
    tasks = InProcessTasks(build_context(settings, client, lt, None))
    return settings, client, jobs, threads, lt, tasks


async def test_closed_thread_becomes_a_searchable_episode(redis_url, tmp_path, embedder):
    _settings, client, jobs, threads, lt, tasks = await setup(redis_url, tmp_path, embedder)
    await client.delete(jobs.stream)  # only the episode job matters here
    await threads.close_thread("alice", "trip")
    assert await tasks.drain(client, jobs.stream) == 1
    again = await tasks.run(
        {"type": "create_episode", "user_id": "alice", "thread_id": "trip", "job_id": "replay"}
    )
    assert again.detail["created"] is False  # replay writes nothing new
    episodes = VectorFilter(user_id="alice", kinds=("episode",))
    [hit] = await lt.recall("alice", "what did we plan for the Japan holiday", episodes)
    assert hit.record.kind == "episode"
    assert "Japan" in hit.record.text and len(hit.record.source_message_ids) == 8
    bobs = VectorFilter(user_id="bob", kinds=("episode",))
    assert await lt.recall("bob", "Japan", bobs) == []
    await lt.aclose()
    await client.aclose()


async def test_offline_extraction_and_summary_replace_oldest(redis_url, tmp_path, embedder):
    _settings, client, jobs, threads, lt, tasks = await setup(
        redis_url, tmp_path, embedder, extract_every_messages=2
    )
    await tasks.drain(client, jobs.stream)
    records, _ = await lt.list_memories("alice", VectorFilter(user_id="alice"), 50, "")
    assert {r.text for r in records} >= {
        "User lives in Lyon",
        "User prefers trains over planes",
        "User's budget is 3000 euros",
    }
    result = await tasks.run(
        {"type": "summarize_thread", "user_id": "alice", "thread_id": "trip", "job_id": "s1"}
    )
    assert result.detail == {"summarized": 6, "applied": True}
    left = await threads.read_messages("alice", "trip")
    assert [m.content for m in left] == ["I live in Lyon.", "Flights leave from Lyon or Paris."]
    summary = await threads.get_summary("alice", "trip")
    assert "Japan" in summary and "3000 euros" in summary
    await lt.aclose()
    await client.aclose()


async def test_idle_scan_enqueues_each_quiet_thread_once(redis_url, tmp_path, embedder):
    _settings, client, jobs, _threads, lt, tasks = await setup(redis_url, tmp_path, embedder)
    await client.delete(jobs.stream)
    await jobs.ensure_group()
    ctx = tasks.ctx
    # not idle yet with a 30-minute threshold
    assert await enqueue_idle_episodes(ctx, jobs, 30, 100) == 0
    # a negative threshold makes every thread idle; the second scan finds none again
    assert await enqueue_idle_episodes(ctx, jobs, -1, 100) == 1
    assert await enqueue_idle_episodes(ctx, jobs, -1, 100) == 0
    [(_, job)] = await client.xrange(jobs.stream)
    assert job["type"] == "create_episode" and job["reason"] == "idle"
    await lt.aclose()
    await client.aclose()
