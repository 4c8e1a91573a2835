"""pytest plugin of the memory service's fixtures (``-p mnemo_memory.testing.plugin``,
registered in the root pyproject.toml so every suite sees them): ``memory_settings``,
``memory_server``, ``memory_server_factory``, ``memory_process`` (:mod:`.memory_server`),
``chroma_path``, ``chroma_server``, ``redisearch_server``, ``embedder`` (:mod:`.chroma`).
They build on ``redis_url`` from ``mnemo_common.testing.plugin``."""

from .chroma import *  # noqa: F403
from .memory_server import *  # noqa: F403
