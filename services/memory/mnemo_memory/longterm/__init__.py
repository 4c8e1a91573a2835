"""Long-term memory (facts and episodes in a vector store).

Seam with the rest of the service: ``build_longterm(settings)`` returns a
:class:`~.service.LongTermMemory`; the servicer sees it through the :class:`LongTermAPI`
methods, or as ``None`` when long-term memory is not available (then the long-term RPCs
answer UNIMPLEMENTED and PrepareTurn skips recall).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mnemo_memory.config import MemoryServiceSettings
    from mnemo_memory.embed import Embedder
    from mnemo_memory.stores.vector import MemoryRecord, VectorFilter

    from .ranking import Ranked
    from .service import LongTermMemory

log = logging.getLogger(__name__)


class LongTermAPI(Protocol):
    """What the servicer and the erasure jobs call (the worker's handlers use the concrete
    :class:`~.service.LongTermMemory`)."""

    async def recall(
        self,
        user_id: str,
        query: str,
        flt: VectorFilter,
        top_k: int = 0,
        token_budget: int = 0,
        held_messages: Collection[str] = (),
    ) -> list[Ranked]:
        """Best-first memories for a turn, not yet fitted to its budget (``token_budget``
        bounds each thread excerpt), none of them the message memory of one of
        ``held_messages`` (the turn's history); raises UnavailableError("vector_store")."""
        ...

    async def search(
        self, user_id: str, query: str, flt: VectorFilter, top_k: int = 0, token_budget: int = 0
    ) -> tuple[list[Ranked], int]:
        """``SearchMemories``: ranked memories and the tokens they cost."""
        ...

    async def list_memories(
        self, user_id: str, flt: VectorFilter, page_size: int, page_token: str
    ) -> tuple[list[MemoryRecord], str]:
        """``ListMemories``: one page and the next page's token ("" at the end)."""
        ...

    async def add_memory(
        self, user_id: str, text: str, kind: str, importance: int, source_thread_id: str = ""
    ) -> MemoryRecord: ...

    async def update_memory(
        self, user_id: str, memory_id: str, text: str | None, importance: int | None, kind: str
    ) -> MemoryRecord: ...

    async def forget_memory(self, user_id: str, memory_id: str) -> tuple[bool, MemoryRecord, int]:
        """Delete one memory and the episodes derived from it; (deleted, record, episodes)."""
        ...

    async def forget_user(self, user_id: str) -> dict[str, int]:
        """Delete every fact and episode of the user; counts by kind ("facts", "episodes")."""
        ...

    async def delete_thread_messages(self, user_id: str, thread_id: str) -> int:
        """Delete the message memories kept from one thread (``DeleteThread``)."""
        ...

    def export_user(self, user_id: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """(section, JSON-able document) for everything long-term held about the user."""
        ...

    async def stats(self, user_id: str | None) -> dict[str, int]:
        """{"vector_count": n} globally, plus "facts"/"episodes" for a user."""
        ...

    async def aclose(self) -> None: ...


def build_longterm(
    settings: MemoryServiceSettings, redis: Any = None, *, embedder: Embedder | None = None
) -> LongTermMemory:
    """The configured :class:`~.service.LongTermMemory` (cheap: the model starts loading
    on the embedding thread at once; the first query waits for it there).

    ``redis`` (the service's client; one is made from ``settings`` when omitted) holds the
    keyword index (``keywords.py``, ``LONGTERM__KEYWORD_INDEX=redis``) for either backend
    (the Redis vector backend opens its own binary-safe client for the vectors, with the
    same REDIS__* settings);
    ``embedder`` lets tests and benchmarks share one loaded model.
    """
    from mnemo_memory.embed import Embedder
    from mnemo_memory.stores.redis_client import create_redis
    from mnemo_memory.stores.vector import build_vector_store

    from .keyword_store import KeywordIndexedStore
    from .keywords import KeywordIndex
    from .service import LongTermMemory

    emb = embedder
    if emb is None:
        emb = Embedder.from_settings(settings)
        emb.start_loading()
    cfg = settings.longterm
    store: Any = build_vector_store(settings, emb.info)
    if cfg.keyword_index == "redis":
        keywords = KeywordIndex(
            redis if redis is not None else create_redis(settings),
            settings.redis.key_prefix,
            cfg.date_prefix,
        )
        store = KeywordIndexedStore(store, keywords)
    return LongTermMemory(
        embedder=emb,
        store=store,
        cfg=cfg,
        default_top_k=settings.vector.default_top_k,
    )


__all__ = ["LongTermAPI", "build_longterm"]
