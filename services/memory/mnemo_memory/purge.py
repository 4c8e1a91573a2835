"""Purge deleted bytes from the stores' files after an erasure or a deletion (ADR 0013).

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
    """Ask Redis (every node of a Cluster, one at a time) to rewrite its AOF and/or RDB;
    returns what was started. A node still busy with an earlier rewrite raises
    ResponseError, and the purge is retried later (that rewrite may predate the erasure)."""
    if hasattr(redis, "get_nodes"):  # RedisCluster: every node writes its own files
        if not redis.get_nodes():
            await redis.initialize()  # the client learns the nodes on first use
        targets: list[dict[str, Any]] = [{"target_nodes": n} for n in redis.get_nodes()]
    else:
        targets = [{}]
    started: list[str] = []
    busy: list[str] = []
    for node in targets:
        info = _one(await redis.info("persistence", **node))
        try:
            config = _one(await redis.config_get("*", **node))
            values = {k: str(v) for k, v in config.items() if not isinstance(v, dict)}
        except ResponseError:  # CONFIG disabled (managed Redis): its own schedule applies
            values = {}
        if values.get("stream-node-max-entries", "1") != "1":
            log.warning(
                "stream-node-max-entries is not 1: an erased job's bytes stay in the RDB/AOF "
                "until every job stored next to it is finished (docs/operations.md)"
            )
        if int(info.get("aof_enabled", 0)):
            try:
                await redis.bgrewriteaof(**node)
                started.append("aof")
            except ResponseError as exc:
                busy.append(f"aof: {exc}")
        if values.get("save", "").strip():
            await redis.bgsave(schedule=True, **node)
            started.append("rdb")
    if busy:
        raise ResponseError("; ".join(busy))
    return started


def _one(reply: Any) -> Any:
    """A Cluster client answers ``{node: reply}`` even for one target node: the reply."""
    if isinstance(reply, dict) and len(reply) == 1:
        inner = next(iter(reply.values()))
        if isinstance(inner, dict):
            return inner
    return reply


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
