"""The Redis-kept keyword index (``longterm/keywords.py``, ADR 0024): the same BM25 ranking
as the in-process index it replaced, maintained on every write (add, correct, supersede,
delete, erasure), built once for memories stored before it, and read per query in
O(candidates) — never the user's whole memory — off the event loop."""

from __future__ import annotations

import threading
import uuid

import pytest
from mnemo_memory.longterm.facts import CandidateFact
from mnemo_memory.longterm.keyword_store import KeywordIndexedStore
from mnemo_memory.longterm.keywords import KeywordIndex
from mnemo_memory.longterm.service import LongTermMemory
from mnemo_memory.longterm.settings import LongTermSettings
from mnemo_memory.stores.vector import ChromaVectorStore, RedisVectorStore, VectorFilter
from redis.asyncio import Redis

TEXTS = [
    "User's sister Marta lives in Lisbon",
    "User is allergic to peanuts",
    "User's dentist is Dr. Okonkwo on Baker Street",
    "User plays chess every Tuesday at the club",
    "User's cat is called Pixel and is very old",
    "User prefers green tea over coffee in the morning",
    "User booked a night train to Vienna for the conference",
    "User's manager Priya approved the Lisbon trip",
    "User repaired the blue bike with a new chain",
    "User studies Italian on Tuesday evenings",
    "User's locker code is 4711",
    "User dislikes spicy ramen but likes mild curry",
]
QUERIES = [
    "Where does my sister live?",
    "Lisbon",
    "what happens on Tuesday",
    "who is Dr. Okonkwo",
    "locker 4711",
    "tea or coffee",
    "train to Vienna conference",
    "nothing matches zzz",
]


@pytest.fixture(params=["chroma", "redis"])
async def pair(request, embedder, redisearch_server, chroma_path):
    """(indexed, plain): one stored memory seen by the keyword index and by the old
    in-process BM25 over all of the user's memories."""
    prefix = "k" + uuid.uuid4().hex[:10]
    if request.param == "chroma":
        base = ChromaVectorStore(
            model=embedder.info, path=str(chroma_path), collection_prefix=prefix
        )
    else:
        base = RedisVectorStore(url=redisearch_server.url, model=embedder.info, prefix=prefix)
    redis = Redis.from_url(redisearch_server.url, decode_responses=True)
    cfg = LongTermSettings(keyword_cache_s=0)  # the plain path rebuilds every query
    keywords = KeywordIndex(redis, prefix, cfg.date_prefix)
    indexed = LongTermMemory(embedder=embedder, store=KeywordIndexedStore(base, keywords), cfg=cfg)
    plain = LongTermMemory(embedder=embedder, store=base, cfg=cfg)
    await indexed.open()
    yield indexed, plain
    await indexed.aclose()
    await redis.aclose()


def fact(text: str, n: int, **kw) -> CandidateFact:
    return CandidateFact(text=text, source_message_ids=(f"m{n}",), **kw)


async def results(lt: LongTermMemory, query: str, **flt) -> list[tuple[str, float, float]]:
    ranked, _ = await lt.search("alice", query, VectorFilter(user_id="alice", **flt), top_k=6)
    return [(r.record.text, round(r.score, 6), round(r.keyword_score, 4)) for r in ranked]


async def test_the_index_ranks_like_bm25_over_all_of_the_users_memories(pair):
    indexed, plain = pair
    for n, text in enumerate(TEXTS):
        await indexed.write_facts("alice", "t1", [fact(text, n)], now=1_700_000_000_000 + n)
    await indexed.write_facts("bob", "t9", [fact("Bob's sister lives in Lisbon too", 99)])
    for query in QUERIES:
        assert await results(indexed, query) == await results(plain, query), query
        got = await results(indexed, query, include_superseded=True)
        assert got == await results(plain, query, include_superseded=True), query
    # bob's memory is never alice's candidate
    assert all("Bob" not in text for text, _, _ in await results(indexed, "Lisbon sister"))


async def test_every_write_keeps_the_index_in_step(pair):
    indexed, _ = pair
    keywords = indexed.store.keywords
    report = await indexed.write_facts("alice", "t1", [fact("User's locker code is 4711", 1)])
    [mid] = report.added

    async def keyword_hits(query: str, **flt) -> dict[str, float]:
        ranked, _ = await indexed.search("alice", query, VectorFilter(user_id="alice", **flt))
        return {r.record.text: r.keyword_score for r in ranked if r.keyword_score > 0}

    assert await keyword_hits("4711") == {"User's locker code is 4711": 1.0}
    # a correction re-indexes the new words and forgets the old ones
    await indexed.update_memory("alice", mid, "User's locker code is 9032", None, "")
    assert await keyword_hits("4711") == {}
    assert await keyword_hits("9032") == {"User's locker code is 9032": 1.0}
    # superseded: out of the current family, still found with include_superseded
    sup = await indexed.write_facts("alice", "t1", [fact("User's locker code is 5550", 2)])
    assert sup.superseded == [mid]
    assert "User's locker code is 9032" not in await keyword_hits("9032 locker")
    assert "User's locker code is 9032" in await keyword_hits("9032", include_superseded=True)
    # deleted: its postings go with it
    await indexed.delete_memory("alice", sup.added[0])
    assert await keyword_hits("5550") == {}
    docs = await keywords.redis.hgetall(keywords.base("alice") + "docs")
    assert sup.added[0] not in docs and mid in docs


