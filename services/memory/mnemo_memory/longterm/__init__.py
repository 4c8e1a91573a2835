"""Long-term memory (facts and episodes in a vector store).

Seam with the rest of the service: ``build_longterm(settings, redis)`` returns an object
with the :class:`LongTermAPI` methods (a :class:`~.service.LongTermMemory`), or ``None``
when long-term memory is not available (then the long-term RPCs answer UNIMPLEMENTED and
PrepareTurn skips recall).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from mnemo.memory.v1 import memory_pb2

log = logging.getLogger(__name__)


class LongTermAPI(Protocol):
    async def recall(
        self, user_id: str, query: str, options: memory_pb2.RecallOptions, token_budget: int = 0
    ) -> list[memory_pb2.ScoredMemory]:
        """Best-first memories for a turn (within ``token_budget``, the turn's, where it
        bounds them); raises UnavailableError("vector_store")."""
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


def build_longterm(settings: Any, redis: Any = None, *, embedder: Any = None) -> Any:
    """The configured :class:`~.service.LongTermMemory` (cheap: the model starts loading
    on the embedding thread at once; the first query waits for it there).

    ``redis`` is unused (the Redis vector backend opens its own binary-safe client);
    ``embedder`` lets tests and benchmarks share one loaded model.
    """
    from mnemo_memory.embed import Embedder
    from mnemo_memory.stores.vector import build_vector_store

    from .service import LongTermMemory
    from .settings import LongTermSettings

    emb = embedder
    if emb is None:
        emb = Embedder.from_settings(settings)
        emb.start_loading()
    store = build_vector_store(settings, emb.info)
    return LongTermMemory(
        embedder=emb,
        store=store,
        cfg=getattr(settings, "longterm", None) or LongTermSettings(),
        default_top_k=settings.vector.default_top_k,
    )


__all__ = ["LongTermAPI", "build_longterm"]
