"""Long-term memory knobs (``LONGTERM__*``), read by the server and the worker alike.

A group of ``MemoryServiceSettings`` (``settings.longterm``), so the variables are
validated with the rest and listed in docs/configuration.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LongTermSettings(BaseModel):
    """Dedup thresholds and hybrid-ranking weights (``docs/long-term-memory.md``)."""

    # cosine similarity at or above which a new fact restates an existing one (merge)
    merge_similarity: float = Field(0.90, ge=0, le=1)
    # similarity above which two facts of the same slot with different values contradict
    contradiction_similarity: float = Field(0.55, ge=0, le=1)
    # similarity above which the same statement with a changed value (number, date,
    # negation) supersedes the older fact instead of merging into it
    update_similarity: float = Field(0.75, ge=0, le=1)
    # candidates taken from the vector index (and from the keyword index) before fusion,
    # per query; thread excerpts are built from all of them (150: ADR 0025's amendment)
    vector_candidates: int = Field(150, ge=1, le=1000)
    # reciprocal-rank-fusion constant k (score = w / (k + rank)); 20 measured best on
    # LoCoMo (docs/benchmarks.md), 60 is the textbook value
    rrf_k: int = Field(20, ge=1)
    # weight of the vector (similarity) ranking in the fusion
    vector_weight: float = Field(1.0, ge=0)
    # weight of the BM25 (keyword) ranking in the fusion; 0 = vector search only
    keyword_weight: float = Field(1.0, ge=0)
    # importance boost: score *= 1 + importance_weight * (importance - 5) / 5
    importance_weight: float = Field(0.1, ge=0)
    # recency boost: score *= 1 + recency_weight * 0.5 ** (age / half-life)
    recency_weight: float = Field(0.05, ge=0)
    # age (days) at which the recency boost has halved
    recency_half_life_days: float = Field(30.0, gt=0)
    # prefix each indexed memory with the date it was said ("[8 May 2023] ...")
    date_prefix: bool = True
    # where BM25 candidates come from: redis (an inverted index kept in Redis, maintained
    # on write; a query reads its own words' postings) or inprocess (BM25 over all of the
    # user's memories, read from the vector store and cached per process)
    keyword_index: Literal["redis", "inprocess"] = "redis"
    # Chroma, redis keyword index: the KNN is restricted to the user's ids read from the
    # keyword index (Chroma's ids filter) instead of a user_id metadata filter (ADR 0029);
    # users with more ids than this, and narrowed filters, take the metadata filter
    knn_within_ids_max: int = Field(20000, ge=0)
    # inprocess only: seconds a user's keyword index is reused before it is rebuilt
    keyword_cache_s: float = Field(30.0, ge=0)
    # inprocess only: users whose keyword index is kept in memory
    keyword_cache_users: int = Field(256, ge=0)
    # largest memory text accepted from AddMemory/UpdateMemory, characters
    max_text_chars: int = Field(2000, ge=16)
    # which conversation messages are also kept as message memories: user, all (both
    # roles), off
    message_memories: Literal["user", "all", "off"] = "user"
    # messages before a message memory's own, kept with it as its context
    message_context_before: int = Field(1, ge=0, le=5)
    # messages after a message memory's own, kept with it as its context
    message_context_after: int = Field(1, ge=0, le=5)
    # longest context message kept in a message memory, characters
    message_context_chars: int = Field(400, ge=16)
    # fold the results of one conversation thread into one excerpt, so the top k spans k
    # threads and the token budget bounds each (grouping.py, ADR 0025)
    group_by_thread: bool = True
    # tokens the thread excerpts of one search may use when the request sets no budget
    # (0 = no bound)
    group_token_budget: int = Field(2000, ge=0)
    # a memory joins a thread excerpt only when relevant in its own right: cosine
    # similarity to the query at least this ...
    group_min_similarity: float = Field(0.4, ge=0, le=1)
    # ... or a keyword (BM25) score at least this fraction of the query's best
    group_min_keyword: float = Field(0.4, ge=0, le=1)
