"""The keyword (BM25) index of long-term memory, kept in Redis and maintained on write
(ADR 0024), so a query costs O(its candidates) — the memories that share a word with it —
and never reads all of the user's memories.

Layout (``P`` = ``REDIS__KEY_PREFIX``; ``{uid}`` is the user's Cluster hash tag, and the
keys live outside ``P:u:{uid}:``, which is short-term memory's)::

    P:kw:{uid}:c:TOKEN   hash  memory id -> posting (term frequency, length, created s)
                               of the user's current memories
    P:kw:{uid}:s:TOKEN   hash  the same, of superseded memories
    P:kw:{uid}:docs      hash  memory id -> family, length, filter fields, tokens
    P:kw:{uid}:stats     hash  n_c/len_c, n_s/len_s (documents and tokens per family),
                               built (the user's index covers what the store held)

One Lua script per document moves it atomically (old postings out, new in, the counts
adjusted), so concurrent writers of the service and the worker keep it consistent. The
store wrapper :class:`KeywordIndexedStore` calls it after every write of the vector store;
a user whose index was never built (memories stored before it existed) is indexed once
from the store on their first query (``backfill``).

Scoring is the same Okapi BM25 as ``ranking.BM25Index`` over the memories that pass the
filter: term frequencies and document frequencies of the candidates, ``N`` and the mean
length of the family (current, or current + superseded with ``include_superseded``). With
a kind, importance, date or thread filter, ``N`` and the mean length stay the family's
(the in-process index used the filtered set's): document frequencies are still counted
over the filtered candidates only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mnemo_memory.errors import UnavailableError
from mnemo_memory.stores.lua import LuaScript, execute_with_scripts
from mnemo_memory.stores.vector import MemoryRecord, VectorFilter

from .text import indexed_text, tokenize


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


# KEYS: docs, stats. ARGV: posting key base ("P:kw:{uid}:"), memory id, mode (put |
# update | del), then for put/update: family, length, docs value head, token, posting, ...
_MOVE = """
local docs, stats, base, mid, mode = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local old = redis.call('HGET', docs, mid)
if mode == 'update' and not old then return 0 end
if old then
  local fam, odl, toks = string.match(old, '^([^\\t]*)\\t([^\\t]*)\\t.*\\t([^\\t]*)$')
  for tok in string.gmatch(toks, '%S+') do redis.call('HDEL', base .. fam .. ':' .. tok, mid) end
  redis.call('HINCRBY', stats, 'n_' .. fam, -1)
  redis.call('HINCRBY', stats, 'len_' .. fam, -tonumber(odl))
  redis.call('HDEL', docs, mid)
