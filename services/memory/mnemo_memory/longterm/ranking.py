"""Hybrid ranking: vector similarity fused with BM25 keyword scores, then importance and
recency boosts, then a token budget.

Method (documented in ``docs/long-term-memory.md`` and ADR 0005):

1. Vector candidates: the ``LONGTERM__VECTOR_CANDIDATES`` nearest memories of the user
   (user filter always applied by the store).
2. Keyword candidates: BM25 (Okapi, k1=1.5, b=0.75) over *all* of the user's memories that
   pass the filter, so an exact name or rare word is found even when the embedding misses it.
3. Reciprocal rank fusion: ``w_v/(k+rank_v) + w_k/(k+rank_k)`` (a list a memory is absent
   from contributes nothing).
4. Boosts: ``* (1 + w_i*(importance-5)/5) * (1 + w_r*0.5^(age/half_life))``.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from mnemo_common.tokens import estimate_tokens

from mnemo_memory.stores.vector import MemoryRecord

from .settings import LongTermSettings
from .text import indexed_text, normalize, tokenize


class BM25Index:
    """A small inverted-index BM25 over one user's memories (fast enough for 10k docs)."""

    def __init__(self, docs: Sequence[list[str]], k1: float = 1.5, b: float = 0.75) -> None:
        self.n = len(docs)
        self.k1, self.b = k1, b
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        self.avgdl = float(lengths.mean()) if self.n else 0.0
        self.norm = k1 * (1 - b + b * lengths / (self.avgdl or 1.0))
        postings: dict[str, dict[int, int]] = {}
        for i, doc in enumerate(docs):
            for tok in doc:
                row = postings.setdefault(tok, {})
                row[i] = row.get(i, 0) + 1
        self.postings = {
            tok: (
                np.fromiter(row.keys(), dtype=np.int64, count=len(row)),
                np.fromiter(row.values(), dtype=np.float32, count=len(row)),
            )
            for tok, row in postings.items()
        }

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        out = np.zeros(self.n, dtype=np.float32)
        for tok in set(query_tokens):
            hit = self.postings.get(tok)
            if hit is None:
                continue
            idx, tf = hit
            df = len(idx)
            idf = math.log((self.n - df + 0.5) / (df + 0.5) + 1.0)
            out[idx] += idf * tf * (self.k1 + 1) / (tf + self.norm[idx])
        return out


class KeywordScores(Protocol):
    """BM25 scores aligned with a corpus's records (``BM25Index``, or the candidates the
    Redis keyword index scored: ``keyword_store.CandidateScores``)."""

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray: ...


@dataclass
class KeywordCorpus:
    """A user's memories (or a query's keyword candidates) and their BM25 scores."""

    records: list[MemoryRecord]
    index: KeywordScores
    built_at: float


class KeywordCache:
    """Per (user, filter) keyword corpora, LRU-bounded, expired after ``ttl_s`` and
    dropped on every local write for that user."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], KeywordCorpus] = OrderedDict()

    def get(self, user_id: str, key: str) -> KeywordCorpus | None:
        entry = self._entries.get((user_id, key))
        if entry is None or time.monotonic() - entry.built_at > self.ttl_s:
            return None
        self._entries.move_to_end((user_id, key))
        return entry

    def put(self, user_id: str, key: str, corpus: KeywordCorpus) -> None:
        if self.max_entries <= 0 or self.ttl_s <= 0:
            return
        self._entries[(user_id, key)] = corpus
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, user_id: str) -> None:
        for k in [k for k in self._entries if k[0] == user_id]:
            del self._entries[k]


def build_corpus(records: list[MemoryRecord], date_prefix: bool) -> KeywordCorpus:
    docs = [tokenize(indexed_text(r.text, r.valid_from_ms, date_prefix)) for r in records]
    return KeywordCorpus(records, BM25Index(docs), time.monotonic())


@dataclass(frozen=True)
class Ranked:
    record: MemoryRecord
    score: float
    vector_score: float
    keyword_score: float


def fuse(
    vector_hits: list[tuple[MemoryRecord, float]],
    corpus: KeywordCorpus | None,
    query: str,
    cfg: LongTermSettings,
    now_ms: int,
    top_k: int,
    *,
    keep_all: bool = False,
) -> list[Ranked]:
    """Best-first fused ranking of vector hits and BM25 hits (see the module docstring):
    the best ``top_k``, or with ``keep_all`` every candidate (thread excerpts walk all of
    what the two lists brought), after the repeat rules of :func:`select`."""
    k = cfg.rrf_k
    fused: dict[str, float] = {}
    records: dict[str, MemoryRecord] = {}
    vec_score: dict[str, float] = {}
    kw_score: dict[str, float] = {}
    for rank, (rec, sim) in enumerate(vector_hits):
        fused[rec.id] = fused.get(rec.id, 0.0) + cfg.vector_weight / (k + rank + 1)
        records[rec.id] = rec
        vec_score[rec.id] = sim
    if corpus is not None and corpus.records:
        scores = corpus.index.scores(tokenize(query))
        top = float(scores.max()) if len(scores) else 0.0
        if top > 0:
            limit = min(len(scores), max(cfg.vector_candidates, top_k))
            order = np.argsort(-scores, kind="stable")[:limit]
            for rank, i in enumerate(order):
                if scores[i] <= 0:
                    break
                rec = corpus.records[int(i)]
                fused[rec.id] = fused.get(rec.id, 0.0) + cfg.keyword_weight / (k + rank + 1)
                records.setdefault(rec.id, rec)
                kw_score[rec.id] = float(scores[i]) / top
    half_life_ms = cfg.recency_half_life_days * 86_400_000
    ranked = []
    for mid, base in fused.items():
        rec = records[mid]
        importance = 1 + cfg.importance_weight * (rec.importance - 5) / 5
        when = rec.valid_from_ms or rec.created_at_ms
        age = max(0, now_ms - when) if when else half_life_ms * 10
        recency = 1 + cfg.recency_weight * 0.5 ** (age / half_life_ms)
        ranked.append(
            Ranked(
                rec, base * importance * recency, vec_score.get(mid, 0.0), kw_score.get(mid, 0.0)
            )
        )
    ranked.sort(key=lambda r: (-r.score, r.record.id))
    return select(ranked, len(ranked) if keep_all else top_k)


def select(ranked: list[Ranked], top_k: int) -> list[Ranked]:
    """The best ``top_k`` of ``ranked`` (best first) without repeats: a memory whose
    normalised text an earlier one already has (the same message said in two threads), or
    a message memory whose messages all appear in earlier message memories (overlapping
    context windows), adds nothing and is passed over for the next one."""
    out: list[Ranked] = []
    texts: set[str] = set()
    covered: set[str] = set()
    for r in ranked:
        if len(out) >= top_k:
            break
        rec = r.record
        norm = normalize(rec.text)
        if norm in texts:
            continue
        sources = set(rec.source_message_ids)
        if rec.kind == "message" and sources and sources <= covered:
            continue
        out.append(r)
        texts.add(norm)
        if rec.kind == "message":  # a fact never hides the words it was extracted from
            covered |= sources
    return out


def fit_budget(ranked: list[Ranked], token_budget: int) -> tuple[list[Ranked], int, int]:
    """Keep best-first results whose estimated tokens fit ``token_budget`` (0 = no budget);
    returns (kept, tokens used, dropped)."""
    kept, used, dropped = [], 0, 0
    for r in ranked:
        cost = estimate_tokens(r.record.text)
        if token_budget and used + cost > token_budget:
            dropped += 1
            continue
        kept.append(r)
        used += cost
    return kept, used, dropped
