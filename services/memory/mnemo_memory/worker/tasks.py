"""One task registry, two backends (redis/agent-memory-server's HybridBackgroundTasks):
the job handlers run from the Redis Stream (``consumer.py``: the worker process, or the
memory service's own loop with ``SERVER__RUN_WORKER``, as ``make run`` does) and directly,
without the stream, in tests and the recall benchmark (:class:`InProcessTasks`).

Handlers are idempotent: facts and episodes have deterministic ids, and a summary only
replaces the exact messages it summarised (``ThreadStore.replace_oldest_with_summary``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mnemo_common.llm import Usage

from mnemo_memory.stores.jobs import Job, JobType
from mnemo_memory.stores.vector import VectorFilter

from .extract import Extractor, Summarizer

if TYPE_CHECKING:
    from mnemo_common.settings import MemoryPolicy

    from mnemo_memory.longterm.service import LongTermMemory
    from mnemo_memory.stores.threads import ThreadStore

log = logging.getLogger(__name__)


@dataclass
class TaskContext:
    """What handlers need; built once per process."""

    threads: ThreadStore
    longterm: LongTermMemory
    extractor: Extractor
    summarizer: Summarizer
    policy: MemoryPolicy  # MEMORY__*
    usage: list[Usage] = field(default_factory=list)  # LLM usage of the current job


@dataclass(frozen=True)
class JobResult:
    type: str
    detail: dict[str, Any]
    usage: Usage = field(default_factory=Usage)


Handler = Callable[[TaskContext, Job], Awaitable[dict[str, Any]]]


class TaskRegistry:
    """Job type → handler."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def register(self, job_type: JobType) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.handlers[job_type] = fn
            return fn

        return deco

    async def run(self, ctx: TaskContext, job: dict[str, str]) -> JobResult:
        """Run one job (stream fields) to completion; exceptions propagate to the caller."""
        job_type = job.get("type", "")
        handler = self.handlers.get(job_type)
        if handler is None:
            raise UnknownJobError(f"unknown job type {job_type!r}")
        ctx.usage = []
        detail = await handler(ctx, Job.from_fields(job))
        usage = Usage(
            sum(u.input_tokens for u in ctx.usage), sum(u.output_tokens for u in ctx.usage)
        )
        return JobResult(job_type, detail, usage)


class UnknownJobError(ValueError):
    """A job of a type no handler knows: dead-lettered at once (retrying cannot help)."""


registry = TaskRegistry()


def _window(messages: list[Any], upto: str, count: int) -> list[Any]:
    """The ``count`` messages ending at id ``upto`` (the newest ``count`` for a job that
    names no message). When ``upto`` is no longer held (summarised or trimmed away before
    the job ran) the window is empty: extracting the newest messages instead would read
    what the next job covers, and twice."""
    if upto:
        ids = [m.id for m in messages]
        if upto not in ids:
            return []
        end = ids.index(upto) + 1
        return messages[max(0, end - count) if count > 0 else 0 : end]
    return messages[-count:] if count > 0 else messages


@registry.register(JobType.EXTRACT_FACTS)
async def extract_facts(ctx: TaskContext, job: Job) -> dict[str, Any]:
    user_id, thread_id = job.user_id, job.thread_id
    messages = await ctx.threads.read_messages(user_id, thread_id)
    window = _window(messages, job.upto_message_id, job.new_messages)
    if not window:
        return {"facts": 0, "reason": "messages no longer held"}
    # message memories first: they need no LLM, so an extraction failure loses none
    indexed = await ctx.longterm.write_messages(user_id, thread_id, messages, window)
    if indexed and await ctx.threads.get_meta(user_id, thread_id) is None:
        # the thread was deleted while this job ran: its message memories go with it
        await ctx.longterm.delete_thread_messages(user_id, thread_id)
        indexed = 0
    # existing facts near this window, so the LLM can say which one a new fact replaces
    query = " ".join(m.content for m in window if m.role == "user")[-2000:]
    existing = []
    if query and getattr(ctx.extractor, "wants_existing", False):
        ranked, _ = await ctx.longterm.search(
            user_id,
            query,
            VectorFilter(user_id=user_id, kinds=("fact", "preference")),
            10,
            group=False,  # the extractor names the facts it replaces by id
        )
        existing = [r.record for r in ranked]
    candidates, usage = await ctx.extractor.extract(window, existing)
    ctx.usage.append(usage)
    report = await ctx.longterm.write_facts(user_id, thread_id, candidates)
    return {**report.as_dict(), "messages": indexed}


