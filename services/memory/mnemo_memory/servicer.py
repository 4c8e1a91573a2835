"""The MemoryService servicer: short-term handlers + long-term handlers, one object."""

from __future__ import annotations

from mnemo.memory.v1 import memory_pb2_grpc

from mnemo_memory.config import MemoryServiceSettings
from mnemo_memory.erasure_jobs import ErasureJobs
from mnemo_memory.health import RedisHealth
from mnemo_memory.longterm import LongTermAPI
from mnemo_memory.servicer_longterm import LongTermRPCs
from mnemo_memory.servicer_shortterm import ShortTermRPCs
from mnemo_memory.stores.shortterm import ShortTermStores


class MemoryServicer(LongTermRPCs, ShortTermRPCs, memory_pb2_grpc.MemoryServiceServicer):
    """Attributes the mixins rely on: ``settings``, ``stores`` (ShortTermStores),
    ``threads`` (shortcut), ``longterm`` (None = long-term memory
    off: its RPCs answer UNIMPLEMENTED and PrepareTurn skips recall), ``redis_health``."""

    def __init__(
        self,
        settings: MemoryServiceSettings,
        stores: ShortTermStores,
        longterm: LongTermAPI | None = None,
        redis_health: RedisHealth | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.threads = stores.threads
        self.longterm = longterm
        self.redis_health = redis_health
        self.erasures = ErasureJobs(settings, stores, longterm)
