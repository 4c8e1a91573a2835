"""Redis Cluster: the per-user outbox that makes a turn and its jobs one atomic write.

On Cluster the job stream (``P:jobs``) and the activity index live in other hash slots
than the user's keys, so no script can write a turn and enqueue its jobs together. The
commit script (``thread_scripts.APPEND_TURN``) therefore writes the global writes into the
user's outbox ``P:u:{uid}:outbox`` — a sorted set in the user's slot, member = a JSON
record (``["job", [field, value, ...]]`` or ``["activity", member, ms]``), score = when it
is due — in the same atomic step as the turn. :func:`relay` then moves them to the global
keys:

1. claim (one script in the user's slot): every due member gets its score pushed
   ``LEASE_MS`` into the future, so concurrent relays do not both send it;
2. XADD each job / ZADD GT the activity, in the member's own command;
3. ZREM the members that were sent (a member that failed stays, due again after its lease).

Relays run right after every CommitTurn (also a duplicate one: a retried commit delivers
what the first attempt could not), on every PrepareTurn of a user whose outbox is not
empty, and in a periodic sweep of all outboxes (``SHORTTERM__OUTBOX_SWEEP_S``), so a job
is delivered even when the user never comes back. Delivery is at least once: a relay that
dies between XADD and ZREM sends that job again after the lease; the worker's handlers
are idempotent for a repeated job (facts upsert by id, summary replacement is
compare-and-delete, episodes are keyed by their last message). ADR 0012.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from mnemo_common import metrics

from .keys import KeyBuilder
from .lua import LuaScript

log = logging.getLogger(__name__)

#: a claimed member is due again after this long (a relay that died mid-way)
LEASE_MS = 10_000
#: members claimed per relay call
BATCH = 100

RELAYED = metrics.counter(
    "mnemo_memory_outbox_relayed_total",
    "Cluster outbox records moved to the job stream / activity index",
    ("kind",),
)
RELAY_FAILURES = metrics.counter(
    "mnemo_memory_outbox_relay_failures_total",
    "Cluster outbox relays that failed (retried by the next call or the sweep)",
)

WAIT_TIMEOUTS = metrics.counter(
    "mnemo_memory_replication_wait_timeouts_total",
    "Cluster writes acknowledged before REDIS__CLUSTER_WAIT_REPLICAS replicas had them "
    "(WAIT timed out, or skipped for a node whose last WAIT timed out)",
)


@dataclass
class Replication:
    """``WAIT`` for ``replicas`` replicas of the node serving a key after a write (Redis
    replication is asynchronous: a master killed right after acknowledging a write is
    replaced by a replica without it). ``replicas=0`` waits for nothing.

    A node whose WAIT timed out has no (or no healthy) replica — after a fail-over the
    promoted replica has none until the old master returns —; it is not waited for again
    for ``SKIP_S`` seconds, so its writes cost one timeout per period, not one each."""

    replicas: int = 0
    timeout_ms: int = 500
    _skip_until: dict[str, float] = field(default_factory=dict, repr=False, compare=False)

    SKIP_S = 5.0

    async def wait(self, redis: Any, key: str) -> None:
        if self.replicas <= 0:
            return
        node = redis.get_node_from_key(key)
        if self._skip_until.get(node.name, 0.0) > time.monotonic():
            WAIT_TIMEOUTS.inc()
            return
        acked = await redis.execute_command(
            "WAIT", self.replicas, self.timeout_ms, target_nodes=node
        )
        if int(acked) < self.replicas:
            WAIT_TIMEOUTS.inc()
            self._skip_until[node.name] = time.monotonic() + self.SKIP_S
            log.warning(
                "write acknowledged before its replicas had it",
                extra={"replicas": int(acked), "wanted": self.replicas, "node": node.name},
            )


NO_WAIT = Replication()

# KEYS: 1 outbox. ARGV: 1 now ms, 2 lease ms, 3 max members.
# Returns the due members, now leased until now + lease.
CLAIM = LuaScript(
    "outbox_claim",
    r"""
