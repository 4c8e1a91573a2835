"""Memory usage of Redis, globally and per user (GetStats and the Prometheus gauges).

* global: ``INFO memory`` (used_memory, maxmemory; on Cluster summed over the primaries),
  keys by kind from one ``SCAN`` over the keyspace (on Cluster: of every primary; at
  most ``SHORTTERM__STATS_SCAN_LIMIT`` keys; beyond that counts are
  extrapolated with ``DBSIZE``), approximate bytes by kind (``MEMORY USAGE`` of up to
  ``SAMPLES_PER_KIND`` keys of each kind times the count), job stream stats;
* per user: threads, messages (LLEN of each thread), preferences and approximate bytes
  (``MEMORY USAGE`` of a sample of the user's keys, scaled to the key count).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from mnemo_common import metrics

from .shortterm import ShortTermStores

SAMPLES_PER_KIND = 10

USED_MEMORY = metrics.gauge("mnemo_memory_redis_used_memory_bytes", "Redis used_memory")
MAX_MEMORY = metrics.gauge("mnemo_memory_redis_maxmemory_bytes", "Redis maxmemory (0 = none)")
KEYS_BY_KIND = metrics.gauge("mnemo_memory_redis_keys", "Mnemo keys in Redis by kind", ("kind",))
BYTES_BY_KIND = metrics.gauge(
    "mnemo_memory_redis_key_bytes",
    "Approximate bytes of Mnemo keys by kind (sampled MEMORY USAGE)",
    ("kind",),
)
JOB_STREAM = metrics.gauge("mnemo_memory_jobs_stream_length", "Jobs waiting in the stream")
JOB_PENDING = metrics.gauge("mnemo_memory_jobs_pending", "Jobs delivered but not acked")
JOB_DEAD = metrics.gauge("mnemo_memory_jobs_dead_letter_length", "Jobs in the dead-letter stream")
PERSISTENCE_OK = metrics.gauge(
    "mnemo_memory_redis_persistence_ok",
    "1 when Redis' last write of this kind succeeded, 0 when it failed (INFO persistence; "
    "on Cluster 0 when any primary's failed): rdb_bgsave, aof_rewrite, aof_write",
    ("operation",),
)
VECTORS = metrics.gauge(
    "mnemo_memory_vectors", "Records in the long-term vector store (facts, episodes, messages)"
)
#: PERSISTENCE_OK's operation label -> the INFO persistence field ("ok" or "err")
PERSISTENCE_FIELDS = {
    "rdb_bgsave": "rdb_last_bgsave_status",
    "aof_rewrite": "aof_last_bgrewrite_status",
    "aof_write": "aof_last_write_status",
}


async def global_stats(stores: ShortTermStores, *, scan_limit: int = 200_000) -> dict[str, Any]:
    """used/max memory, keys and approximate bytes by kind, job stream stats."""
    redis, k = stores.redis, stores.keys
    info = await _memory_info(redis)
    counts: dict[str, int] = defaultdict(int)
    samples: dict[str, list[str]] = defaultdict(list)
    visited = 0
    async for key in redis.scan_iter(count=1000):
        visited += 1
        kind = k.kind_of(key)
        if kind != "foreign":
            counts[kind] += 1
            if len(samples[kind]) < SAMPLES_PER_KIND:
                samples[kind].append(key)
        if visited >= scan_limit:
            break
    if visited >= scan_limit:
        total = int(await _dbsize(redis))
        factor = total / visited if visited else 1.0
        counts = defaultdict(int, {kind: round(n * factor) for kind, n in counts.items()})
    bytes_by_kind: dict[str, int] = {}
    for kind, keys in samples.items():
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=5)
        sizes = [int(s or 0) for s in await pipe.execute()]
        if sizes:
            bytes_by_kind[kind] = int(sum(sizes) / len(sizes) * counts[kind])
    jobs = await stores.jobs.stats()
    return {
        "used_memory": int(info.get("used_memory", 0)),
        "maxmemory": int(info.get("maxmemory", 0)),
        "keys_by_kind": dict(counts),
        "bytes_by_kind": bytes_by_kind,
        **jobs,
    }


async def _dbsize(redis: Any) -> int:
    """Keys of the deployment (DBSIZE of every primary on Cluster)."""
    from redis.asyncio.cluster import RedisCluster

    if isinstance(redis, RedisCluster):
        return int(await redis.dbsize(target_nodes=RedisCluster.PRIMARIES))
    return int(await redis.dbsize())


async def _primary_infos(redis: Any, section: str) -> list[dict[str, Any]]:
    """``INFO section`` of the one server, or of every primary on Cluster."""
    from redis.asyncio.cluster import RedisCluster

    if not isinstance(redis, RedisCluster):
        return [await redis.info(section)]
    per_node = await redis.info(section, target_nodes=RedisCluster.PRIMARIES)
    # one answer per primary, keyed by node name (a lone primary's answer is not wrapped)
    if any(not isinstance(v, dict) for v in per_node.values()):
        return [per_node]
    return list(per_node.values())


async def _memory_info(redis: Any) -> dict[str, int]:
    """used_memory and maxmemory of the deployment: one server's, or the primaries' sum."""
    infos = await _primary_infos(redis, "memory")
    return {f: sum(int(i.get(f, 0)) for i in infos) for f in ("used_memory", "maxmemory")}


async def persistence_status(redis: Any) -> dict[str, bool]:
    """Whether Redis' last RDB save, AOF rewrite and AOF write succeeded (every primary's)."""
    infos = await _primary_infos(redis, "persistence")
    return {
        op: all(str(i.get(field, "ok")) == "ok" for i in infos)
        for op, field in PERSISTENCE_FIELDS.items()
    }


def publish_persistence(status: dict[str, bool]) -> None:
    for op, ok in status.items():
        PERSISTENCE_OK.labels(op).set(1 if ok else 0)


def publish_gauges(stats: dict[str, Any]) -> None:
    """Set the Prometheus gauges from :func:`global_stats`' result."""
    USED_MEMORY.set(stats["used_memory"])
    MAX_MEMORY.set(stats["maxmemory"])
    for kind, n in stats["keys_by_kind"].items():
        KEYS_BY_KIND.labels(kind).set(n)
    for kind, n in stats["bytes_by_kind"].items():
        BYTES_BY_KIND.labels(kind).set(n)
    JOB_STREAM.set(stats["stream_length"])
    JOB_PENDING.set(stats["pending"])
    JOB_DEAD.set(stats["dead_letter_length"])


