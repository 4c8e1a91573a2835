"""Thread history in Redis: messages, metadata, running summary, indexes (``ThreadStore``).

A turn (user + assistant message) is appended by one Lua script (``thread_scripts``):
ownership, idempotency key, append, trim to ``MEMORY__MAX_THREAD_MESSAGES``, metadata,
per-user index, TTL refresh and — when thresholds are crossed — job enqueueing, all in
one atomic step and one round trip. Messages are JSON objects
``{"id", "role", "content", "created_at_ms"[, "metadata"]}`` in a list, oldest first.
"""

from __future__ import annotations

from typing import Any

from mnemo_memory.errors import ErasedError, NotFoundError

from . import outbox
from .jobs import Job, JobQueue, JobType
from .keys import KeyBuilder, checked_id
from .thread_models import (
    AppendResult,
    StoredMessage,
    ThreadMeta,
    message_ids_for,
    now_ms,
)
from .thread_scripts import (
    APPEND_TURN,
    DELETE_THREAD,
    HSET_IF_EXISTS,
    REDACT_MESSAGES,
    REPLACE_WITH_SUMMARY,
)

__all__ = [
    "AppendResult",
    "StoredMessage",
    "ThreadMeta",
    "ThreadStore",
    "message_ids_for",
    "now_ms",
]


