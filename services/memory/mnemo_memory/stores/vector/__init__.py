"""Vector stores of long-term memory: Chroma (default) or a Redis vector index.

``build_vector_store(settings, model)`` picks the backend from ``VECTOR__BACKEND``:
``chroma`` uses ``CHROMADB_URL`` (server mode) when set, else an embedded store at
``VECTOR__CHROMA_PATH``; ``redis`` uses the memory service's Redis (RediSearch needed).
"""

from __future__ import annotations

from mnemo_common.settings import CommonSettings

from mnemo_memory.embed import ModelInfo

from .base import KINDS, MemoryRecord, VectorFilter, VectorHit, VectorStore
from .chroma import ChromaVectorStore
from .redis_index import RedisVectorStore


def build_vector_store(
    settings: CommonSettings, model: ModelInfo
) -> ChromaVectorStore | RedisVectorStore:
    """The configured backend (not opened yet: call ``open()``)."""
    vs = settings.vector
    if vs.backend == "redis":
        from mnemo_memory.stores.redis_client import create_redis

        # its own client (binary replies), built from the same REDIS__* settings as the
        # service's: socket and connect timeouts, pool size, TLS and its CA
        return RedisVectorStore(
            redis=create_redis(settings, binary=True), model=model, prefix=settings.redis.key_prefix
        )
    if settings.chromadb_url:
        return ChromaVectorStore(
            model=model,
            url=settings.chromadb_url,
            collection_prefix=vs.collection_prefix,
            token=vs.chroma_token.get_secret_value() if vs.chroma_token else None,
        )
    return ChromaVectorStore(
        model=model, path=vs.chroma_path, collection_prefix=vs.collection_prefix
    )


__all__ = [
    "KINDS",
    "ChromaVectorStore",
    "MemoryRecord",
    "RedisVectorStore",
    "VectorFilter",
    "VectorHit",
    "VectorStore",
    "build_vector_store",
]