async def user_stats(stores: ShortTermStores, user_id: str, *, samples: int = 25) -> dict[str, int]:
    """threads, messages, preferences and approx_bytes of one user."""
    redis, k = stores.redis, stores.keys
    thread_ids = await stores.threads.thread_ids(user_id)
    pipe = redis.pipeline(transaction=False)
    for tid in thread_ids:
        pipe.llen(k.messages(user_id, tid))
        pipe.exists(k.meta(user_id, tid))
    pipe.hlen(k.preferences(user_id))
    results = await pipe.execute()
    messages, n_prefs = sum(int(n) for n in results[:-1:2]), int(results[-1])
    # the index may still list threads that expired (ListThreads prunes it lazily)
    live = sum(1 for n in results[1:-1:2] if n)
    keys = list(k.user_keys(user_id))
    for tid in thread_ids:
        keys += k.thread_keys(user_id, tid)
    step = max(1, len(keys) // samples)
    sample = keys[::step][:samples]
    pipe = redis.pipeline(transaction=False)
    for key in sample:
        pipe.memory_usage(key, samples=5)
    sizes = [s for s in await pipe.execute() if s]
    # keys that do not exist (a thread without summary...) count as 0 bytes
    approx = int(sum(sizes) * len(keys) / len(sample)) if sample else 0
    return {
        "threads": live,
        "messages": messages,
        "preferences": n_prefs,
        "approx_bytes": approx,
    }
