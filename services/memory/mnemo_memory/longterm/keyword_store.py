"""The vector store with its keyword index kept in step, and the keyword candidates of a
query (``keywords.py``; ADR 0024).

:class:`KeywordIndexedStore` wraps either backend: every write of the vector store
(upsert, metadata update, delete, a user's erasure) updates the Redis keyword index right
after it, so the service and the worker, whichever replica, keep one index. Everything
else is the wrapped store's (attribute access falls through).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from typing import Any

import numpy as np

from mnemo_memory.stores.vector import MemoryRecord, VectorFilter, VectorHit

from .keywords import KeywordIndex, Lookup, bm25_candidates
from .ranking import KeywordCorpus


class KeywordIndexedStore:
    """A vector store whose writes also maintain a :class:`KeywordIndex`."""

    def __init__(self, store: Any, keywords: KeywordIndex) -> None:
        self.store = store
        self.keywords = keywords
        self._backfills: dict[str, asyncio.Lock] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def upsert(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        # a user without memories yet needs no backfill: their index is complete from
        # this first write on (one HEXISTS per write, a count only for unbuilt users)
        users = sorted({r.user_id for r in records})
        fresh = []
        for uid in await self.keywords.unbuilt(users):
            if not (await self.store.count(uid)).get("total", 0):
                fresh.append(uid)
        await self.store.upsert(records, vectors)
        await self.keywords.apply(records, "put")
        for uid in fresh:
            await self.keywords.mark_built(uid)

    async def update_fields(self, records: list[MemoryRecord]) -> None:
        await self.store.update_fields(records)
        await self.keywords.apply(records, "update")  # never indexes an erased record

    async def delete(self, ids: list[str]) -> int:
        found = await self.store.get(ids)
        deleted = int(await self.store.delete(ids))
        await self.keywords.apply(found, "del")
        return deleted

    async def delete_user(self, user_id: str) -> dict[str, int]:
        await self.keywords.drop_user(user_id)
        counts: dict[str, int] = await self.store.delete_user(user_id)
        # again: a backfill or write that raced the store's deletion indexed nothing new
        await self.keywords.drop_user(user_id)
        return counts

    async def backfill(self, user_id: str) -> None:
        """Index the user's stored memories once (those written before the index
        existed); concurrent first queries of one user backfill once."""
        lock = self._backfills.setdefault(user_id, asyncio.Lock())
        async with lock:
            lookup = await self.keywords.lookup(user_id, "", VectorFilter(user_id=user_id))
            if lookup.built:
                return
            records = await self.store.all_matching(
                VectorFilter(user_id=user_id, include_superseded=True)
            )
            for start in range(0, len(records), 500):
                await self.keywords.apply(records[start : start + 500], "put")
            # records deleted while we read them (an erasure, a forget) leave the index
            alive = {r.id for r in await self.store.get([r.id for r in records])}
            await self.keywords.apply([r for r in records if r.id not in alive], "del")
            await self.keywords.mark_built(user_id)
        self._backfills.pop(user_id, None)


async def keyword_lookup(
    store: KeywordIndexedStore,
    user_id: str,
    query: str,
    flt: VectorFilter,
    *,
    with_ids: bool = False,
) -> Lookup:
    """The index's postings for ``query`` (backfilling a never-indexed user first);
    ``with_ids``: and the user's memory ids (``KeywordIndex.lookup``)."""
    lookup = await store.keywords.lookup(user_id, query, flt, with_ids=with_ids)
    if not lookup.built:
        await store.backfill(user_id)
        lookup = await store.keywords.lookup(user_id, query, flt, with_ids=with_ids)
    return lookup


async def keyword_corpus(
    store: KeywordIndexedStore,
    lookup: Lookup,
    flt: VectorFilter,
    limit: int,
    hits: list[VectorHit],
    pool: Executor | None,
) -> KeywordCorpus:
    """The best ``limit`` keyword candidates as a corpus for ``ranking.fuse``: scored off
    the event loop (``pool``), then read fresh from the store (those the vector hits did
    not already bring), so a deleted or superseded memory never comes back from a stale
    posting and the filter is checked on the stored record."""
    loop = asyncio.get_running_loop()
    # a few spare: a candidate deleted meanwhile still leaves ``limit``
    best = await loop.run_in_executor(pool, bm25_candidates, lookup, flt, limit + 8)
    known = {h.record.id: h.record for h in hits}
    missing = [mid for mid, _ in best if mid not in known]
    if missing:
        known.update((r.id, r) for r in await store.store.get(missing))
    records, scores = [], []
    for mid, score in best:
        rec = known.get(mid)
        if rec is None or not flt.matches(rec):
            continue
        records.append(rec)
        scores.append(score)
        if len(records) >= limit:
            break
    return KeywordCorpus(
        records, CandidateScores(np.array(scores, dtype=np.float32)), time.monotonic()
    )


class CandidateScores:
    """The BM25 scores of a candidate corpus, computed by the index (``fuse`` asks for
    them by the query's tokens, like ``BM25Index.scores``)."""

    def __init__(self, scores: np.ndarray) -> None:
        self._scores = scores

    def scores(self, query_tokens: Any) -> np.ndarray:
        return self._scores
