"""The background job queue: a Redis Stream read by the worker's consumer group.

Stream ``{prefix}:jobs``, consumer group ``workers`` (created idempotently with MKSTREAM),
dead letters in ``{prefix}:jobs:dead``. Neither stream ever has a TTL and neither is
trimmed by MAXLEN: an unprocessed job must never be evicted or dropped. The worker XACKs
and then XDELs each finished entry, so the stream's length is the backlog and the
erasure scan below (XRANGE over the whole stream) stays cheap.

Message fields (all strings)::

    job_id           unique id of the job (not the stream entry id)
    type             extract_facts | summarize_thread | create_episode
    user_id          owner of the thread
    thread_id        the thread
    enqueued_at_ms   Unix epoch ms

    extract_facts:    new_messages     messages added since the previous extraction
                      upto_message_id  id of the newest message to extract from; the
                                       job covers the `new_messages` messages ending there
    summarize_thread: message_count    messages held when the job was enqueued; the worker
                                       summarises all but the newest MEMORY__SUMMARY_KEEP_RECENT
                                       and calls ThreadStore.replace_oldest_with_summary
    create_episode:   reason           "closed" (CloseThread) or "idle" (worker's idle scan)

:class:`Job` is the one definition of these fields: its ``fields()`` writes them, its
``from_fields()`` reads them (the worker's handlers take a ``Job``), and ``lua_template()``
hands them to the Lua of ``ThreadStore.append_turn``, which fills in the one count it
computes. Jobs are enqueued by ``append_turn`` (inside its Lua script when the deployment
allows cross-slot scripts, otherwise through the user's outbox), by CloseThread and by the
worker's idle scan (:meth:`JobQueue.enqueue`). :class:`JobHeader` is what the worker
reads of any entry, even one too malformed to be a :class:`Job` (logs, metrics, the
erasure check). Dead-letter entries carry the original fields plus ``error``,
``attempts``, ``failed_at_ms`` and ``original_entry_id`` (:func:`dead_letter_fields`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from mnemo_common.ids import new_id
from redis.exceptions import ResponseError

from .keys import KeyBuilder, checked_id

GROUP = "workers"
_SCAN_BATCH = 1000


class JobType(StrEnum):
    EXTRACT_FACTS = "extract_facts"
    SUMMARIZE_THREAD = "summarize_thread"
    CREATE_EPISODE = "create_episode"


JOB_TYPES = tuple(t.value for t in JobType)

#: the fields of each type beyond the common ones (written only for that type)
_EXTRA: dict[JobType, tuple[str, ...]] = {
    JobType.EXTRACT_FACTS: ("upto_message_id", "new_messages"),
    JobType.SUMMARIZE_THREAD: ("message_count",),
    JobType.CREATE_EPISODE: ("reason",),
}
_INT_FIELDS = frozenset({"enqueued_at_ms", "new_messages", "message_count"})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _new_job_id() -> str:
    return new_id("job-")


@dataclass(frozen=True)
class Job:
    """One background job: what the stream entry holds (see the module docstring)."""

    type: JobType
    user_id: str
    thread_id: str
    job_id: str = field(default_factory=_new_job_id)
    enqueued_at_ms: int = field(default_factory=_now_ms)
    new_messages: int = 0  # extract_facts
    upto_message_id: str = ""  # extract_facts
    message_count: int = 0  # summarize_thread
    reason: str = ""  # create_episode: "closed" | "idle"

    def fields(self) -> dict[str, str]:
        """The stream entry's fields (all strings): the common ones and the type's own."""
        names = ("job_id", "type", "user_id", "thread_id", "enqueued_at_ms", *_EXTRA[self.type])
        return {n: str(getattr(self, n)) for n in names}

    def lua_template(self, counted: str) -> str:
        """The fields as a JSON array ``[name, value, ...]`` whose last value is the count
        ``counted`` that the Lua script computes and writes in (``job[#job] = n``)."""
        flat: list[str] = []
        for name, value in self.fields().items():
            if name != counted:
                flat += [name, value]
        return json.dumps([*flat, counted, ""])

    @classmethod
    def from_fields(cls, raw: Mapping[str, str]) -> Job:
        """Read a stream entry (extra fields, e.g. a dead letter's ``error``, are ignored);
        ValueError for an unknown type or a malformed number."""
        names = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {k: v for k, v in raw.items() if k in names}
        values["type"] = JobType(values.get("type", ""))
        for name in _INT_FIELDS & values.keys():
            values[name] = int(values[name] or 0)
        return cls(**values)


@dataclass(frozen=True)
class JobHeader:
    """The common fields of a stream entry, read leniently: a malformed entry still has a
    header (missing values empty, ``type`` ``unknown``), so it can be logged, counted and
    dead-lettered."""

    job_id: str
    type: str
    user_id: str
    thread_id: str
    enqueued_at_ms: int

    @classmethod
    def of(cls, raw: Mapping[str, str]) -> JobHeader:
        try:
            enqueued = int(raw.get("enqueued_at_ms") or 0)
        except ValueError:
            enqueued = 0
        return cls(
            job_id=raw.get("job_id", ""),
            type=raw.get("type") or "unknown",
            user_id=raw.get("user_id", ""),
            thread_id=raw.get("thread_id", ""),
            enqueued_at_ms=enqueued,
        )

    def log(self, **extra: Any) -> dict[str, Any]:
        """Structured-log fields naming this job."""
        return {"job_id": self.job_id, "type": self.type, **extra}


def dead_letter_fields(
    raw: Mapping[str, str], entry_id: str, error: str, attempts: int
) -> dict[str, str]:
    """A dead letter: the entry's own fields plus why and when it failed."""
    return {
        **raw,
        "error": error[:2000],
        "attempts": str(attempts),
        "failed_at_ms": str(_now_ms()),
        "original_entry_id": entry_id,
    }


class JobQueue:
    """Enqueue, inspect and erase jobs; the worker consumes with XREADGROUP on ``GROUP``."""

    def __init__(self, redis: Any, keys: KeyBuilder) -> None:
        self.redis = redis
        self.keys = keys
        self.stream = keys.jobs()
        self.dead_stream = keys.dead_letters()
        self.group = GROUP

    async def ensure_group(self) -> None:
        """Create the stream and consumer group if missing (BUSYGROUP means it exists)."""
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def enqueue(self, type: str, user_id: str, thread_id: str, **fields: Any) -> str:
        """XADD one :class:`Job` (``fields``: its other attributes); returns its ``job_id``."""
        if type not in JOB_TYPES:
            raise ValueError(f"unknown job type {type!r}")
        checked_id(user_id, "user_id")
        checked_id(thread_id, "thread_id")
        job = Job(JobType(type), user_id, thread_id, **fields)
        await self.redis.xadd(self.stream, job.fields())
        return job.job_id

    async def _scan(self, stream: str) -> list[tuple[str, dict[str, str]]]:
        entries: list[tuple[str, dict[str, str]]] = []
        start = "-"
        while True:
            batch = await self.redis.xrange(stream, min=start, max="+", count=_SCAN_BATCH)
            if not batch:
                return entries
            entries.extend(batch)
            if len(batch) < _SCAN_BATCH:
                return entries
            start = "(" + batch[-1][0]

    async def pending_for_user(
        self, user_id: str, *, include_dead: bool = True
    ) -> list[dict[str, str]]:
        """Jobs (backlog, and dead letters) that name ``user_id``; XRANGE scan, oldest first."""
        checked_id(user_id, "user_id")
        found = []
        streams = [self.stream] + ([self.dead_stream] if include_dead else [])
        for stream in streams:
            for entry_id, fields in await self._scan(stream):
                if fields.get("user_id") == user_id:
                    found.append({**fields, "entry_id": entry_id, "stream": stream})
        return found

    async def delete_for_user(self, user_id: str) -> int:
        """XDEL every job and dead letter naming ``user_id``; returns how many.

        Entries already delivered to a worker but not yet acked are deleted too: the
        worker then finds no entry (XCLAIM/XAUTOCLAIM return none) and must drop the job.
        """
        deleted = 0
        for job in await self.pending_for_user(user_id):
            deleted += int(await self.redis.xdel(job["stream"], job["entry_id"]))
        return deleted

    async def mark_erased(self, user_id: str, ttl_s: int) -> int:
        """Record (Redis time, ms) that ``user_id`` is being erased; returns that time.

        Erasure deletes the user's jobs from both streams, but a worker may already hold
        one in memory (mid LLM call); the worker compares each job's entry time with this
        marker and drops, or undoes, what was enqueued before the erasure.
        """
        sec, usec = await self.redis.time()
        now_ms = int(sec) * 1000 + int(usec) // 1000
        await self.redis.set(self.keys.erased(user_id), str(now_ms), ex=max(1, int(ttl_s)))
        return now_ms

    async def erased_at(self, user_id: str) -> int:
        """Redis time (ms) of the user's last erasure, 0 when none is remembered."""
        value = await self.redis.get(self.keys.erased(user_id))
        return int(value) if value else 0

    async def stats(self) -> dict[str, int]:
        """``stream_length``, ``pending`` (delivered, not acked), ``dead_letter_length``."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xlen(self.dead_stream)
        length, dead = await pipe.execute()
        pending = 0
        try:
            info = await self.redis.xpending(self.stream, GROUP)
            pending = int(info.get("pending", 0) if isinstance(info, dict) else info[0])
        except ResponseError:  # no group yet
            pending = 0
        return {"stream_length": int(length), "pending": pending, "dead_letter_length": int(dead)}
