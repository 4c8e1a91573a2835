"""GDPR erasure and export of one user's short-term data.

Erasure walks the user's thread index (``P:u:{uid}:threads``) and the activity index —
never ``KEYS`` — and deletes each thread's keys, preferences, rate-limit counts,
idempotency keys, the Cluster outbox and every job naming the user (XRANGE scan of the job
stream and the dead-letter stream, which the worker keeps short by XDELing finished jobs).
Then, unless ``SHORTTERM__ERASURE_SCAN_FALLBACK=false``, one ``SCAN`` over the prefix (on
Cluster: of every primary) removes anything the indexes missed (keys of the user's hash
tag, and thread-owner keys of the layout before ADR 0012 that name the user): an
O(keyspace) safety net, counted as ``other_keys`` in the receipt.

Every multi-key command touches one hash slot (the user's), and keys of other slots are
read and deleted one command each, so the same code is correct on Redis Cluster.

Before deleting anything it writes the erasure marker (``JobQueue.mark_erased``): a job
the worker already holds for the user (read from the stream, mid LLM call) is then
dropped, and anything it wrote after the erasure began is deleted again.

Not a transaction by itself: :mod:`mnemo_memory.erasure_jobs` runs it behind the user's
tombstone, which makes CommitTurn refuse the user's turns meanwhile (and turns that were
in flight when it began).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

from . import outbox
from .keys import checked_id
from .shortterm import ShortTermStores
from .threads import StoredMessage, ThreadMeta

_BATCH = 100


async def _user_thread_ids(stores: ShortTermStores, user_id: str) -> list[str]:
    """Threads of the index plus any the activity index knows for the user."""
    ids = list(await stores.threads.thread_ids(user_id))
    seen = set(ids)
    async for member in stores.redis.zscan_iter(
        stores.keys.activity_index(), match=f"{user_id}:*", count=500
    ):
        name = member[0] if isinstance(member, tuple | list) else member
        _, tid = stores.keys.split_activity_member(name)
        if tid and tid not in seen:
            seen.add(tid)
            ids.append(tid)
    return ids


async def forget_user(
    stores: ShortTermStores,
    user_id: str,
    *,
    scan_fallback: bool = True,
    marker_ttl_s: int = 24 * 3600,
) -> dict[str, int]:
    """Delete every short-term key of ``user_id``; counts by kind for the receipt."""
    checked_id(user_id, "user_id")
    k, redis = stores.keys, stores.redis
    await stores.jobs.mark_erased(user_id, marker_ttl_s)
    counts: dict[str, int] = defaultdict(int)
    thread_ids = await _user_thread_ids(stores, user_id)
    for i in range(0, len(thread_ids), _BATCH):
        batch = thread_ids[i : i + _BATCH]
        pipe = redis.pipeline(transaction=False)
        for tid in batch:
            pipe.exists(k.meta(user_id, tid))
            pipe.llen(k.messages(user_id, tid))
            pipe.exists(k.summary(user_id, tid))
            pipe.zcard(k.idempotency(user_id, tid))
        found = await pipe.execute()
        pipe = redis.pipeline(transaction=False)
        for j, tid in enumerate(batch):
            meta, n_msgs, summary, n_idem = found[4 * j : 4 * j + 4]
            counts["threads"] += int(bool(meta or n_msgs))
            counts["messages"] += int(n_msgs)
            counts["summaries"] += int(summary)
            counts["idempotency_keys"] += int(n_idem)
            pipe.delete(*k.thread_keys(user_id, tid))
            pipe.zrem(k.activity_index(), k.activity_member(user_id, tid))
        await pipe.execute()
    counts["jobs"] += len(await outbox.pending(redis, k, user_id))
    pipe = redis.pipeline(transaction=False)
    pipe.hlen(k.preferences(user_id))
    pipe.exists(k.rate_limit(user_id))
    pipe.delete(*k.user_keys(user_id))
    n_prefs, n_rl, _ = await pipe.execute()
    counts["preferences"] += int(n_prefs)
    counts["rate_limit_keys"] += int(n_rl)
    counts["jobs"] += await stores.jobs.delete_for_user(user_id)
    if scan_fallback:
        counts["other_keys"] += await _scan_leftovers(stores, user_id)
    # Cluster: the receipt only once the replicas of the user's node and the stream's node
    # have the deletes too (a fail-over would otherwise bring the data back)
    await stores.threads.replication.wait(redis, k.thread_index(user_id))
    await stores.threads.replication.wait(redis, k.jobs())
    return dict(counts)


async def _scan_leftovers(stores: ShortTermStores, user_id: str) -> int:
    """The SCAN safety net: keys of the user's hash tag, and legacy owner keys naming the
    user (``P:t:TID:owner``, written before ADR 0012; they expire with their thread)."""
    k, redis = stores.keys, stores.redis
    user_prefix = k.user_base(user_id) + ":"
    owner_prefix, owner_suffix = f"{k.prefix}:t:", ":owner"
    deleted = 0
    owners: list[str] = []
    async for key in redis.scan_iter(match=f"{k.prefix}:*", count=1000):
        if key.startswith(user_prefix):
            deleted += int(await redis.delete(key))
        elif key.startswith(owner_prefix) and key.endswith(owner_suffix):
            owners.append(key)
    for i in range(0, len(owners), _BATCH):
        batch = owners[i : i + _BATCH]
        # one GET per key: owner keys hash to different slots (no MGET on Cluster)
        pipe = redis.pipeline(transaction=False)
        for key in batch:
            pipe.get(key)
        values = await pipe.execute()
        for key, value in zip(batch, values, strict=True):
            if value == user_id:
                deleted += int(await redis.delete(key))
    return deleted


def message_doc(m: StoredMessage) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": m.id,
        "role": m.role,
        "content": m.content,
        "created_at_ms": m.created_at_ms,
    }
    if m.metadata:
        doc["metadata"] = m.metadata
    return doc


def thread_doc(meta: ThreadMeta, messages: list[StoredMessage], summary: str) -> dict[str, Any]:
    return {
        "thread_id": meta.thread_id,
        "user_id": meta.user_id,
        "created_at_ms": meta.created_at_ms,
        "updated_at_ms": meta.updated_at_ms,
        "expires_at_ms": meta.expires_at_ms,
        "title": meta.title,
        "closed": meta.closed,
        "summary": summary,
        "messages": [message_doc(m) for m in messages],
    }


async def export_user(
    stores: ShortTermStores, user_id: str
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """(section, document) pairs: ``user``, one ``thread`` per thread, ``preferences``,
    ``jobs`` (background work and dead letters naming the user) — the threads erasure
    would delete, found the same way."""
    checked_id(user_id, "user_id")
    live = []
    for tid in await _user_thread_ids(stores, user_id):
        meta = await stores.threads.get_meta(user_id, tid)
        if meta is not None:  # expired ones linger in the indexes until pruned
            live.append((tid, meta))
    yield (
        "user",
        {
            "user_id": user_id,
            "exported_at_ms": int(time.time() * 1000),
            "format": "mnemo-export/1",
            "threads": len(live),
        },
    )
    for tid, meta in live:
        messages = await stores.threads.read_messages(user_id, tid)
        summary = await stores.threads.get_summary(user_id, tid) or ""
        yield "thread", thread_doc(meta, messages, summary)
    yield "preferences", {"user_id": user_id, "values": await stores.preferences.get_all(user_id)}
    jobs = await stores.jobs.pending_for_user(user_id)
    dead = stores.jobs.dead_stream
    # Cluster: jobs committed but not yet relayed to the stream are pending jobs too
    waiting = await outbox.pending(stores.redis, stores.keys, user_id)
    yield (
        "jobs",
        {
            "pending": [_job_doc(j) for j in jobs if j["stream"] != dead] + waiting,
            "dead_letters": [_job_doc(j) for j in jobs if j["stream"] == dead],
        },
    )


def _job_doc(job: dict[str, str]) -> dict[str, str]:
    """A job as exported: its fields, without the stream bookkeeping."""
    return {k: v for k, v in job.items() if k not in ("stream", "entry_id")}
