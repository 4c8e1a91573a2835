"""Recall's KNN restricted to the user's ids from the keyword index (Chroma's ``ids``
filter, ADR 0029) instead of a ``user_id`` metadata filter: the same hits as the
metadata-filtered KNN, nothing of another user's or superseded even when handed a stale
id, and the metadata filter still taken where the ids path does not apply."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from mnemo_memory.longterm.facts import CandidateFact
from mnemo_memory.longterm.keyword_store import KeywordIndexedStore
from mnemo_memory.longterm.keywords import KeywordIndex
from mnemo_memory.longterm.service import LongTermMemory
from mnemo_memory.longterm.settings import LongTermSettings
from mnemo_memory.stores.vector import ChromaVectorStore, MemoryRecord, VectorFilter
from redis.asyncio import Redis


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
async def chroma(embedder, chroma_path):
    store = ChromaVectorStore(
        model=embedder.info, path=str(chroma_path), collection_prefix="w" + uuid.uuid4().hex[:8]
    )
    await store.open()
    yield store
    await store.aclose()


async def test_knn_within_the_users_ids_finds_what_the_filtered_knn_finds(chroma):
    # 40 users hold the same 30 vectors (the shared-fact case of ADR 0016), alice 30 more
    records, vectors = [], []
    for u in range(40):
        for i in range(30):
            records.append(MemoryRecord(id=f"u{u}-{i}", user_id=f"user{u}", text=f"fact {i}"))
            vectors.append(unit(i))
    for i in range(30):
        records.append(MemoryRecord(id=f"alice-{i}", user_id="alice", text=f"own {i}"))
        vectors.append(unit(1000 + i))
    await chroma.upsert(records, np.stack(vectors))
    flt = VectorFilter(user_id="user7")
    ids = [f"u7-{i}" for i in range(30)]
    for seed in (3, 17, 2000):
        q = unit(seed)
        within = await chroma.query_within(q, flt, 10, ids)
        where = await chroma.query(q, flt, 10)
        assert [h.record.id for h in within] == [h.record.id for h in where]
        assert [round(h.similarity, 5) for h in within] == [round(h.similarity, 5) for h in where]
        assert all(h.record.user_id == "user7" for h in within)
    # its own vector is found first (exact within the user's ids)
    [best] = await chroma.query_within(unit(5), flt, 1, ids)
    assert best.record.id == "u7-5" and best.similarity > 0.999


async def test_a_stale_id_never_brings_another_users_or_a_superseded_memory(chroma):
    mine = MemoryRecord(id="a1", user_id="alice", text="alice's")
    old = MemoryRecord(id="a2", user_id="alice", text="old", valid_to_ms=5, superseded_by="a1")
    theirs = MemoryRecord(id="b1", user_id="bob", text="bob's")
    await chroma.upsert([mine, old, theirs], np.stack([unit(1), unit(2), unit(3)]))
    flt = VectorFilter(user_id="alice")
    hits = await chroma.query_within(unit(3), flt, 10, ["a1", "a2", "b1", "gone"])
    assert [h.record.id for h in hits] == ["a1"]
    with_old = await chroma.query_within(
        unit(2), VectorFilter(user_id="alice", include_superseded=True), 10, ["a1", "a2", "b1"]
    )
    assert [h.record.id for h in with_old] == ["a2", "a1"]
    assert await chroma.query_within(unit(1), flt, 10, []) == []


@pytest.fixture
async def recall(embedder, chroma_path, redisearch_server):
    """LongTermMemory on Chroma + the Redis keyword index, factory by settings."""
    made = []
    prefix = "w" + uuid.uuid4().hex[:8]
    redis = Redis.from_url(redisearch_server.url, decode_responses=True)
    base = ChromaVectorStore(model=embedder.info, path=str(chroma_path), collection_prefix=prefix)

    def make(**cfg) -> LongTermMemory:
        settings = LongTermSettings(**cfg)
        store = KeywordIndexedStore(base, KeywordIndex(redis, prefix, settings.date_prefix))
        lt = LongTermMemory(embedder=embedder, store=store, cfg=settings)
        made.append(lt)
        return lt

    yield make
    await base.aclose()
    await redis.aclose()


TEXTS = [
    "User's sister Marta lives in Lisbon",
    "User's dentist is Dr. Okonkwo on Baker Street",
    "User plays chess every Tuesday at the club",
    "User prefers green tea over coffee in the morning",
    "User booked a night train to Vienna for the conference",
    "User's locker code is 4711",
    "User's cat is called Pixel",
]


def fact(text: str, n: int, **kw) -> CandidateFact:
    return CandidateFact(text=text, source_message_ids=(f"m{n}",), **kw)


async def test_recall_ranks_the_same_by_ids_as_by_the_metadata_filter(recall):
    within, where, tiny_cap = recall(), recall(knn_within_ids_max=0), recall(knn_within_ids_max=2)
    await within.open()
    for n, text in enumerate(TEXTS):
        await within.write_facts("alice", "t1", [fact(text, n)], now=1_700_000_000_000 + n)
        await within.write_facts("bob", "t2", [fact(text, 100 + n)], now=1_700_000_000_000 + n)
    sup = await within.write_facts("alice", "t1", [fact("User's locker code is 9032", 50)])
    assert sup.superseded  # 4711 is superseded: in the store, not in the ids of "c"

    async def ranked(lt: LongTermMemory, query: str, **flt) -> list[tuple[str, str, float]]:
        got, _ = await lt.search("alice", query, VectorFilter(user_id="alice", **flt), top_k=5)
        return [(r.record.id, r.record.user_id, round(r.score, 5)) for r in got]

    for query in ("where does my sister live", "locker code", "Tuesday chess", "tea"):
        expected = await ranked(where, query)
        assert expected and all(uid == "alice" for _, uid, _ in expected)
        assert await ranked(within, query) == expected, query
        assert await ranked(tiny_cap, query) == expected, query  # over the cap: where
        old = await ranked(where, query, include_superseded=True)
        assert await ranked(within, query, include_superseded=True) == old, query
        kinds = await ranked(where, query, kinds=("fact",))  # narrowed: the where path
        assert await ranked(within, query, kinds=("fact",)) == kinds, query


async def test_the_lookup_brings_the_ids_of_the_filters_families(recall):
    lt = recall()
    await lt.open()
    for n, text in enumerate(TEXTS[:3]):
        await lt.write_facts("alice", "t1", [fact(text, n)])
    report = await lt.write_facts("alice", "t1", [fact("User's sister Marta lives in Porto", 9)])
    assert report.superseded
    stored = {
        r.id: r
        for r in await lt.store.all_matching(VectorFilter(user_id="alice", include_superseded=True))
    }
    keywords = lt.store.keywords
    current = await keywords.lookup("alice", "x", VectorFilter(user_id="alice"), with_ids=True)
    assert sorted(current.ids) == sorted(i for i, r in stored.items() if not r.valid_to_ms)
    every = await keywords.lookup(
        "alice", "x", VectorFilter(user_id="alice", include_superseded=True), with_ids=True
    )
    assert sorted(every.ids) == sorted(stored)
    narrowed = await keywords.lookup(
        "alice", "x", VectorFilter(user_id="alice", kinds=("fact",)), with_ids=True
    )
    assert narrowed.ids is None
    assert (await keywords.lookup("alice", "x", VectorFilter(user_id="alice"))).ids is None
    never = await keywords.lookup("nobody", "x", VectorFilter(user_id="nobody"), with_ids=True)
    assert never.ids is None  # not built: no ids to trust


async def test_on_redis_cluster_the_ids_come_from_a_call_of_their_own(
    embedder, chroma_path, redis_cluster
):
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    cluster = RedisCluster(
        startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in redis_cluster.nodes],
        decode_responses=True,
    )
    prefix = "w" + uuid.uuid4().hex[:8]
    base = ChromaVectorStore(model=embedder.info, path=str(chroma_path), collection_prefix=prefix)
    keywords = KeywordIndex(cluster, prefix, True)
    assert keywords._cluster
    within = LongTermMemory(embedder=embedder, store=KeywordIndexedStore(base, keywords))
    where = LongTermMemory(
        embedder=embedder,
        store=KeywordIndexedStore(base, keywords),
        cfg=LongTermSettings(knn_within_ids_max=0),
    )
    try:
        await within.open()
        for n, text in enumerate(TEXTS):
            await within.write_facts("alice", "t1", [fact(text, n)])
            await within.write_facts("bob", "t2", [fact(text, 100 + n)])
        lookup = await keywords.lookup("alice", "x", VectorFilter(user_id="alice"), with_ids=True)
        stored = await base.all_matching(VectorFilter(user_id="alice"))
        assert sorted(lookup.ids) == sorted(r.id for r in stored)
        for query in ("where does my sister live", "locker code"):
            flt = VectorFilter(user_id="alice")
            got, _ = await within.search("alice", query, flt, top_k=5)
            expected, _ = await where.search("alice", query, flt, top_k=5)
            assert [r.record.id for r in got] == [r.record.id for r in expected]
            assert got and all(r.record.user_id == "alice" for r in got)
    finally:
        await base.aclose()
        await cluster.aclose()
