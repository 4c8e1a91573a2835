"""Purge deleted bytes from the stores' files after an erasure or a deletion (ADR 0010).

Deleting a key or a record removes it from what the stores *answer*, not from their files:
Redis keeps every write in the AOF (and the last RDB snapshot) until it is rewritten;
Chroma keeps every write in its SQLite write-ahead log (``embeddings_queue``), in its
full-text index segments and in freed SQLite pages. :class:`Purger` rewrites them:

* Redis: ``BGREWRITEAOF`` when the AOF is on, ``BGSAVE`` when RDB snapshots are on (on
  every node of a Cluster); the rewritten files hold only live data.
* Chroma (embedded): :meth:`ChromaVectorStore.purge` drops log rows no segment needs any
  more, merges the full-text index and ``VACUUM``s the database file.

Purges are coalesced: a request is served at once when none ran in the last
``SHORTTERM__ERASURE_PURGE_S`` seconds, else when that interval has passed, so a burst of
erasures costs one rewrite. The window in ``docs/operations.md`` is that interval plus the
rewrite's own duration.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from mnemo_common import metrics
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

PURGES = metrics.counter(
    "mnemo_memory_purges_total", "File purges after erasures and deletions", ("store", "outcome")
)


async def rewrite_redis_files(redis: Any) -> list[str]:
    """Ask Redis to rewrite its AOF and/or RDB; returns what was started (or scheduled)."""
    started = []
    nodes: dict[str, Any] = {}
    if hasattr(redis, "get_nodes"):  # RedisCluster: every node writes its own files
        nodes = {"target_nodes": redis.ALL_NODES}
    info = await redis.info("persistence", **nodes)
    infos = list(info.values()) if nodes else [info]
    aof = any(int(i.get("aof_enabled", 0)) for i in infos if isinstance(i, dict))
    rdb = False
    try:
        rdb = any(str(v).strip() for v in _flat_values(await redis.config_get("save", **nodes)))
    except ResponseError:  # CONFIG disabled (managed Redis): the provider's schedule applies
        rdb = False
    try:
        nodes_cfg = await redis.config_get("stream-node-max-entries", **nodes)
        if any(str(v) not in ("1", "") for v in _flat_values(nodes_cfg)):
            log.warning(
                "stream-node-max-entries is not 1: an erased job's bytes stay in the RDB/AOF "
                "until every job stored next to it is finished (docs/operations.md)"
            )
    except ResponseError:
        pass
    if aof:
        try:
            await redis.execute_command("BGREWRITEAOF", **nodes)
            started.append("aof")
        except ResponseError as exc:  # one already running covers writes up to its start
            log.info("AOF rewrite not started: %s", exc)
            raise
    if rdb:
        await redis.execute_command("BGSAVE", "SCHEDULE", **nodes)
        started.append("rdb")
    return started


def _flat_values(reply: Any) -> list[Any]:
    """CONFIG GET's values, from one node ({name: value}) or many ({node: {name: value}})."""
    if not isinstance(reply, dict):
        return []
    out: list[Any] = []
    for v in reply.values():
        out.extend(v.values() if isinstance(v, dict) else [v])
    return out


class Purger:
    """Coalesces purge requests and runs them in the background (``run`` is the task)."""

    def __init__(self, redis: Any, vector_store: Any = None, *, interval_s: float = 30.0) -> None:
        self.redis = redis
        self.vector_store = vector_store
        self.interval_s = interval_s
        self._wanted = asyncio.Event()
        self._last = 0.0
        self.runs = 0

    def request(self) -> None:
        self._wanted.set()

    async def purge_once(self) -> bool:
        """One purge of every store; True when all of it ran (else it is retried)."""
        ok = True
        try:
            started = await rewrite_redis_files(self.redis)
            PURGES.labels("redis", "ok").inc()
            log.info("redis files rewritten after erasure", extra={"started": started})
        except Exception as exc:
            PURGES.labels("redis", "retry").inc()
            log.warning("redis purge failed (retried): %s", exc)
            ok = False
        purge = getattr(self.vector_store, "purge", None)
        if purge is not None:
            try:
                done = await purge()
                PURGES.labels("vector_store", "ok").inc()
                log.info("vector store files purged", extra={"purged": done})
            except Exception as exc:
                PURGES.labels("vector_store", "retry").inc()
                log.warning("vector store purge failed (retried): %s", exc)
                ok = False
        self.runs += 1
        return ok

    async def run(self) -> None:
        while True:
            await self._wanted.wait()
            wait = self._last + self.interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._wanted.clear()
            self._last = time.monotonic()
            if not await self.purge_once():
                self._wanted.set()  # try again after the interval
