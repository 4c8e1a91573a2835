"""ForgetUser as a durable, resumable job with a tombstone (``docs/adr/0010``).

1. **Tombstone first**: the user's erasure hash (``KeyBuilder.erasure``, in the user's
   Cluster slot, naming no one) gets ``state=running`` and ``started_at_ms`` (Redis time);
   the user id goes into ``P:erasures:pending``. While it is running, CommitTurn (inside
   its Lua script) and SetPreference refuse the user's writes, AddMemory too; once done,
   CommitTurn still refuses a turn PrepareTurn saw before ``started_at_ms`` (the turn in
   flight during the erasure), for ``SHORTTERM__ERASURE_MARKER_HOURS``.
2. Every store is erased: Redis (:func:`stores.erasure.forget_user`) and the vector store.
   A store that is down is *pending*: the receipt says so (``pending: ["vector_store"]``),
   the tombstone stays, and :meth:`ErasureJobs.resume_loop` finishes the job when the
   store is back. Counts accumulate in the job, so a retry's receipt is the whole job's.
3. Done: ``state=done`` (expires after the marker hours), out of the pending set, and the
   stores' files are purged of the deleted bytes (:mod:`mnemo_memory.purge`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mnemo_common import metrics

from mnemo_memory.errors import ErasedError, UnavailableError
from mnemo_memory.stores import erasure
from mnemo_memory.stores.keys import checked_id
from mnemo_memory.stores.lua import LuaScript

if TYPE_CHECKING:
    from mnemo_memory.config import MemoryServiceSettings
    from mnemo_memory.longterm import LongTermAPI
    from mnemo_memory.purge import Purger
    from mnemo_memory.stores.shortterm import ShortTermStores

log = logging.getLogger(__name__)

ERASURES = metrics.counter(
    "mnemo_memory_erasures_total", "ForgetUser jobs by outcome", ("outcome",)
)

# KEYS: 1 the user's erasure hash. ARGV: 1 now ms.
# A job still running, or finished by the resumer and not yet reported complete to a
# caller, is continued (its counts kept); otherwise a new job starts. Returns
# {first_started_at_ms, counts json, pending json (stores left by the last attempt)}.
BEGIN = LuaScript(
    "erasure_begin",
    r"""
local state = redis.call('HGET', KEYS[1], 'state')
local reported = redis.call('HGET', KEYS[1], 'reported')
if not (state == 'running' or (state == 'done' and reported == '0')) then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'first_started_at_ms', ARGV[1], 'counts', '{}')
end
redis.call('HSET', KEYS[1], 'state', 'running', 'started_at_ms', ARGV[1], 'reported', '0')
redis.call('PERSIST', KEYS[1])
return redis.call('HMGET', KEYS[1], 'first_started_at_ms', 'counts', 'pending')
""",
)


@dataclass
class Receipt:
    user_id: str
    erased_at_ms: int
    counts: dict[str, int]
    pending: list[str] = field(default_factory=list)


async def redis_now_ms(redis: Any) -> int:
    sec, usec = await redis.time()
    return int(sec) * 1000 + int(usec) // 1000


class ErasureJobs:
    """Runs and resumes erasure jobs; ``purger`` (optional) cleans the stores' files."""

    def __init__(
        self,
        settings: MemoryServiceSettings,
        stores: ShortTermStores,
        longterm: LongTermAPI | None,
        purger: Purger | None = None,
    ) -> None:
        self.settings = settings
        self.stores = stores
        self.longterm = longterm
        self.purger = purger

    @property
    def _marker_ttl_s(self) -> int:
        return int(self.settings.shortterm.erasure_marker_hours * 3600)

    def request_purge(self) -> None:
        """Rewrite the stores' files soon (after a deletion or correction)."""
        if self.purger is not None:
            self.purger.request()

    async def is_erasing(self, user_id: str) -> bool:
        state = await self.stores.redis.hget(self.stores.keys.erasure(user_id), "state")
        return bool(state == "running")

    async def refuse_if_erasing(self, user_id: str) -> None:
        if await self.is_erasing(user_id):
            raise ErasedError("the user is being erased; try again when the erasure is done")

    async def run(self, user_id: str, *, caller: bool = True) -> Receipt:
        """Erase ``user_id`` everywhere; the receipt lists the stores still pending."""
        uid = checked_id(user_id, "user_id")
        k, redis = self.stores.keys, self.stores.redis
        marker = k.erasure(uid)
        now = await redis_now_ms(redis)
        # listed first: a crash after it leaves a job the resumer finishes, never a stuck
        # tombstone
        await redis.zadd(k.pending_erasures(), {uid: now}, nx=True)
        first, raw_counts, raw_pending = await BEGIN.run(redis, [marker], [now])
        counts: dict[str, int] = json.loads(raw_counts or "{}")
        left = json.loads(raw_pending or "[]")
        found: dict[str, int] = {}
        if caller or not left or "redis" in left:
            # a resumed job whose Redis part is done (the tombstone kept it so) skips it
            found = await erasure.forget_user(
                self.stores,
                uid,
                scan_fallback=self.settings.shortterm.erasure_scan_fallback,
                marker_ttl_s=self._marker_ttl_s,
            )
        pending: list[str] = []
        if self.longterm is not None:
            try:
                for kind, n in (await self.longterm.forget_user(uid)).items():
                    found[kind] = found.get(kind, 0) + int(n)
            except UnavailableError as exc:
                log.warning("erasure pending: %s", exc, extra={"component": exc.component})
                pending.append(exc.component)
        for kind, n in found.items():
            counts[kind] = counts.get(kind, 0) + int(n)
        fields: dict[str, Any] = {"counts": json.dumps(counts), "pending": json.dumps(pending)}
        if pending:
            await redis.hset(marker, mapping=fields)
            ERASURES.labels("pending").inc()
            return Receipt(uid, int(first), counts, pending)
        fields.update(state="done", reported="1" if caller else "0")
        await redis.hset(marker, mapping=fields)
        await redis.expire(marker, self._marker_ttl_s)
        await redis.zrem(k.pending_erasures(), uid)
        ERASURES.labels("done" if caller else "resumed").inc()
        if self.purger is not None:
            self.purger.request()
        return Receipt(uid, int(first), counts, [])

    async def resume_pending(self) -> int:
        """One pass over unfinished jobs; returns how many completed."""
        done = 0
        for uid in await self.stores.redis.zrange(self.stores.keys.pending_erasures(), 0, 99):
            try:
                receipt = await self.run(uid, caller=False)
            except UnavailableError as exc:
                log.info("erasure still pending: %s", exc)
                continue
            if not receipt.pending:
                done += 1
                log.info("pending erasure completed", extra={"counts": receipt.counts})
        return done

    async def resume_loop(self, interval_s: float) -> None:
        """Finish pending erasures as soon as their stores are back (every ``interval_s``)."""
        while True:
            try:
                await self.resume_pending()
            except Exception as exc:  # Redis down: the next pass tries again
                log.warning("erasure resume pass failed: %s", exc)
            await asyncio.sleep(interval_s)
