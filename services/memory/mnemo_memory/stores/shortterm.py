"""All short-term stores of one process, built from settings and one Redis client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .jobs import JobQueue
from .keys import KeyBuilder
from .outbox import NO_WAIT, Replication
from .preferences import PreferenceStore
from .ratelimit import RateLimiter
from .threads import ThreadStore

if TYPE_CHECKING:
    from mnemo_memory.config import MemoryServiceSettings


@dataclass
class ShortTermStores:
    redis: Any
    keys: KeyBuilder
    threads: ThreadStore
    preferences: PreferenceStore
    limiter: RateLimiter
    jobs: JobQueue
    #: False on Redis Cluster (global keys are then written outside the Lua scripts)
    inline_global: bool = True


def build_stores(
    settings: MemoryServiceSettings, redis: Any, *, inline_global: bool = True
) -> ShortTermStores:
    """The stores the servicer and the worker share."""
    keys = KeyBuilder(settings.redis.key_prefix)
    jobs = JobQueue(redis, keys)
    st = settings.shortterm
    from redis.asyncio.cluster import RedisCluster

    # WAIT for replicas on a real Cluster (the Cluster code path on a standalone server,
    # as the test suite also runs it, has no replicas to wait for)
    replication = (
        Replication(settings.redis.cluster_wait_replicas, settings.redis.cluster_wait_timeout_ms)
        if isinstance(redis, RedisCluster)
        else NO_WAIT
    )
    threads = ThreadStore(
        redis,
        keys,
        settings.memory,
        jobs,
        inline_global=inline_global,
        max_idempotency_keys=st.max_idempotency_keys_per_thread,
        summary_job_stale_s=st.summary_job_stale_s,
        title_chars=st.title_chars,
        replication=replication,
    )
    return ShortTermStores(
        redis=redis,
        keys=keys,
        threads=threads,
        preferences=PreferenceStore(redis, keys, settings.memory),
        limiter=RateLimiter(redis, keys, settings.rate_limit),
        jobs=jobs,
        inline_global=inline_global,
    )
