"""ThreadStore and JobQueue directly on a real Redis (the worker's seam included)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from mnemo_memory.errors import NotFoundError
from mnemo_memory.stores.shortterm import ShortTermStores, build_stores


@pytest.fixture(
    params=["inline", "cluster-style", pytest.param("cluster", marks=pytest.mark.cluster)]
)
async def stores(request, memory_settings, redis_url) -> AsyncIterator[ShortTermStores]:
    """Both code paths: global keys inside the Lua scripts, and relayed from the user's
    outbox (what Redis Cluster needs) — on a real Redis, and on a real Redis Cluster."""
    if request.param == "cluster":
        from mnemo_memory.stores.redis_client import create_redis

        cluster = request.getfixturevalue("redis_cluster")
        settings = memory_settings(
            redis_url=cluster.url,
            memory={
                "max_thread_messages": 50,
                "extract_every_messages": 10,
                "summary_threshold_messages": 30,
            },
        )
        client = create_redis(settings)
        s = build_stores(settings, client, inline_global=False)
        await s.jobs.ensure_group()
        yield s
        await client.aclose()
        return
    settings = memory_settings(
        memory={
            "max_thread_messages": 50,
            "extract_every_messages": 10,
            "summary_threshold_messages": 30,
        }
    )
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    s = build_stores(settings, client, inline_global=request.param == "inline")
    await s.jobs.ensure_group()
    yield s
    await client.aclose()


async def commit(s: ShortTermStores, n: int, uid: str = "u1", tid: str = "t1", key: str = "k"):
    return await s.threads.append_turn(uid, tid, f"{key}{n}", f"question {n}", f"answer {n}")


async def test_concurrent_commits_on_one_thread_lose_nothing(stores) -> None:
    results = await asyncio.gather(*(commit(stores, i) for i in range(24)))
    assert not any(r.duplicate for r in results)
    messages = await stores.threads.read_messages("u1", "t1")
    assert len(messages) == 48
    contents = {m.content for m in messages}
    assert contents == {f"question {i}" for i in range(24)} | {f"answer {i}" for i in range(24)}
    # each turn stays a pair: the user message directly followed by its answer
    for q, a in zip(messages[::2], messages[1::2], strict=True):
        assert q.role == "user" and a.role == "assistant"
        assert q.content.split()[1] == a.content.split()[1]
    meta = await stores.threads.get_meta("u1", "t1")
    assert meta is not None and meta.message_count == 48 and meta.total_messages == 48


async def test_replayed_idempotency_key_writes_nothing(stores) -> None:
    first = await commit(stores, 1)
    before = await stores.redis.lrange(stores.keys.messages("u1", "t1"), 0, -1)
    replays = await asyncio.gather(*(commit(stores, 1) for _ in range(5)))
    after = await stores.redis.lrange(stores.keys.messages("u1", "t1"), 0, -1)
    assert after == before and len(after) == 2
    assert all(r.duplicate and r.message_ids == first.message_ids for r in replays)
    assert not first.duplicate


async def test_history_is_trimmed_to_the_configured_maximum(stores) -> None:
    for i in range(30):
        await commit(stores, i)
    messages = await stores.threads.read_messages("u1", "t1")
    assert len(messages) == 50
    assert messages[0].content == "question 5" and messages[-1].content == "answer 29"


async def test_summary_replacement_keeps_messages_appended_concurrently(stores) -> None:
    for i in range(6):
        await commit(stores, i)
    oldest = [m.id for m in (await stores.threads.read_messages("u1", "t1"))[:8]]
    # a turn lands between the worker's read and its replace
    await commit(stores, 99)
    assert await stores.threads.replace_oldest_with_summary("u1", "t1", oldest, "S1")
    left = await stores.threads.read_messages("u1", "t1")
    assert [m.content for m in left] == [
        "question 4",
        "answer 4",
        "question 5",
        "answer 5",
        "question 99",
        "answer 99",
    ]
    assert await stores.threads.get_summary("u1", "t1") == "S1"
    # the same (now stale) replace again is a no-op: nothing more is dropped
    assert not await stores.threads.replace_oldest_with_summary("u1", "t1", oldest, "S2")
    assert len(await stores.threads.read_messages("u1", "t1")) == 6
    assert await stores.threads.get_summary("u1", "t1") == "S1"


async def test_stale_replace_after_trim_or_reorder_is_a_noop(stores) -> None:
    for i in range(3):
        await commit(stores, i)
    ids = [m.id for m in await stores.threads.read_messages("u1", "t1")]
    assert not await stores.threads.replace_oldest_with_summary("u1", "t1", ids[1:3], "x")
    assert not await stores.threads.replace_oldest_with_summary("u1", "t1", [*ids[:7], "zz"], "x")
    assert not await stores.threads.replace_oldest_with_summary("u1", "t1", [], "x")
    assert not await stores.threads.replace_oldest_with_summary("u1", "nope", ids[:2], "x")
    assert len(await stores.threads.read_messages("u1", "t1")) == 6
    assert await stores.threads.get_summary("u1", "t1") is None


async def test_concurrent_replace_and_commits_never_lose_a_new_turn(stores) -> None:
    for i in range(5):
        await commit(stores, i)
    oldest = [m.id for m in (await stores.threads.read_messages("u1", "t1"))[:6]]
    results = await asyncio.gather(
        stores.threads.replace_oldest_with_summary("u1", "t1", oldest, "S"),
        *(commit(stores, 100 + i) for i in range(10)),
    )
    assert results[0] is True
    contents = [m.content for m in await stores.threads.read_messages("u1", "t1")]
    assert len(contents) == 4 + 20
    assert {f"question {100 + i}" for i in range(10)} <= set(contents)


async def test_jobs_are_enqueued_at_thresholds_and_summary_only_once(stores) -> None:
    enqueued = []
    for i in range(20):
        enqueued.append((await commit(stores, i)).enqueued_jobs)
    entries = await stores.redis.xrange(stores.jobs.stream)
    types = [f["type"] for _, f in entries]
    # 40 messages: extraction every 10 messages, summary once (threshold 30) while pending
    assert types.count("extract_facts") == 4
    assert types.count("summarize_thread") == 1
    extract = next(f for _, f in entries if f["type"] == "extract_facts")
    assert extract["new_messages"] == "10" and extract["user_id"] == "u1"
    assert extract["upto_message_id"].endswith("a") and extract["job_id"].startswith("job-")
    assert set(extract) >= {"job_id", "type", "user_id", "thread_id", "enqueued_at_ms"}
    summary = next(f for _, f in entries if f["type"] == "summarize_thread")
    assert summary["message_count"] == "32"
    assert enqueued[15] == ["summarize_thread"]
    # the worker's replace clears the pending flag: the next crossing enqueues again
    ids = [m.id for m in (await stores.threads.read_messages("u1", "t1"))[:30]]
    assert await stores.threads.replace_oldest_with_summary("u1", "t1", ids, "S")
    for i in range(12):
        await commit(stores, 100 + i)
    types = [f["type"] for _, f in await stores.redis.xrange(stores.jobs.stream)]
    assert types.count("summarize_thread") == 2
    assert await stores.redis.ttl(stores.jobs.stream) == -1


async def test_a_thread_id_is_a_name_within_its_user(stores) -> None:
    """Two users can both have `shared`; neither sees, changes or deletes the other's, and
    another user's thread answers exactly like a missing one."""
    await commit(stores, 1, uid="alice", tid="shared")
    await commit(stores, 2, uid="bob", tid="shared")  # not refused: bob's own thread
    alice = await stores.threads.get_thread("alice", "shared")
    bob = await stores.threads.get_thread("bob", "shared")
    assert [m.content for m in alice[1]] == ["question 1", "answer 1"]
    assert [m.content for m in bob[1]] == ["question 2", "answer 2"]
    errors = []
    for call in (
        lambda: stores.threads.get_thread("carol", "shared"),
        lambda: stores.threads.get_thread("carol", "missing"),
        lambda: stores.threads.delete_thread("carol", "shared"),
        lambda: stores.threads.delete_thread("carol", "missing"),
        lambda: stores.threads.close_thread("carol", "shared"),
    ):
        with pytest.raises(NotFoundError) as err:
            await call()
        errors.append(str(err.value))
    assert set(errors) == {"thread shared not found", "thread missing not found"}
    assert await stores.threads.delete_thread("bob", "shared") == 2
    assert len(await stores.threads.read_messages("alice", "shared")) == 2
    # no global owner key (SCAN: every primary of a Cluster)
    assert [k async for k in stores.redis.scan_iter(match=f"{stores.keys.prefix}:t:*")] == []