class ThreadStore:
    """Threads of all users. ``inline_global`` = the deployment allows cross-slot scripts
    (standalone, Sentinel); on Cluster the commit script writes the global writes (jobs,
    activity) to the user's outbox and :mod:`.outbox` relays them."""

    def __init__(
        self,
        redis: Any,
        keys: KeyBuilder,
        policy: Any,
        jobs: JobQueue,
        *,
        inline_global: bool = True,
        max_idempotency_keys: int = 500,
        summary_job_stale_s: int = 900,
        title_chars: int = 80,
        replication: outbox.Replication = outbox.NO_WAIT,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.policy = policy
        self.jobs = jobs
        self.inline_global = inline_global
        self.max_idempotency_keys = max_idempotency_keys
        self.summary_job_stale_ms = summary_job_stale_s * 1000
        self.title_chars = title_chars
        self.replication = replication

    @property
    def thread_ttl_ms(self) -> int:
        return int(self.policy.thread_ttl_hours * 3_600_000)

    # --- existence (a thread id is a name within its user) ---
    async def exists(self, user_id: str, thread_id: str) -> bool:
        """True when ``user_id`` has a thread named ``thread_id``."""
        return bool(await self.redis.exists(self.keys.meta(user_id, thread_id)))

    # --- writes ---
    async def append_turn(
        self,
        user_id: str,
        thread_id: str,
        idempotency_key: str,
        user_message: str,
        assistant_message: str,
        metadata: dict[str, str] | None = None,
        *,
        now: int | None = None,
    ) -> AppendResult:
        """Store one exchange atomically (see module docstring). A replayed
        ``idempotency_key`` stores nothing and returns ``duplicate=True``."""
        k = self.keys
        checked_id(idempotency_key, "idempotency_key")
        now = now if now is not None else now_ms()
        ttl = self.thread_ttl_ms
        user_id_, asst_id = message_ids_for(thread_id, idempotency_key)
        user_msg = StoredMessage(user_id_, "user", user_message, now)
        asst_msg = StoredMessage(asst_id, "assistant", assistant_message, now, dict(metadata or {}))
        keys = [
            k.messages(user_id, thread_id),
            k.meta(user_id, thread_id),
            k.idempotency(user_id, thread_id),
            k.thread_index(user_id),
            k.summary(user_id, thread_id),
        ]
        keys += [k.activity_index(), k.jobs()] if self.inline_global else [k.outbox(user_id)]
        keys += [k.erasure(user_id), k.inflight(user_id)]
        # the jobs the script may enqueue; it writes in the count it computes
        extract_job = Job(
            JobType.EXTRACT_FACTS, user_id, thread_id, enqueued_at_ms=now, upto_message_id=asst_id
        ).lua_template("new_messages")
        summary_job = Job(
            JobType.SUMMARIZE_THREAD, user_id, thread_id, enqueued_at_ms=now
        ).lua_template("message_count")
        member = k.activity_member(user_id, thread_id)
        args = [
            now,
            user_id,
            thread_id,
            idempotency_key,
            user_msg.to_json(),
            asst_msg.to_json(),
            asst_id,
            self.policy.max_thread_messages,
            ttl,
            int(self.policy.idempotency_ttl_hours * 3_600_000),
            self.max_idempotency_keys,
            self.policy.extract_every_messages,
            self.policy.summary_threshold_messages,
            self.summary_job_stale_ms,
            "1" if self.inline_global else "0",
            " ".join(user_message.split())[: self.title_chars],
            extract_job,
            summary_job,
            member,
            k.inflight_member(thread_id, idempotency_key),
        ]
        status, count, created, extract, _new, summarize = await APPEND_TURN.run(
            self.redis, keys, args
        )
        if status in ("erasing", "erased"):
            raise ErasedError(
                "the user is being erased"
                if status == "erasing"
                else "the turn began before the user's erasure; it is not stored"
            )
        jobs: list[str] = []
        if extract:
            jobs.append(JobType.EXTRACT_FACTS)
        if summarize:
            jobs.append(JobType.SUMMARIZE_THREAD)
        if not self.inline_global:
            # Cluster: the turn and its jobs are in the user's slot; acknowledge once its
            # replica has them too, then relay the jobs to the stream — a relay that fails
            # (the stream's node failing over) is retried by the user's next call or the
            # periodic sweep (ADR 0012)
            # (a duplicate too: the first attempt may have died before its replica had it)
            await self.replication.wait(self.redis, keys[0])
            await outbox.relay_quietly(self.redis, k, user_id, self.replication)
        return AppendResult(
            thread_id=thread_id,
            message_ids=[user_id_, asst_id],
            duplicate=status == "duplicate",
            message_count=int(count),
            created=bool(created),
            enqueued_jobs=jobs,
        )

    async def replace_oldest_with_summary(
        self, user_id: str, thread_id: str, message_ids: list[str], summary: str
    ) -> bool:
        """Atomically drop the oldest messages — which must be exactly ``message_ids``, in
        order — and store ``summary`` as the thread's running summary. Returns False and
        changes nothing when the thread's oldest messages are not those ids (a concurrent
        turn, trim or another summary got there first) or the thread is gone."""
        k = self.keys
        if not message_ids:
            return False
        keys = [
            k.messages(user_id, thread_id),
            k.meta(user_id, thread_id),
            k.summary(user_id, thread_id),
        ]
        done = await REPLACE_WITH_SUMMARY.run(
            self.redis, keys, [now_ms(), self.thread_ttl_ms, summary, *message_ids]
        )
        return bool(done)

    async def clear_summary_pending(self, user_id: str, thread_id: str) -> None:
        """Allow a new summarize_thread job (the worker gave up on the pending one)."""
        meta = self.keys.meta(user_id, thread_id)
        await HSET_IF_EXISTS.run(self.redis, [meta], ["summary_job_ms", 0])

    async def delete_thread(self, user_id: str, thread_id: str) -> int:
        """Delete the thread and its index entries; returns messages deleted.
        NotFoundError when the user has no such thread."""
        k = self.keys
        keys = [
            k.messages(user_id, thread_id),
            k.meta(user_id, thread_id),
            k.idempotency(user_id, thread_id),
            k.summary(user_id, thread_id),
            k.thread_index(user_id),
        ]
        member = k.activity_member(user_id, thread_id)
        if self.inline_global:
            keys.append(k.activity_index())
        n = await DELETE_THREAD.run(
            self.redis, keys, [thread_id, "1" if self.inline_global else "0", member]
        )
        if int(n) < 0:
            raise NotFoundError(f"thread {thread_id} not found")
        if not self.inline_global:
            await self.redis.zrem(k.activity_index(), member)
        return int(n)

    # --- reads ---
    async def redact_messages(
        self, user_id: str, thread_id: str, message_ids: tuple[str, ...] | list[str]
    ) -> tuple[int, int]:
        """Remove the messages ``message_ids`` (and the summary when some were already
        folded into it); (messages, summaries) removed. Used when a memory derived from
        them is deleted or corrected, so no later episode or summary quotes it again."""
        if not message_ids:
            return 0, 0
        k = self.keys
        keys = [k.messages(user_id, thread_id), k.meta(user_id, thread_id)]
        keys.append(k.summary(user_id, thread_id))
        removed, dropped = await REDACT_MESSAGES.run(self.redis, keys, list(message_ids))
        return int(removed), int(dropped)

    async def read_messages(self, user_id: str, thread_id: str) -> list[StoredMessage]:
        """All held messages of the thread, oldest first (no ownership check)."""
        raw = await self.redis.lrange(self.keys.messages(user_id, thread_id), 0, -1)
        return [StoredMessage.from_json(r) for r in raw]

    async def get_summary(self, user_id: str, thread_id: str) -> str | None:
        """The running summary, or None when the thread has none."""
        summary: str | None = await self.redis.get(self.keys.summary(user_id, thread_id))
        return summary

    async def get_meta(self, user_id: str, thread_id: str) -> ThreadMeta | None:
        """Metadata of one thread, None when it does not exist (no ownership check)."""
        metas = await self.get_metas(user_id, [thread_id])
        return metas.get(thread_id)

    async def get_metas(self, user_id: str, thread_ids: list[str]) -> dict[str, ThreadMeta]:
        """Metadata of several threads of one user in one pipeline (missing ones left out)."""
        if not thread_ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for tid in thread_ids:
            pipe.hgetall(self.keys.meta(user_id, tid))
            pipe.pttl(self.keys.meta(user_id, tid))
            pipe.exists(self.keys.summary(user_id, tid))
        results = await pipe.execute()
        now = now_ms()
        metas = {}
        for i, tid in enumerate(thread_ids):
            h, pttl, has_summary = results[3 * i : 3 * i + 3]
            if h:
                metas[tid] = ThreadMeta.from_hash(
                    h, pttl_ms=int(pttl), has_summary=bool(has_summary), now=now
                )
        return metas

    async def get_thread(
        self, user_id: str, thread_id: str, limit: int = 0
    ) -> tuple[ThreadMeta, list[StoredMessage], str]:
        """(metadata, messages oldest first — the newest ``limit`` when > 0 —, summary).
        NotFoundError when the user has no such thread."""
        start = -limit if limit > 0 else 0
        k = self.keys
        pipe = self.redis.pipeline(transaction=self.inline_global)
        pipe.hgetall(k.meta(user_id, thread_id))
        pipe.pttl(k.meta(user_id, thread_id))
        pipe.lrange(k.messages(user_id, thread_id), start, -1)
        pipe.get(k.summary(user_id, thread_id))
        h, pttl, raw, summary = await pipe.execute()
        if not h:
            raise NotFoundError(f"thread {thread_id} not found")
        meta = ThreadMeta.from_hash(h, pttl_ms=int(pttl), has_summary=bool(summary), now=now_ms())
        return meta, [StoredMessage.from_json(r) for r in raw], summary or ""

    async def list_threads(
        self, user_id: str, page_size: int = 50, page_token: str = ""
    ) -> tuple[list[ThreadMeta], str]:
        """Threads most recently active first; pagination by (score, ties skipped) cursor.
        Index entries whose thread expired are removed on the way."""
        from .paging import decode_cursor, encode_cursor

        index = self.keys.thread_index(user_id)
        page_size = max(1, min(page_size or 50, 500))
        max_score, skip = decode_cursor(page_token)
        await self.redis.zremrangebyscore(index, "-inf", now_ms() - self.thread_ttl_ms)
        rows = await self.redis.zrevrangebyscore(
            index, max_score, "-inf", start=skip, num=page_size + 1, withscores=True
        )
        page, more = rows[:page_size], len(rows) > page_size
        metas = await self.get_metas(user_id, [tid for tid, _ in page])
        stale = [tid for tid, _ in page if tid not in metas]
        if stale:
            await self.redis.zrem(index, *stale)
        token = encode_cursor(page, max_score, skip) if more else ""
        return [metas[tid] for tid, _ in page if tid in metas], token

    async def thread_ids(self, user_id: str) -> list[str]:
        """Every thread id in the user's index (erasure, export)."""
        ids: list[str] = await self.redis.zrevrange(self.keys.thread_index(user_id), 0, -1)
        return ids

    # --- episode scheduling (the worker) ---
    async def idle_threads(self, older_than_ms: int, limit: int = 100) -> list[tuple[str, str]]:
        """(user_id, thread_id) of threads whose last activity is before ``older_than_ms``
        (Unix epoch ms — pass ``now - idle period``) and that have no episode since.
        Entries whose thread expired or was deleted are pruned and not returned."""
        index = self.keys.activity_index()
        members = await self.redis.zrangebyscore(
            index, "-inf", f"({older_than_ms}", start=0, num=limit
        )
        if not members:
            return []
        pairs = [self.keys.split_activity_member(m) for m in members]
        pipe = self.redis.pipeline(transaction=False)
        for uid, tid in pairs:
            pipe.exists(self.keys.meta(uid, tid))
        exists = await pipe.execute()
        gone = [m for m, e in zip(members, exists, strict=True) if not e]
        if gone:
            await self.redis.zrem(index, *gone)
        return [p for p, e in zip(pairs, exists, strict=True) if e]

    async def mark_episode_done(self, user_id: str, thread_id: str) -> None:
        """The thread's episode is written: drop it from the activity index until new
        messages arrive (append_turn adds it back)."""
        await self.redis.zrem(
            self.keys.activity_index(), self.keys.activity_member(user_id, thread_id)
        )
        meta = self.keys.meta(user_id, thread_id)
        await HSET_IF_EXISTS.run(self.redis, [meta], ["episode_done_ms", now_ms()])

    async def close_thread(self, user_id: str, thread_id: str) -> str:
        """Mark the thread closed and enqueue its create_episode job; returns the job id."""
        meta = self.keys.meta(user_id, thread_id)
        if not await HSET_IF_EXISTS.run(self.redis, [meta], ["closed", 1]):
            raise NotFoundError(f"thread {thread_id} not found")
        # the idle scan must not schedule a second episode for the same activity
        await self.redis.zrem(
            self.keys.activity_index(), self.keys.activity_member(user_id, thread_id)
        )
        return await self.jobs.enqueue(JobType.CREATE_EPISODE, user_id, thread_id, reason="closed")
