"""Long-term memory knobs (``LONGTERM__*``), read by the server and the worker alike."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class LongTermSettings(BaseSettings):
    """Dedup thresholds and hybrid-ranking weights (``docs/long-term-memory.md``)."""

    model_config = SettingsConfigDict(env_prefix="LONGTERM__", extra="ignore")

    # cosine similarity at or above which a new fact restates an existing one (merge)
    merge_similarity: float = Field(0.90, ge=0, le=1)
    # similarity above which two facts of the same slot with different values contradict
    contradiction_similarity: float = Field(0.55, ge=0, le=1)
    # candidates taken from the vector index before fusion (per query)
    vector_candidates: int = Field(100, ge=1, le=1000)
    # reciprocal-rank-fusion constant k (score = w / (k + rank))
    rrf_k: int = Field(60, ge=1)
    # weights of the vector and the BM25 ranking in the fusion
    vector_weight: float = Field(1.0, ge=0)
    keyword_weight: float = Field(1.0, ge=0)
    # multiplicative boosts: score *= 1 + importance_weight*(importance-5)/5
    importance_weight: float = Field(0.1, ge=0)
    #                        and   * (1 + recency_weight * 0.5 ** (age / half_life))
    recency_weight: float = Field(0.05, ge=0)
    recency_half_life_days: float = Field(30.0, gt=0)
    # prefix each indexed memory with the date it was said ("[8 May 2023] ...")
    date_prefix: bool = True
    # seconds a user's keyword index is reused before it is rebuilt from the store
    keyword_cache_s: float = Field(30.0, ge=0)
    # users whose keyword index is kept in memory
    keyword_cache_users: int = Field(256, ge=0)
    # largest memory text accepted from AddMemory/UpdateMemory, characters
    max_text_chars: int = Field(2000, ge=16)