async def test_idle_threads_and_episode_marking(stores) -> None:
    await stores.threads.append_turn("u1", "old", "k1", "q", "a", now=1_000)
    await stores.threads.append_turn("u2", "older", "k1", "q", "a", now=500)
    await stores.threads.append_turn("u1", "fresh", "k1", "q", "a", now=10_000)
    assert await stores.threads.idle_threads(5_000, 10) == [("u2", "older"), ("u1", "old")]
    await stores.threads.mark_episode_done("u2", "older")
    assert await stores.threads.idle_threads(5_000, 10) == [("u1", "old")]
    # new activity puts a thread back on the schedule
    await stores.threads.append_turn("u2", "older", "k2", "q", "a", now=2_000)
    assert ("u2", "older") in await stores.threads.idle_threads(5_000, 10)
    # a deleted thread is pruned from the schedule
    await stores.threads.delete_thread("u1", "old")
    assert ("u1", "old") not in await stores.threads.idle_threads(5_000, 10)


async def test_erasure_helpers_of_the_job_queue(stores) -> None:
    await stores.jobs.enqueue("create_episode", "alice", "t1", reason="closed")
    await stores.jobs.enqueue("create_episode", "bob", "t2", reason="closed")
    await stores.redis.xadd(
        stores.jobs.dead_stream,
        {"job_id": "j", "type": "extract_facts", "user_id": "alice", "thread_id": "t1"},
    )
    assert len(await stores.jobs.pending_for_user("alice")) == 2
    assert await stores.jobs.delete_for_user("alice") == 2
    assert await stores.jobs.pending_for_user("alice") == []
    assert [j["user_id"] for j in await stores.jobs.pending_for_user("bob")] == ["bob"]
    stats = await stores.jobs.stats()
    assert stats == {"stream_length": 1, "pending": 0, "dead_letter_length": 0}
    await stores.jobs.ensure_group()  # idempotent


