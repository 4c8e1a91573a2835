"""``LongTermMemory``: the long-term half of the memory service (the ``LongTermAPI``).

Search is always user-filtered; ranking is hybrid (``ranking.py``); writes follow the
replay/merge/supersede rules (``facts.py``). The same object serves the gRPC servicer and
the worker's job handlers.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mnemo_memory.embed import Embedder
from mnemo_memory.errors import (
    InvalidArgumentError,
    UnavailableError,
)
from mnemo_memory.stores.text import checked_clean
from mnemo_memory.stores.vector import MemoryRecord, VectorFilter, VectorHit
from mnemo_memory.stores.vector.base import ensure_owner, owns

from .facts import CandidateFact, FactWriter, WriteReport
from .grouping import group_by_thread
from .keyword_store import KeywordIndexedStore, keyword_corpus, keyword_lookup
from .keywords import Lookup, narrowed
from .messages import MESSAGE_KIND, delete_thread_messages, write_messages
from .ranking import KeywordCache, KeywordCorpus, Ranked, build_corpus, fit_budget, fuse
from .settings import LongTermSettings
from .text import indexed_text

log = logging.getLogger(__name__)

MAX_PAGE = 1000


def now_ms() -> int:
    return int(time.time() * 1000)


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
    except Exception:
        raise InvalidArgumentError("page_token", "is not a token this service issued") from None
    if offset < 0:
        raise InvalidArgumentError("page_token", "is not a token this service issued")
    return offset


async def _both(a: Awaitable[Any], b: Awaitable[Any]) -> tuple[Any, Any]:
    """Await two concurrently; the first failure is raised once both have finished."""
    done: list[Any] = list(await asyncio.gather(a, b, return_exceptions=True))
    for r in done:
        if isinstance(r, BaseException):
            raise r
    return done[0], done[1]


async def _or_none(lookup: Awaitable[Any]) -> Any:
    """The keyword lookup, or None when its Redis is unreachable (logged): recall then
    ranks by the vector store alone instead of failing."""
    try:
        return await lookup
    except UnavailableError as exc:
        log.warning("keyword index unavailable, vector ranking only: %s", exc)
        return None


class LongTermMemory:
    """Facts and episodes of every user in one vector store."""

    def __init__(
        self,
        *,
        embedder: Embedder,
        store: Any,
        cfg: LongTermSettings | None = None,
        default_top_k: int = 8,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.cfg = cfg or LongTermSettings()
        self.default_top_k = default_top_k
        self.keyword_cache = KeywordCache(self.cfg.keyword_cache_s, self.cfg.keyword_cache_users)
        self.writer = FactWriter(self)
        # ranking's CPU work runs here, off the event loop (one thread: it holds the GIL)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mnemo-rank")

    async def open(self) -> None:
        """Load the model (in its thread) and open the store (ModelMismatchError), at the
        same time: recall is ready when the slower of the two is."""
        await _both(self.embedder.aload(), self.store.open())

    # --- search ---
    async def search(
        self,
        user_id: str,
        query: str,
        flt: VectorFilter,
        top_k: int = 0,
        token_budget: int = 0,
        *,
        group: bool | None = None,
        held_messages: Collection[str] = (),
    ) -> tuple[list[Ranked], int]:
        """Best-first hybrid results for ``query`` within ``flt`` (user mandatory) and the
        tokens they use; UnavailableError("vector_store") when the store is down. ``group``
        (default ``LONGTERM__GROUP_BY_THREAD``) folds each thread's results into one
        excerpt (``grouping.py``); False gives the memories themselves. The message
        memories of ``held_messages`` (what the caller's prompt already holds) are left
        out before excerpts are built, so no member of any excerpt repeats one."""
        if flt.user_id != user_id:
            raise InvalidArgumentError("user_id", "filter user differs from the caller")
        top_k = top_k if top_k > 0 else self.default_top_k
        grouped = self.cfg.group_by_thread if group is None else group
        # excerpts fold deeper results into the top k threads: rank the whole candidate pool,
        # every memory the KNN and the keyword lookup brought (already read, so free)
        pool = max(top_k, self.cfg.vector_candidates) if grouped else top_k
        limit = max(self.cfg.vector_candidates, top_k)
        loop = asyncio.get_running_loop()
        if self.cfg.keyword_weight > 0 and isinstance(self.store, KeywordIndexedStore):
            hits, lookup = await self._hits_and_lookup(user_id, query, flt, limit)
            corpus = None  # the keyword index unreachable: vector ranking alone
            if lookup is not None:
                corpus = await keyword_corpus(self.store, lookup, flt, limit, hits, self._pool)
            # fusion, the held messages and the selection: one hop onto the ranking thread
            return await loop.run_in_executor(
                self._pool,
                self._rank,
                hits,
                corpus,
                query,
                pool,
                frozenset(held_messages),
                top_k,
                token_budget,
                grouped,
            )
        hits = await self._vector_hits(query, flt, limit)
        cached: KeywordCorpus | None = None
        if self.cfg.keyword_weight > 0:
            key = repr(flt)
            cached = self.keyword_cache.get(user_id, key)
            if cached is None:
                records = await self.store.all_matching(flt)
                cached = await loop.run_in_executor(
                    self._pool, build_corpus, records, self.cfg.date_prefix
                )
                self.keyword_cache.put(user_id, key, cached)
        ranked = await loop.run_in_executor(
            self._pool, self._fuse, hits, cached, query, pool, grouped
        )
        if cached is not None:
            ranked = await self._current(ranked, {h.record.id for h in hits}, flt)
        return await loop.run_in_executor(
            self._pool,
            self._held_and_select,
            ranked,
            frozenset(held_messages),
            top_k,
            token_budget,
            grouped,
        )

    async def _hits_and_lookup(
        self, user_id: str, query: str, flt: VectorFilter, limit: int
    ) -> tuple[list[VectorHit], Lookup | None]:
        """The vector hits and the keyword lookup (None: the index unreachable). A store
        with ``query_within`` (Chroma) restricts the KNN to the user's ids that the
        lookup brings (ADR 0029), so the KNN waits for it; otherwise the keyword index is
        read while the query is embedded and searched."""
        assert isinstance(self.store, KeywordIndexedStore)
        within = getattr(self.store.store, "query_within", None)
        if within is None or self.cfg.knn_within_ids_max <= 0 or narrowed(flt):
            hits, lookup = await _both(
                self._vector_hits(query, flt, limit),
                _or_none(keyword_lookup(self.store, user_id, query, flt)),
            )
            return hits, lookup
        vector, lookup = await _both(
            self.embedder.encode_query(indexed_text(query, 0, False)),
            _or_none(keyword_lookup(self.store, user_id, query, flt, with_ids=True)),
        )
        ids = lookup.ids if lookup is not None else None
        if ids is not None and len(ids) <= self.cfg.knn_within_ids_max:
            return await within(vector, flt, limit, ids), lookup
        return await self.store.query(vector, flt, limit), lookup

    async def _vector_hits(self, query: str, flt: VectorFilter, k: int) -> list[VectorHit]:
        vector = await self.embedder.encode_query(indexed_text(query, 0, False))
        hits: list[VectorHit] = await self.store.query(vector, flt, k)
        return hits

    def _fuse(
        self,
        hits: list[VectorHit],
        corpus: KeywordCorpus | None,
        query: str,
        pool: int,
        keep_all: bool,
    ) -> list[Ranked]:
        """Fusion, boosts and dedup: CPU only, run on ``self._pool``."""
        return fuse(
            [(h.record, h.similarity) for h in hits],
            corpus,
            query,
            self.cfg,
            now_ms(),
            pool,
            keep_all=keep_all,
        )

    def _select(
        self, ranked: list[Ranked], top_k: int, token_budget: int, grouped: bool
    ) -> tuple[list[Ranked], int]:
        """Thread excerpts or the budget fit: CPU only, run on ``self._pool``."""
        if grouped:
            budget = token_budget or self.cfg.group_token_budget
            return group_by_thread(ranked, top_k, budget, self.cfg)
        kept, tokens, _ = fit_budget(ranked, token_budget)
        return kept, tokens

    def _held_and_select(
        self,
        ranked: list[Ranked],
        held: frozenset[str],
        top_k: int,
        token_budget: int,
        grouped: bool,
    ) -> tuple[list[Ranked], int]:
        """Leave out the held messages' memories, then :meth:`_select` (ranking thread)."""
        if held:
            ranked = [r for r in ranked if r.record.metadata.get("message_id", "") not in held]
        return self._select(ranked, top_k, token_budget, grouped)

    def _rank(
        self,
        hits: list[VectorHit],
        corpus: KeywordCorpus | None,
        query: str,
        pool: int,
        held: frozenset[str],
        top_k: int,
        token_budget: int,
        grouped: bool,
    ) -> tuple[list[Ranked], int]:
        """Fusion, held messages and selection in one call on the ranking thread."""
        ranked = self._fuse(hits, corpus, query, pool, grouped)
        return self._held_and_select(ranked, held, top_k, token_budget, grouped)

    async def _current(
        self, ranked: list[Ranked], fresh: set[str], flt: VectorFilter
    ) -> list[Ranked]:
        """Re-read results that only the keyword cache produced: the cache may be seconds
        old and another replica may have deleted or corrected them since."""
        cached = [r.record.id for r in ranked if r.record.id not in fresh]
        if not cached:
            return ranked
        current = {rec.id: rec for rec in await self.store.get(cached)}
        out = []
        for r in ranked:
            rec = r.record if r.record.id in fresh else current.get(r.record.id)
            if not owns(rec, flt.user_id):
                continue  # deleted since (or never this user's)
            if rec.valid_to_ms and not flt.include_superseded:
                continue  # superseded since
            out.append(r if rec is r.record else dataclasses.replace(r, record=rec))
        return out

    async def recall(
        self,
        user_id: str,
        query: str,
        flt: VectorFilter,
        top_k: int = 0,
        token_budget: int = 0,
        held_messages: Collection[str] = (),
    ) -> list[Ranked]:
        """PrepareTurn's recall step, best first and not fitted: the servicer fits them
        into the turn's budget (``budget.py``, the one place the budget is applied). Thread
        excerpts are built within ``token_budget`` (the turn's) when it is below
        ``LONGTERM__GROUP_TOKEN_BUDGET``, so the best excerpt is not one that cannot fit;
        ``held_messages`` are the thread's messages the turn shows (see :meth:`search`)."""
        if not query.strip():
            return []
        if self.embedder.loading:
            # a chat turn must not wait for a cold start (tens of seconds on a busy node)
            raise UnavailableError("vector_store", "the embedding model is still loading")
        budget = min(token_budget, self.cfg.group_token_budget) if token_budget else 0
        ranked, _ = await self.search(
            user_id,
            query,
            flt,
            top_k,
            budget if self.cfg.group_by_thread else 0,
            held_messages=held_messages,
        )
        return ranked

    # --- writes from the worker ---
    async def write_facts(
        self, user_id: str, thread_id: str, candidates: list[CandidateFact], now: int | None = None
    ) -> WriteReport:
        return await self.writer.write(user_id, thread_id, candidates, now or now_ms())

    async def write_episode(
        self,
        user_id: str,
        thread_id: str,
        text: str,
        message_ids: tuple[str, ...],
        valid_from_ms: int = 0,
        now: int | None = None,
    ) -> tuple[str, bool]:
        return await self.writer.write_episode(
            user_id, thread_id, text, message_ids, valid_from_ms, now or now_ms()
        )

    async def write_messages(
        self, user_id: str, thread_id: str, messages: list[Any], window: list[Any]
    ) -> int:
        """Keep ``window``'s messages as message memories (``messages.py``)."""
        return await write_messages(self, user_id, thread_id, messages, window)

    async def delete_thread_messages(self, user_id: str, thread_id: str) -> int:
        """Delete the message memories of a deleted thread."""
        return await delete_thread_messages(self, user_id, thread_id)

    # --- user-facing CRUD ---
    async def _owned(self, user_id: str, memory_id: str) -> MemoryRecord:
        found = await self.store.get([memory_id])
        return ensure_owner(found[0] if found else None, user_id, memory_id)

    def _check_text(self, text: str) -> str:
        text = checked_clean(text, "text").strip()
        if not text:
            raise InvalidArgumentError("text", "must not be empty")
        if len(text) > self.cfg.max_text_chars:
            raise InvalidArgumentError(
                "text", f"is longer than {self.cfg.max_text_chars} characters"
            )
        return text

    @staticmethod
    def _check_kind(kind: str) -> None:
        if kind == MESSAGE_KIND:
            raise InvalidArgumentError(
                "kind", "message memories are kept from the conversation, not added or set"
            )

    async def list_memories(
        self, user_id: str, flt: VectorFilter, page_size: int, page_token: str
    ) -> tuple[list[MemoryRecord], str]:
        if page_size < 0:
            raise InvalidArgumentError("page_size", "must not be negative")
        size = min(page_size or 100, MAX_PAGE)
        offset = _offset(page_token)
        records, total = await self.store.list(flt, offset, size)
        nxt = _page_token(offset + size) if offset + size < total else ""
        return records, nxt

    async def add_memory(
        self, user_id: str, text: str, kind: str, importance: int, source_thread_id: str = ""
    ) -> MemoryRecord:
        """A memory the user states directly (``kind`` "" = a fact); goes through the same
        merge/supersede rules."""
        text = self._check_text(text)
        self._check_kind(kind)
        if importance < 0 or importance > 10:
            raise InvalidArgumentError("importance", "must be between 1 and 10 (0 = default)")
        cand = CandidateFact(
            text=text,
            kind=kind or "fact",
            importance=importance or 5,
            metadata={"origin": "user"},
        )
        report = await self.write_facts(user_id, source_thread_id, [cand])
        mid = (report.added or report.merged or report.skipped)[0]
        return await self._owned(user_id, mid)

    async def update_memory(
        self, user_id: str, memory_id: str, text: str | None, importance: int | None, kind: str
    ) -> MemoryRecord:
        """Correct a memory (``None`` / ``kind`` "" = unchanged); a text change is re-embedded."""
        checked = self._check_text(text) if text is not None else None  # before any lookup
        old = await self._owned(user_id, memory_id)
        changes: dict[str, Any] = {"updated_at_ms": now_ms()}
        if checked is not None:
            changes["text"] = checked
        if importance is not None:
            if importance < 1 or importance > 10:
                raise InvalidArgumentError("importance", "must be between 1 and 10")
            changes["importance"] = importance
        if kind:
            self._check_kind(kind)
            changes["kind"] = kind
        new = old.with_changes(**changes)
        if checked is not None and checked != old.text:
            await self.delete_derived_episodes(user_id, old)  # they quote the old text
        vec = await self.embedder.encode(
            [indexed_text(new.text, new.valid_from_ms, self.cfg.date_prefix)]
        )
        await self.store.upsert([new], vec)
        self.keyword_cache.invalidate(user_id)
        return new

    async def delete_memory(self, user_id: str, memory_id: str) -> bool:
        deleted, _, _ = await self.forget_memory(user_id, memory_id)
        return deleted

    async def forget_memory(self, user_id: str, memory_id: str) -> tuple[bool, MemoryRecord, int]:
        """Delete a memory and the episodes derived from the conversation it came from
        (they quote it); (deleted, the record, episodes deleted). The caller redacts the
        record's source messages from the thread (ADR 0013)."""
        record = await self._owned(user_id, memory_id)
        deleted = await self.store.delete([memory_id])
        episodes = await self.delete_derived_episodes(user_id, record)
        self.keyword_cache.invalidate(user_id)
        return bool(deleted), record, episodes

    async def delete_derived_episodes(self, user_id: str, record: MemoryRecord) -> int:
        """Delete what quotes ``record``'s words: the episodes of its source thread, and the
        message memories that hold one of its source messages (verbatim copies of them);
        the number of episodes deleted. Not for an episode itself."""
        if record.kind == "episode" or not record.source_thread_id:
            return 0
        derived = await self.store.all_matching(
            VectorFilter(
                user_id=user_id,
                kinds=("episode", MESSAGE_KIND),
                thread_id=record.source_thread_id,
                include_superseded=True,
            )
        )
        sources = set(record.source_message_ids)
        episodes = [d.id for d in derived if d.kind == "episode"]
        quoting = [
            d.id
            for d in derived
            if d.kind == MESSAGE_KIND and d.id != record.id and sources & set(d.source_message_ids)
        ]
        if not episodes and not quoting:
            return 0
        await self.store.delete(episodes + quoting)
        return len(episodes)

    # --- the user as a whole ---
    async def forget_user(self, user_id: str) -> dict[str, int]:
        counts = await self.store.delete_user(user_id)
        self.keyword_cache.invalidate(user_id)
        episodes = counts.get("episode", 0)
        messages = counts.get(MESSAGE_KIND, 0)
        out = {"facts": sum(counts.values()) - episodes - messages, "episodes": episodes}
        if messages:  # a receipt key of its own ("messages" counts short-term messages)
            out["message_memories"] = messages
        return out

    async def export_user(self, user_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        records = await self.store.all_matching(
            VectorFilter(user_id=user_id, include_superseded=True)
        )
        for r in sorted(records, key=lambda r: (r.created_at_ms, r.id)):
            yield "memory", r.to_json()

    async def stats(self, user_id: str | None) -> dict[str, int]:
        total = (await self.store.count(None)).get("total", 0)
        out = {"vector_count": total}
        if user_id:
            counts = await self.store.count(user_id)
            out["episodes"] = counts.get("episode", 0)
            out["message_memories"] = counts.get(MESSAGE_KIND, 0)
            out["facts"] = counts.get("total", 0) - out["episodes"] - out["message_memories"]
        return out

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False)
        await self.store.aclose()