local now = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), m) end
return due
""",
)


def _now_ms() -> int:
    return int(time.time() * 1000)


def decode(member: str) -> tuple[str, Any]:
    """(kind, payload) of an outbox member: ("job", {fields}) or ("activity", (member, ms))."""
    record = json.loads(member)
    if record[0] == "job":
        flat = record[1]
        return "job", {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat) - 1, 2)}
    return "activity", (str(record[1]), int(record[2]))


async def pending(redis: Any, keys: KeyBuilder, user_id: str) -> list[dict[str, str]]:
    """The jobs waiting in the user's outbox (export shows them as pending jobs)."""
    jobs = []
    for member in await redis.zrange(keys.outbox(user_id), 0, -1):
        kind, payload = decode(member)
        if kind == "job":
            jobs.append(payload)
    return jobs


async def relay(
    redis: Any,
    keys: KeyBuilder,
    user_id: str,
    replication: Replication = NO_WAIT,
    *,
    now: int | None = None,
) -> int:
    """Move the user's due outbox records to the job stream / activity index; returns how
    many were sent. Errors of single records leave them for a later relay; a failing
    claim raises. A record leaves the outbox only once its write has reached the
    replicas ``replication`` asks for."""
    box = keys.outbox(user_id)
    sent = 0
    while True:
        members = await CLAIM.run(redis, [box], [now or _now_ms(), LEASE_MS, BATCH])
        if not members:
            return sent
        done: list[str] = []
        for member in members:
            try:
                kind, payload = decode(member)
                if kind == "job":
                    await redis.xadd(keys.jobs(), payload)
                else:
                    await redis.zadd(keys.activity_index(), {payload[0]: payload[1]}, gt=True)
            except (ValueError, IndexError, TypeError):
                log.error("dropping an unreadable outbox record", extra={"record": member[:200]})
                done.append(member)
                continue
            except Exception as exc:  # the stream's node is down: the lease brings it back
                RELAY_FAILURES.inc()
                log.warning("outbox relay failed; retried later", extra={"error": repr(exc)})
                await _settle(redis, keys, box, done, replication)
                return sent
            RELAYED.labels(kind).inc()
            done.append(member)
            sent += 1
        await _settle(redis, keys, box, done, replication)
        if len(members) < BATCH:
            return sent


async def _settle(
    redis: Any, keys: KeyBuilder, box: str, done: list[str], replication: Replication
) -> None:
    """Drop the sent records from the outbox once the stream's replicas have them."""
    if not done:
        return
    await replication.wait(redis, keys.jobs())
    await redis.zrem(box, *done)


async def relay_quietly(
    redis: Any, keys: KeyBuilder, user_id: str, replication: Replication = NO_WAIT
) -> int:
    """:func:`relay` that logs instead of raising (the commit it follows is already stored)."""
    try:
        return await relay(redis, keys, user_id, replication)
    except Exception as exc:
        RELAY_FAILURES.inc()
        log.warning("outbox relay failed; retried later", extra={"error": repr(exc)})
        return 0


async def sweep(redis: Any, keys: KeyBuilder, replication: Replication = NO_WAIT) -> int:
    """Relay every user's outbox (SCAN over all primaries); returns records sent."""
    sent = 0
    async for key in redis.scan_iter(match=keys.outbox_pattern(), count=1000):
        user_id = keys.user_of_key(key)
        if user_id:
            sent += await relay_quietly(redis, keys, user_id, replication)
    return sent


async def sweep_loop(
    redis: Any, keys: KeyBuilder, interval_s: float, replication: Replication = NO_WAIT
) -> None:
    """The memory service's periodic sweep (started on Cluster only)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep(redis, keys, replication)
        except Exception as exc:  # the next round retries
            log.warning("outbox sweep failed", extra={"error": repr(exc)})
