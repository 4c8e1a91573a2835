"""Contract tests of the vector-store interface, run against every real backend:
embedded Chroma, a ``chroma run`` server, and Redis with RediSearch loaded."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from mnemo_memory.embed import ModelInfo
from mnemo_memory.errors import ModelMismatchError
from mnemo_memory.stores.vector import (
    ChromaVectorStore,
    MemoryRecord,
    RedisVectorStore,
    VectorFilter,
)

MODEL = ModelInfo("all-MiniLM-L6-v2", 384)
BACKENDS = ["chroma-embedded", "chroma-server", "redis"]


def make_store(kind, request, prefix, model=MODEL):
    if kind == "chroma-embedded":
        return ChromaVectorStore(
            model=model, path=str(request.getfixturevalue("chroma_path")), collection_prefix=prefix
        )
    if kind == "chroma-server":
        server = request.getfixturevalue("chroma_server")
        return ChromaVectorStore(model=model, url=server.url, collection_prefix=prefix)
    server = request.getfixturevalue("redisearch_server")
    return RedisVectorStore(url=server.url, model=model, prefix=prefix)


@pytest.fixture(params=BACKENDS)
async def store(request):
    prefix = "t" + uuid.uuid4().hex[:10]
    s = make_store(request.param, request, prefix)
    await s.open()
    s.test_kind = request.param
    s.test_prefix = prefix
    yield s
    await s.aclose()


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return v / np.linalg.norm(v)


def rec(i: int, user: str = "alice", **kw) -> MemoryRecord:
    base = dict(
        id=f"m{i}",
        user_id=user,
        text=f"memory number {i}",
        created_at_ms=1000 + i,
        updated_at_ms=1000 + i,
        valid_from_ms=1000 + i,
        importance=5,
        source_thread_id="th-1",
        source_message_ids=(f"msg{i}",),
    )
    base.update(kw)
    return MemoryRecord(**base)


async def test_upsert_get_roundtrip_keeps_every_field(store):
    r = rec(
        1,
        kind="preference",
        importance=9,
        slot="user|diet",
        metadata={"origin": "test"},
        source_message_ids=("a", "b"),
    )
    await store.upsert([r], unit(1)[None, :])
    [got] = await store.get(["m1"])
    assert got == r


async def test_query_is_always_filtered_by_user(store):
    # bob's record is the exact query vector; alice must still never see it
    await store.upsert(
        [rec(1, "alice"), rec(2, "bob"), rec(3, "alice.x-y"), rec(4, "alice+x@example.com")],
        np.stack([unit(1), unit(2), unit(3), unit(4)]),
    )
    hits = await store.query(unit(2), VectorFilter(user_id="alice"), 10)
    assert [h.record.id for h in hits] == ["m1"]
    # user ids with tag-syntax characters are escaped, not interpreted
    hits = await store.query(unit(3), VectorFilter(user_id="alice.x-y"), 10)
    assert [h.record.id for h in hits] == ["m3"]
    assert hits[0].similarity == pytest.approx(1.0, abs=1e-4)
    hits = await store.query(unit(1), VectorFilter(user_id="alice+x@example.com"), 10)
    assert [h.record.id for h in hits] == ["m4"]


async def test_user_and_thread_ids_differing_only_in_case_never_meet(store):
    # "Alice" and "alice" are two people (ids are case-sensitive everywhere else)
    await store.upsert(
        [rec(1, "alice", source_thread_id="th-a"), rec(2, "Alice", source_thread_id="TH-A")],
        np.stack([unit(1), unit(2)]),
    )
    hits = await store.query(unit(2), VectorFilter(user_id="alice"), 10)
    assert [h.record.id for h in hits] == ["m1"]
    page, total = await store.list(VectorFilter(user_id="Alice"), 0, 10)
    assert ([r.id for r in page], total) == (["m2"], 1)
    page, total = await store.list(VectorFilter(user_id="alice", thread_id="TH-A"), 0, 10)
    assert (page, total) == ([], 0)
    assert (await store.count("alice"))["total"] == 1
    assert await store.delete_user("alice") == {"fact": 1}
    assert [r.id for r in await store.get(["m1", "m2"])] == ["m2"]


async def test_candidates_are_every_record_of_the_user_with_its_vector(store, monkeypatch):
    # 100 users hold the same 20 vectors (shared facts): the filtered ANN of Chroma misses
    # some of a user's own records here; the candidate read must return all of them
    from mnemo_memory.stores.vector import chroma, redis_index

    monkeypatch.setattr(chroma, "CANDIDATE_PAGE", 7)  # several pages per user
    monkeypatch.setattr(redis_index, "_PAGE", 7)
    shared = np.stack([unit(100 + i) for i in range(20)])
    for first in range(0, 100, 50):
        users = range(first, first + 50)
        records = [
            rec(i, f"u{u}", id=f"u{u}-{i}", created_at_ms=i) for u in users for i in range(20)
        ]
        await store.upsert(records, np.tile(shared, (50, 1)))
    await store.upsert([rec(99, "u7", id="u7-old", valid_to_ms=5)], unit(99).reshape(1, -1))
    for u in (0, 7, 99):
        records, vectors = await store.candidates(VectorFilter(user_id=f"u{u}"))
        assert sorted(r.id for r in records) == sorted(f"u{u}-{i}" for i in range(20))
        by_id = dict(zip([r.id for r in records], vectors, strict=True))
        for i in range(20):
            np.testing.assert_allclose(by_id[f"u{u}-{i}"], shared[i], atol=1e-6)
    records, vectors = await store.candidates(VectorFilter(user_id="u7", include_superseded=True))
    assert len(records) == 21 and vectors.shape == (21, 384)
    records, vectors = await store.candidates(VectorFilter(user_id="nobody"))
    assert records == [] and vectors.shape == (0, 384)


async def test_update_fields_keeps_text_and_vector_and_never_recreates(store):
    await store.upsert([rec(1), rec(2)], np.stack([unit(1), unit(2)]))
    done = rec(1, valid_to_ms=77, superseded_by="m2", metadata={"merged_ids": "x"})
    await store.update_fields([done, rec(3, valid_to_ms=5)])  # m3 was never stored
    [got] = await store.get(["m1"])
    assert got == done
    assert await store.get(["m3"]) == []
    hits = await store.query(unit(1), VectorFilter(user_id="alice", include_superseded=True), 1)
    assert hits[0].record.id == "m1" and hits[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert [h.record.id for h in await store.query(unit(1), VectorFilter(user_id="alice"), 5)] == [
        "m2"
    ]


async def test_query_orders_by_similarity(store):
    near = unit(5) + 0.1 * unit(6)
    await store.upsert(
        [rec(5), rec(6), rec(7)], np.stack([unit(5), near / np.linalg.norm(near), unit(7)])
    )
    hits = await store.query(unit(5), VectorFilter(user_id="alice"), 2)
    assert [h.record.id for h in hits] == ["m5", "m6"]
    assert hits[0].similarity > hits[1].similarity


async def test_filters_kind_importance_time_thread_superseded(store):
    records = [
        rec(1, kind="fact", importance=3, valid_from_ms=100),
        rec(2, kind="episode", importance=8, valid_from_ms=200),
        rec(3, kind="preference", importance=9, valid_from_ms=300, source_thread_id="th-2"),
        rec(4, kind="fact", importance=9, valid_from_ms=400, valid_to_ms=450, superseded_by="m5"),
    ]
    await store.upsert(records, np.stack([unit(i) for i in range(1, 5)]))

    async def ids(**kw):
        hits = await store.query(unit(1), VectorFilter(user_id="alice", **kw), 10)
        return sorted(h.record.id for h in hits)

    assert await ids() == ["m1", "m2", "m3"]  # superseded excluded by default
    assert await ids(include_superseded=True) == ["m1", "m2", "m3", "m4"]
    assert await ids(kinds=("episode", "preference")) == ["m2", "m3"]
    assert await ids(min_importance=8) == ["m2", "m3"]
    assert await ids(since_ms=200, until_ms=300) == ["m2", "m3"]
    assert await ids(thread_id="th-2") == ["m3"]


async def test_list_pages_newest_first(store):
    await store.upsert([rec(i) for i in range(7)], np.stack([unit(i) for i in range(7)]))
    page1, total = await store.list(VectorFilter(user_id="alice"), 0, 3)
    page2, _ = await store.list(VectorFilter(user_id="alice"), 3, 3)
    page3, _ = await store.list(VectorFilter(user_id="alice"), 6, 3)
    assert total == 7
    assert [r.id for r in page1 + page2 + page3] == [f"m{i}" for i in range(6, -1, -1)]


async def test_upsert_replaces_delete_and_delete_user(store):
    await store.upsert([rec(1), rec(2, "bob")], np.stack([unit(1), unit(2)]))
    await store.upsert([rec(1, text="changed")], unit(1)[None, :])
    assert (await store.get(["m1"]))[0].text == "changed"
    assert (await store.count("alice"))["total"] == 1
    assert await store.delete(["m1", "missing"]) == 1
    assert await store.get(["m1"]) == []
    await store.upsert([rec(3, kind="episode"), rec(4)], np.stack([unit(3), unit(4)]))
    assert await store.delete_user("alice") == {"episode": 1, "fact": 1}
    assert (await store.count("alice"))["total"] == 0
    hits = await store.query(unit(3), VectorFilter(user_id="alice", include_superseded=True), 5)
    assert hits == []
    assert [r.id for r in await store.get(["m2"])] == ["m2"]  # bob untouched


async def test_store_built_with_another_model_is_refused(store, request):
    await store.upsert([rec(1)], unit(1)[None, :])
    other = make_store(
        store.test_kind, request, store.test_prefix, model=ModelInfo("some-other-model", 768)
    )
    with pytest.raises(ModelMismatchError, match="all-MiniLM-L6-v2"):
        await other.open()
    await other.aclose()


async def test_redis_index_of_schema_1_is_rebuilt_case_sensitive(request):
    """An index made before ids were case-sensitive is rebuilt in place on open; no
    memory is lost and users differing only in case stop sharing memories."""
    prefix = "t" + uuid.uuid4().hex[:10]
    old = make_store("redis", request, prefix)
    index = f"{prefix}:idx:memories"
    await old._call(
        "FT.CREATE", index, "ON", "HASH", "PREFIX", "1", f"{prefix}:mem:", "SCHEMA",
        "user_id", "TAG", "kind", "TAG", "thread_id", "TAG", "importance", "NUMERIC",
        "created_at_ms", "NUMERIC", "SORTABLE", "updated_at_ms", "NUMERIC",
        "valid_from_ms", "NUMERIC", "valid_to_ms", "NUMERIC",
        "embedding", "VECTOR", "HNSW", "6", "TYPE", "FLOAT32", "DIM", "384",
        "DISTANCE_METRIC", "COSINE",
    )  # fmt: skip
    await old._call("HSET", f"{index}:model", "model_id", MODEL.model_id, "dimension", "384")
    old._opened = True
    await old.upsert([rec(1, "alice"), rec(2, "Alice")], np.stack([unit(1), unit(2)]))
    # the bug: a case-folding TAG matches both users
    res = await old._call("FT.SEARCH", index, "@user_id:{alice}", "LIMIT", "0", "0")
    assert res[0] == 2
    await old.aclose()

    store = make_store("redis", request, prefix)
    await store.open()
    try:
        hits = await store.query(unit(2), VectorFilter(user_id="alice"), 10)
        assert [h.record.id for h in hits] == ["m1"]
        assert (await store.count("Alice"))["total"] == 1
        assert (await store.count())["total"] == 2
        assert (await store._call("HGET", f"{index}:model", "schema")) == b"2"
    finally:
        await store.aclose()


async def test_get_of_many_ids_keeps_their_order_and_skips_the_missing(store):
    # more ids than one read call takes (Redis: 256 keys per script call)
    records = [rec(i, user="alice" if i % 2 else "bob") for i in range(300)]
    await store.upsert(records, np.stack([unit(i) for i in range(300)]))
    wanted = [f"m{i}" for i in range(299, -1, -1)] + ["nope"]
    wanted = [w for pair in zip(wanted, [f"gone{i}" for i in range(301)]) for w in pair]
    got = await store.get(wanted)
    assert [r.id for r in got] == [f"m{i}" for i in range(299, -1, -1)]
    assert got[0] == records[299] and got[-1] == records[0]
