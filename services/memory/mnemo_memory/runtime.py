"""The composition root of the memory service's processes: every client, store and the
long-term memory are built here from the settings, once per process, so the gRPC server
(:func:`mnemo_memory.server.create_server`), the worker process
(:func:`mnemo_memory.worker.main.serve`) and the worker inside the server
(``SERVER__RUN_WORKER``) cannot drift apart.

* :func:`build_runtime` — the Redis client (``REDIS__*``: timeouts, pool, TLS), the
  short-term stores on it (``build_stores``: Cluster WAIT, idempotency cap, titles) and the
  long-term memory (``build_longterm``: the embedder, the vector store).
* :func:`build_worker` — the stream worker on a runtime's stores and long-term memory.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnemo_memory.longterm import build_longterm
from mnemo_memory.stores.redis_client import RedisTarget, create_redis, target_from_settings
from mnemo_memory.stores.shortterm import ShortTermStores, build_stores

if TYPE_CHECKING:
    from mnemo_common.llm import LLMProvider

    from mnemo_memory.config import MemoryServiceSettings
    from mnemo_memory.longterm.service import LongTermMemory
    from mnemo_memory.worker.consumer import StreamWorker
    from mnemo_memory.worker.liveness import Heartbeat

#: ``build_runtime(longterm=DEFAULT)``: the configured long-term memory
DEFAULT = "default"


@dataclass
class Runtime:
    settings: MemoryServiceSettings
    target: RedisTarget
    redis: Any
    stores: ShortTermStores
    longterm: LongTermMemory | None

    async def aclose(self) -> None:
        """Close the long-term memory and the Redis client (what build_runtime opened)."""
        if self.longterm is not None:
            with contextlib.suppress(Exception):
                await self.longterm.aclose()
        with contextlib.suppress(Exception):
            await self.redis.aclose()


def build_runtime(
    settings: MemoryServiceSettings,
    *,
    redis: Any = None,
    longterm: LongTermMemory | str | None = DEFAULT,
) -> Runtime:
    """Everything a memory-service process needs, built from ``settings`` (nothing
    connects yet). ``redis`` / ``longterm`` (None: short-term only) replace the built ones."""
    target = target_from_settings(settings)
    client = redis if redis is not None else create_redis(settings, target=target)
    stores = build_stores(settings, client, inline_global=target.cross_slot_ok)
    lt = build_longterm(settings, client) if isinstance(longterm, str) else longterm
    return Runtime(settings, target, client, stores, lt)


def build_worker(
    settings: MemoryServiceSettings,
    stores: ShortTermStores,
    longterm: LongTermMemory,
    provider: LLMProvider | None,
    heartbeat: Heartbeat | None = None,
) -> StreamWorker:
    """The stream worker on these stores (its handlers' ThreadStore is ``stores.threads``)."""
    from mnemo_memory.worker.consumer import StreamWorker
    from mnemo_memory.worker.main import build_context
    from mnemo_memory.worker.tasks import registry

    return StreamWorker(
        redis=stores.redis,
        jobs=stores.jobs,
        ctx=build_context(settings, stores.redis, longterm, provider, stores=stores),
        registry=registry,
        settings=settings.worker,
        idle_minutes=settings.memory.episode_idle_minutes,
        heartbeat=heartbeat,
    )