end
if mode == 'del' then return 1 end
local fam, dl, head = ARGV[4], ARGV[5], ARGV[6]
local toks = {}
for i = 7, #ARGV, 2 do
  redis.call('HSET', base .. fam .. ':' .. ARGV[i], mid, ARGV[i + 1])
  toks[#toks + 1] = ARGV[i]
end
redis.call('HSET', docs, mid, head .. '\\t' .. table.concat(toks, ' '))
redis.call('HINCRBY', stats, 'n_' .. fam, 1)
redis.call('HINCRBY', stats, 'len_' .. fam, tonumber(dl))
return 1
"""

# KEYS: docs. ARGV: family ("c": current memories only, "": every family). The ids of
# the user's indexed memories (the docs value starts with the family).
_IDS = LuaScript(
    "keyword_ids",
    """
local flat, fam, out = redis.call('HGETALL', KEYS[1]), ARGV[1], {}
for i = 1, #flat, 2 do
  if fam == '' or string.sub(flat[i + 1], 1, 1) == fam then out[#out + 1] = flat[i] end
end
return out
""",
)

_TF_BITS, _LEN_BITS = 8, 16  # a posting: created_s << 24 | min(tf, 255) << 16 | length


def posting(tf: int, length: int, created_ms: int) -> int:
    created_s = max(0, created_ms // 1000)
    return (created_s << 24) | (min(tf, 255) << _LEN_BITS) | min(length, 65535)


def _field_ok(meta: str, flt: VectorFilter) -> bool:
    """The filter's kind/importance/date/thread on a docs entry ("fam\\tlen\\tmeta\\t…")."""
    kind, importance, valid_from, thread = meta.split("\t", 6)[2:6]
    return (
        (not flt.kinds or kind in flt.kinds)
        and int(importance) >= flt.min_importance
        and (not flt.since_ms or int(valid_from) >= flt.since_ms)
        and (not flt.until_ms or int(valid_from) <= flt.until_ms)
        and (not flt.thread_id or thread == flt.thread_id)
    )


def narrowed(flt: VectorFilter) -> bool:
    """Does ``flt`` select more than the user and the families (kind, importance, ...)?"""
    return bool(flt.kinds or flt.min_importance or flt.since_ms or flt.until_ms or flt.thread_id)


@dataclass(frozen=True)
class Lookup:
    """What one query read from the index: the family counts and the postings of each
    query token (memory id -> posting) per family read."""

    stats: dict[str, str]
    postings: list[dict[str, str]]  # one per (token, family), in ``tokens`` order
    tokens: list[str]
    meta: dict[str, str | None]  # docs entries of the candidates (narrowed filters only)
    #: every id of the user's memories in the filter's families (only when asked for,
    #: the index is built and the filter is not narrowed); None = not read
    ids: list[str] | None = None

    @property
    def built(self) -> bool:
        return bool(self.stats.get("built"))


def bm25_candidates(
    lookup: Lookup, flt: VectorFilter, limit: int, k1: float = 1.5, b: float = 0.75
) -> list[tuple[str, float]]:
    """The best ``limit`` (memory id, BM25 score > 0) of the lookup, best first (ties: the
    newest first, then by id); CPU only, O(postings read)."""
    fams = ("c", "s") if flt.include_superseded else ("c",)
    n = sum(int(lookup.stats.get(f"n_{f}", 0) or 0) for f in fams)
    total = sum(int(lookup.stats.get(f"len_{f}", 0) or 0) for f in fams)
    if n <= 0:
        return []
    avgdl = total / n or 1.0
    is_narrowed = narrowed(flt)
    per_token: dict[str, tuple[list[str], list[str]]] = {}
    for tok, rows in zip(lookup.tokens, lookup.postings, strict=True):
        if is_narrowed:
            rows = {
                mid: raw
                for mid, raw in rows.items()
                if (meta := lookup.meta.get(mid)) is not None and _field_ok(meta, flt)
            }
        ids, raws = per_token.setdefault(tok, ([], []))
        ids.extend(rows)
        raws.extend(rows.values())
    names: list[str] = []
    parts: list[np.ndarray] = []
    created_parts: list[np.ndarray] = []
    for ids, raws in per_token.values():
        df = len(ids)
        if not df:
            continue
        idf = math.log((n - df + 0.5) / (df + 0.5) + 1.0)
        value = np.fromiter(map(int, raws), dtype=np.int64, count=df)
        tf = ((value >> _LEN_BITS) & 0xFF).astype(np.float64)
        norm = k1 * (1 - b + b * (value & 0xFFFF) / avgdl)
        parts.append(idf * tf * (k1 + 1) / (tf + norm))
        created_parts.append(value >> 24)
        names.extend(ids)
    if not names:
        return []
    scores, created = np.concatenate(parts), np.concatenate(created_parts)
    if len(parts) > 1:  # a memory holding several query tokens: its scores add up
        slot: dict[str, int] = {}
        where = np.fromiter(
            (slot.setdefault(mid, len(slot)) for mid in names), dtype=np.int64, count=len(names)
        )
        summed = np.zeros(len(slot))
        np.add.at(summed, where, scores)
        newest = np.zeros(len(slot), dtype=np.int64)
        newest[where] = created
        names, scores, created = list(slot), summed, newest
    order = np.flatnonzero(scores > 0)
    if len(order) > limit:  # everything tied with the limit-th best, then an exact sort
        cut = np.partition(scores[order], len(order) - limit)[len(order) - limit]
        order = order[scores[order] >= cut]
    ranked = sorted(
        ((names[i], float(scores[i]), int(created[i])) for i in order),
        key=lambda x: (-x[1], -x[2], x[0]),
    )
    return [(mid, score) for mid, score, _ in ranked[:limit]]


class KeywordIndex:
    """The Redis-kept BM25 index (see the module docstring)."""

    def __init__(self, redis: Any, prefix: str, date_prefix: bool) -> None:
        self.redis = redis
        self.prefix = prefix
        self.date_prefix = date_prefix
        self._move = redis.register_script(_MOVE)
        self._cluster = hasattr(redis, "get_nodes")  # redis.asyncio.RedisCluster

    def base(self, user_id: str) -> str:
        return f"{self.prefix}:kw:{{{user_id}}}:"

    async def _run(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise UnavailableError("vector_store", f"redis keyword index: {exc}") from exc

    def _args(self, record: MemoryRecord, mode: str) -> tuple[list[str], list[Any]]:
        base = self.base(record.user_id)
        keys = [base + "docs", base + "stats"]
        if mode == "del":
            return keys, [base, record.id, "del"]
        tokens = tokenize(indexed_text(record.text, record.valid_from_ms, self.date_prefix))
        counts: dict[str, int] = {}
        for tok in tokens:
            counts[tok] = counts.get(tok, 0) + 1
        fam = "s" if record.valid_to_ms else "c"
        head = "\t".join(
            [
                fam,
                str(len(tokens)),
                record.kind,
                str(int(record.importance)),
                str(int(record.valid_from_ms)),
                record.source_thread_id,
            ]
        )
        args: list[Any] = [base, record.id, mode, fam, str(len(tokens)), head]
        for tok, tf in counts.items():
            args += [tok, str(posting(tf, len(tokens), record.created_at_ms))]
        return keys, args

    async def apply(self, records: Iterable[MemoryRecord], mode: str) -> None:
        """``put`` (index or re-index), ``update`` (re-index only what is indexed) or
        ``del`` each record, one atomic script call each, pipelined."""
        batch = list(records)
        if not batch:
            return
        if self._cluster:  # redis-py's cluster pipeline runs no scripts: one call each
            for record in batch:
                keys, args = self._args(record, mode)
                await self._run(self._move(keys=keys, args=args))
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for record in batch:
                keys, args = self._args(record, mode)
                await self._move(keys=keys, args=args, client=pipe)
            await self._run(pipe.execute())

    async def lookup(
        self, user_id: str, query: str, flt: VectorFilter, *, with_ids: bool = False
    ) -> Lookup:
        """One round trip: the family counts and every query token's postings (and, for a
        kind/importance/date/thread filter, a second one for the candidates' fields).
        ``with_ids``: also the ids of the user's memories in the filter's families (the
        set a KNN may be restricted to; not for a narrowed filter)."""
        base = self.base(user_id)
        tokens = sorted(set(tokenize(query)))
        fams = ("c", "s") if flt.include_superseded else ("c",)
        with_ids = with_ids and not narrowed(flt)
        id_args = [base + "docs"], ["" if flt.include_superseded else "c"]
        order: list[str] = []

        def build(pipe: Any) -> None:
            order.clear()
            pipe.hgetall(base + "stats")
            for tok in tokens:
                for fam in fams:
                    pipe.hgetall(f"{base}{fam}:{tok}")
                    order.append(tok)
            if with_ids and not self._cluster:
                _IDS.queue(pipe, *id_args)

        replies = await self._run(
            execute_with_scripts(self.redis, build, [_IDS], transaction=False)
        )
        ids: list[str] | None = None
        if with_ids:
            # redis-py's cluster pipeline runs no scripts: a call of its own there
            raw = (
                replies.pop()
                if not self._cluster
                else await self._run(_IDS.run(self.redis, *id_args))
            )
            ids = [_s(i) for i in raw] if (replies[0] or {}).get("built") else None
        meta: dict[str, str | None] = {}
        if narrowed(flt):
            ids_read = sorted({mid for rows in replies[1:] for mid in rows})
            if ids_read:
                values = await self._run(self.redis.hmget(base + "docs", ids_read))
                meta = dict(zip(ids_read, values, strict=True))
        return Lookup(replies[0] or {}, list(replies[1:]), order, meta, ids)

    async def unbuilt(self, user_ids: Sequence[str]) -> list[str]:
        """Those of ``user_ids`` whose index is not marked built."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in user_ids:
                pipe.hexists(self.base(uid) + "stats", "built")
            built = await self._run(pipe.execute())
        return [uid for uid, b in zip(user_ids, built, strict=True) if not b]

    async def mark_built(self, user_id: str) -> None:
        await self._run(self.redis.hset(self.base(user_id) + "stats", "built", "1"))

    async def drop_user(self, user_id: str) -> int:
        """Delete every keyword key of the user (erasure); the number of keys deleted."""
        base = self.base(user_id)
        docs = await self._run(self.redis.hgetall(base + "docs"))
        keys = {base + "docs", base + "stats"}
        for value in docs.values():
            fam, _, _, _, _, _, toks = value.split("\t", 6)
            keys.update(f"{base}{fam}:{tok}" for tok in toks.split())
        deleted = 0
        ordered = sorted(keys)
        for start in range(0, len(ordered), 500):
            deleted += int(await self._run(self.redis.delete(*ordered[start : start + 500])))
        return deleted

    async def user_keys(self, user_id: str) -> list[str]:
        """Every key of the user's index (tests and audits: a SCAN of the user's tag)."""
        return sorted(
            [k async for k in self.redis.scan_iter(match=self.base(user_id) + "*", count=1000)]
        )


def doc_ids(records: Sequence[MemoryRecord]) -> list[str]:
    return [r.id for r in records]