async def test_bookkeeping_never_resurrects_an_expired_thread(stores) -> None:
    await commit(stores, 1)
    meta = stores.keys.meta("u1", "t1")
    await stores.redis.delete(meta)  # the thread's metadata expired
    with pytest.raises(NotFoundError):
        await stores.threads.close_thread("u1", "t1")
    await stores.threads.mark_episode_done("u1", "t1")
    await stores.threads.clear_summary_pending("u1", "t1")
    assert await stores.redis.exists(meta) == 0


async def test_summary_expires_with_its_thread_and_never_outlives_it(stores) -> None:
    for i in range(3):
        await commit(stores, i)
    k = stores.keys
    meta_key, summary_key = k.meta("u1", "t1"), k.summary("u1", "t1")
    await stores.redis.pexpire(meta_key, 60_000)  # the thread was last active a while ago
    ids = [m.id for m in await stores.threads.read_messages("u1", "t1")][:2]
    assert await stores.threads.replace_oldest_with_summary("u1", "t1", ids, "S1")
    assert 0 < await stores.redis.pttl(summary_key) <= 60_000
    # the thread expires but a stray summary is left behind: a new thread under the same
    # id must not inherit it
    for key in k.thread_keys("u1", "t1"):
        if key != summary_key:
            await stores.redis.delete(key)
    await commit(stores, 9)
    assert await stores.threads.get_summary("u1", "t1") in (None, "")


@pytest.mark.parametrize(
    "stores", ["cluster-style", pytest.param("cluster", marks=pytest.mark.cluster)], indirect=True
)
async def test_jobs_wait_in_the_outbox_while_the_stream_refuses_them(stores) -> None:
    """Cluster path: a commit whose relay to the job stream fails keeps its jobs in the
    user's outbox (same slot as the turn, thread TTL), export shows them, erasure counts
    them, and the next relay delivers them."""
    from mnemo_memory.stores import erasure, outbox

    k = stores.keys
    await stores.redis.delete(k.jobs())
    await stores.redis.set(k.jobs(), "not a stream")  # every XADD now fails
    for i in range(5):  # extract_every_messages=10: the fifth turn crosses it
        await commit(stores, i, uid="olga", tid="t1")
    box = k.outbox("olga")
    assert await stores.redis.zcard(box) == 1  # the job (the activity records went through)
    assert 0 < await stores.redis.pttl(box) <= stores.threads.thread_ttl_ms
    held = await outbox.pending(stores.redis, k, "olga")
    assert [j["type"] for j in held] == ["extract_facts"]
    # the stream is back; the export lists the job still waiting in the outbox ...
    await stores.redis.delete(k.jobs())
    jobs_doc = {s: d async for s, d in erasure.export_user(stores, "olga")}["jobs"]
    assert [j["job_id"] for j in jobs_doc["pending"]] == [held[0]["job_id"]]
    # ... and the next relay (a commit, PrepareTurn or the sweep) delivers it
    later = outbox._now_ms() + outbox.LEASE_MS + 1  # past the failed relay's lease
    assert await outbox.relay(stores.redis, k, "olga", now=later) == 1
    assert await stores.redis.exists(box) == 0
    delivered = [f for _, f in await stores.redis.xrange(k.jobs())]
    assert [f["job_id"] for f in delivered] == [held[0]["job_id"]]
    assert await stores.redis.zscore(k.activity_index(), k.activity_member("olga", "t1"))
    # a record that never made it is still erased with the user
    await stores.redis.delete(k.jobs())
    await stores.redis.set(k.jobs(), "not a stream")
    for i in range(5, 10):
        await commit(stores, i, uid="olga", tid="t1")
    await stores.redis.delete(k.jobs())
    counts = await erasure.forget_user(stores, "olga", scan_fallback=False)
    assert counts["jobs"] == 1 and await stores.redis.exists(box) == 0