async def test_erasure_removes_every_keyword_key_of_the_user(pair):
    indexed, _ = pair
    keywords = indexed.store.keywords
    for n, text in enumerate(TEXTS):
        await indexed.write_facts("alice", "t1", [fact(text, n)])
    await indexed.write_facts("bob", "t9", [fact("Bob's sister lives in Lisbon too", 99)])
    assert await keywords.user_keys("alice")
    bob_before = await keywords.user_keys("bob")
    await indexed.forget_user("alice")
    assert await keywords.user_keys("alice") == []  # no token, posting or count left
    assert await keywords.user_keys("bob") == bob_before
    ranked, _ = await indexed.search("alice", "Lisbon", VectorFilter(user_id="alice"))
    assert ranked == []


async def test_memories_stored_before_the_index_are_indexed_on_the_first_query(pair):
    indexed, plain = pair
    for n, text in enumerate(TEXTS):  # written around the index, as by an older release
        await plain.write_facts("alice", "t1", [fact(text, n)], now=1_700_000_000_000 + n)
    keywords = indexed.store.keywords
    assert await keywords.user_keys("alice") == []
    assert await results(indexed, "locker 4711") == await results(plain, "locker 4711")
    stats = await keywords.redis.hgetall(keywords.base("alice") + "stats")
    assert stats["built"] == "1" and int(stats["n_c"]) == len(TEXTS)


async def test_a_query_reads_its_candidates_not_all_of_the_users_memories(pair):
    indexed, _ = pair
    base = indexed.store.store
    await indexed.write_facts(
        "alice", "t1", [fact(f"User noted item {n} of the inventory", n) for n in range(60)]
    )
    await indexed.write_facts("alice", "t1", [fact("User's locker code is 4711", 100)])
    # written through the index from the user's first memory on: nothing to backfill
    calls: list[tuple[str, int]] = []
    rank_threads: list[str] = []
    real_all, real_get, real_rank = base.all_matching, base.get, indexed._fuse

    async def all_matching(flt):
        calls.append(("all_matching", 0))
        return await real_all(flt)

    async def get(ids):
        calls.append(("get", len(ids)))
        return await real_get(ids)

    def rank(*args):
        rank_threads.append(threading.current_thread().name)
        return real_rank(*args)

    base.all_matching, base.get, indexed._fuse = all_matching, get, rank
    indexed.cfg = indexed.cfg.model_copy(update={"vector_candidates": 5})
    ranked, _ = await indexed.search("alice", "locker 4711", VectorFilter(user_id="alice"))
    assert ranked[0].record.text == "User's locker code is 4711"
    assert ("all_matching", 0) not in calls
    assert sum(n for name, n in calls if name == "get") <= 5 + 8  # the candidates only
    assert rank_threads and all(name.startswith("mnemo-rank") for name in rank_threads)


def test_the_keyword_index_setting_is_honoured_or_refused(memory_settings, embedder, tmp_path):
    from mnemo_common.settings import SettingsError
    from mnemo_memory.config import build_settings
    from mnemo_memory.longterm import build_longterm

    for choice, wrapped in (("redis", True), ("inprocess", False)):
        settings = memory_settings(
            vector={"chroma_path": str(tmp_path / choice)}, longterm={"keyword_index": choice}
        )
        lt = build_longterm(settings, embedder=embedder)
        assert isinstance(lt.store, KeywordIndexedStore) is wrapped
    with pytest.raises(SettingsError, match="LONGTERM__KEYWORD_INDEX"):
        build_settings(longterm={"keyword_index": "elastic"})


async def test_recall_ranks_by_vectors_alone_while_the_keyword_index_is_unreachable(
    embedder, chroma_path
):
    from mnemo_common.testing.procs import free_port

    base = ChromaVectorStore(
        model=embedder.info, path=str(chroma_path), collection_prefix="d" + uuid.uuid4().hex[:8]
    )
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}", decode_responses=True)
    indexed = LongTermMemory(
        embedder=embedder, store=KeywordIndexedStore(base, KeywordIndex(dead, "x", True))
    )
    plain = LongTermMemory(embedder=embedder, store=base)
    await plain.open()
    await plain.write_facts("alice", "t1", [fact("User's locker code is 4711", 1)])
    ranked, _ = await indexed.search("alice", "locker code", VectorFilter(user_id="alice"))
    assert [r.record.text for r in ranked] == ["User's locker code is 4711"]
    assert ranked[0].keyword_score == 0  # no keyword part, no failure
    await dead.aclose()
    await plain.aclose()