@registry.register(JobType.SUMMARIZE_THREAD)
async def summarize_thread(ctx: TaskContext, job: Job) -> dict[str, Any]:
    user_id, thread_id = job.user_id, job.thread_id
    messages = await ctx.threads.read_messages(user_id, thread_id)
    keep = int(ctx.policy.summary_keep_recent)
    old = messages[:-keep] if len(messages) > keep else []
    if not old:
        await ctx.threads.clear_summary_pending(user_id, thread_id)
        return {"summarized": 0}
    previous = await ctx.threads.get_summary(user_id, thread_id) or ""
    summary, usage = await ctx.summarizer.summarize(old, previous)
    ctx.usage.append(usage)
    done = await ctx.threads.replace_oldest_with_summary(
        user_id, thread_id, [m.id for m in old], summary
    )
    if not done:
        # the thread moved on (trim, another summary); the next threshold enqueues again
        await ctx.threads.clear_summary_pending(user_id, thread_id)
    return {"summarized": len(old) if done else 0, "applied": bool(done)}


@registry.register(JobType.CREATE_EPISODE)
async def create_episode(ctx: TaskContext, job: Job) -> dict[str, Any]:
    user_id, thread_id = job.user_id, job.thread_id
    messages = await ctx.threads.read_messages(user_id, thread_id)
    previous = await ctx.threads.get_summary(user_id, thread_id) or ""
    if not messages and not previous:
        return {"episode": "", "reason": "empty thread"}
    text, usage = await ctx.summarizer.summarize(messages, previous)
    ctx.usage.append(usage)
    episode_id, created = await ctx.longterm.write_episode(
        user_id,
        thread_id,
        text,
        tuple(m.id for m in messages),
        valid_from_ms=messages[-1].created_at_ms if messages else 0,
    )
    await ctx.threads.mark_episode_done(user_id, thread_id)
    return {"episode": episode_id, "created": created}


async def enqueue_idle_episodes(
    ctx: TaskContext, jobs: Any, idle_minutes: float, limit: int
) -> int:
    """Enqueue create_episode for threads quiet longer than ``idle_minutes``."""
    cutoff = int(time.time() * 1000 - idle_minutes * 60_000)
    idle = await ctx.threads.idle_threads(cutoff, limit)
    for user_id, thread_id in idle:
        await jobs.enqueue(JobType.CREATE_EPISODE, user_id, thread_id, reason="idle")
        # until the job runs, the scan must not enqueue the same thread again
        await ctx.threads.mark_episode_done(user_id, thread_id)
    return len(idle)


class InProcessTasks:
    """The in-process backend: run jobs directly (tests, benchmarks, ``make run``), or
    drain the Redis Stream once without a separate worker process."""

    def __init__(self, ctx: TaskContext, reg: TaskRegistry | None = None) -> None:
        self.ctx = ctx
        self.registry = reg or registry

    async def run(self, job: dict[str, str]) -> JobResult:
        return await self.registry.run(self.ctx, job)

    async def drain(self, redis: Any, stream: str) -> int:
        """Run and delete every job currently in ``stream`` (oldest first)."""
        done = 0
        while True:
            batch = await redis.xrange(stream, min="-", max="+", count=100)
            if not batch:
                return done
            for entry_id, fields in batch:
                await self.run(dict(fields))
                await redis.xdel(stream, entry_id)
                done += 1
