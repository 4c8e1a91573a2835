"""The stream backend of the task registry: a Redis Stream consumer-group worker.

Delivery is at-least-once:

* ``XREADGROUP`` hands each job to one consumer; it stays *pending* until ``XACK``.
* A worker that dies mid-job leaves it pending; every ``WORKER__CLAIM_INTERVAL_S`` each
  worker ``XAUTOCLAIM``s jobs idle longer than ``WORKER__CLAIM_IDLE_MS`` and runs them.
  A live worker keeps the job it runs fresh (a heartbeat resets its idle time), so a slow
  LLM call is never taken over and run twice.
* A failing job (LLM error, malformed output) is retried in place with exponential
  backoff up to ``WORKER__MAX_ATTEMPTS`` times, then copied to the dead-letter stream
  with ``error``/``attempts``/``failed_at_ms``/``original_entry_id``. A job delivered more
  than ``WORKER__MAX_DELIVERIES`` times (it keeps killing workers) is dead-lettered too.
* A store being down is not the job's fault: when Redis (connection refused/reset,
  timeout, loading, cluster failover) or the vector store is unreachable
  (:func:`mnemo_memory.errors.store_unavailable`) the worker waits (backoff, capped) and
  retries the same job until the store is back, without spending an attempt, so a Redis
  or Chroma outage never dead-letters a good job; jobs queue up in the stream meanwhile.
* Success: ``XACK`` then ``XDEL``, so the stream length is the backlog.
* A job whose user was erased after it was enqueued (``JobQueue.erased_at`` newer than
  the entry id's time) is dropped before it runs and instead of being dead-lettered;
  if the erasure happened while it ran, what the user has in long-term memory is deleted
  again, so an in-flight job can never bring erased memories back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from mnemo_common import metrics

from mnemo_memory.errors import InvalidArgumentError, UnavailableError, store_unavailable
from mnemo_memory.stores.jobs import JobHeader, JobType, dead_letter_fields

from .liveness import Heartbeat
from .settings import WorkerSettings
from .tasks import TaskContext, TaskRegistry, UnknownJobError, enqueue_idle_episodes

log = logging.getLogger(__name__)

JOBS_PROCESSED = metrics.counter("mnemo_worker_jobs_processed", "Jobs completed", ("type",))
JOBS_FAILED = metrics.counter(
    "mnemo_worker_jobs_failed", "Jobs dead-lettered after their last attempt", ("type",)
)
JOBS_RETRIED = metrics.counter("mnemo_worker_jobs_retried", "Job attempts retried", ("type",))
JOBS_CLAIMED = metrics.counter(
    "mnemo_worker_jobs_claimed", "Stale pending jobs taken over with XAUTOCLAIM"
)
JOB_LAG = metrics.histogram(
    "mnemo_worker_job_lag_seconds", "Enqueue to start of processing", ("type",)
)
JOB_DURATION = metrics.histogram("mnemo_worker_job_duration_seconds", "Handler run time", ("type",))
LLM_TOKENS = metrics.counter(
    "mnemo_worker_llm_tokens", "LLM tokens used by jobs", ("type", "direction")
)
STORE_WAITS = metrics.counter(
    "mnemo_worker_store_unavailable",
    "Times a job waited (no attempt spent) because a store was down, by store",
    ("store",),
)
JOBS_DROPPED = metrics.counter(
    "mnemo_worker_jobs_dropped", "Jobs dropped because their user was erased", ("type",)
)
BACKLOG = metrics.gauge("mnemo_worker_stream_length", "Jobs waiting in the stream")

#: failures no retry can mend — a bug in a handler or a malformed job (Job.from_fields
#: raises ValueError): dead-lettered at the first failure. Anything else (the LLM's errors,
#: timeouts, a store's unexpected answer) is retried up to WORKER__MAX_ATTEMPTS; a store
#: that is down is waited for without spending an attempt.
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    TypeError,
    AttributeError,
    LookupError,  # KeyError, IndexError
    NameError,
    ValueError,  # includes UnicodeDecodeError and json.JSONDecodeError
    AssertionError,
    NotImplementedError,
    InvalidArgumentError,  # an id in the job fails validation
)


def entry_time_ms(entry_id: Any) -> int:
    """The Redis time (ms) at which a stream entry was added: its id's first part."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    return int(text.split("-", 1)[0])


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamWorker:
    """Consumes ``jobs.stream`` in group ``jobs.group`` until :meth:`request_stop`."""

    def __init__(
        self,
        *,
        redis: Any,
        jobs: Any,
        ctx: TaskContext,
        registry: TaskRegistry,
        settings: WorkerSettings,
        idle_minutes: float,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.redis = redis
        #: beaten by the loop and a running job's holder: the worker's /livez
        self.heartbeat = heartbeat or Heartbeat(settings.liveness_timeout_s)
        self.jobs = jobs
        self.ctx = ctx
        self.registry = registry
        self.cfg = settings
        self.idle_minutes = idle_minutes
        self.consumer = settings.consumer_name or default_consumer_name()
        self._stop = asyncio.Event()
        self._last_claim = 0.0
        self._last_scan = 0.0

    def request_stop(self) -> None:
        """Finish the current job, then return from :meth:`run`."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        await self.jobs.ensure_group()
        log.info("worker started", extra={"consumer": self.consumer, "stream": self.jobs.stream})
        while not self.stopping:
            self.heartbeat.beat()
            try:
                await self._tick()
            except UnavailableError as exc:
                log.warning("store unavailable; waiting", extra={"error": str(exc)})
                await self._sleep(1.0)
            except Exception as exc:  # Redis down etc.: never let the loop die
                log.warning("worker loop error", extra={"error": repr(exc)})
                await self._sleep(1.0)
        log.info("worker stopped", extra={"consumer": self.consumer})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last_claim >= self.cfg.claim_interval_s:
            self._last_claim = now
            await self._claim_stale()
        if self.cfg.idle_scan_interval_s and now - self._last_scan >= self.cfg.idle_scan_interval_s:
            self._last_scan = now
            await enqueue_idle_episodes(
                self.ctx, self.jobs, self.idle_minutes, self.cfg.idle_scan_batch
            )
        reply = await self.redis.xreadgroup(
            self.jobs.group,
            self.consumer,
            {self.jobs.stream: ">"},
            count=1,
            block=self.cfg.block_ms,
        )
        for _stream, entries in _entries(reply):
            for entry_id, fields in entries:
                if self.stopping:
                    return  # left pending: redelivered to another worker
                await self.process(entry_id, fields)
        BACKLOG.set(await self.redis.xlen(self.jobs.stream))

    async def _claim_stale(self) -> None:
        start = "0-0"
        while not self.stopping:
            res = await self.redis.xautoclaim(
                self.jobs.stream,
                self.jobs.group,
                self.consumer,
                min_idle_time=self.cfg.claim_idle_ms,
                start_id=start,
                count=1,  # one at a time: a claimed job is held (heartbeat) while it runs
            )
            next_id, claimed = res[0], res[1]
            for entry_id, fields in claimed:
                if not fields:  # deleted while pending (user erased): drop it
                    await self.redis.xack(self.jobs.stream, self.jobs.group, entry_id)
                    continue
                JOBS_CLAIMED.inc()
                log.info("claimed stale job", extra=JobHeader.of(fields).log(entry_id=entry_id))
                await self.process(entry_id, fields)
            if next_id in ("0-0", b"0-0") or not claimed:
                return
            start = next_id

    async def _deliveries(self, entry_id: str) -> int:
        rows = await self.redis.xpending_range(
            self.jobs.stream, self.jobs.group, min=entry_id, max=entry_id, count=1
        )
        return int(rows[0]["times_delivered"]) if rows else 1

    @contextlib.asynccontextmanager
    async def _holding(self, entry_id: str) -> AsyncIterator[None]:
        """Keep a job this worker is running from looking stale: every third of
        ``claim_idle_ms`` its idle time is reset (``XCLAIM ... JUSTID``, which does not count
        a delivery), so other workers' XAUTOCLAIM leaves it alone however long the LLM
        takes. A worker that dies stops beating, and the job is claimed as before."""
        interval = max(0.05, self.cfg.claim_idle_ms / 3000)
        stream, group = self.jobs.stream, self.jobs.group

        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                self.heartbeat.beat()  # the event loop runs while this job does
                try:
                    rows = await self.redis.xpending_range(
                        stream, group, min=entry_id, max=entry_id, count=1
                    )
                    owner = rows[0]["consumer"] if rows else None
                    if isinstance(owner, bytes):
                        owner = owner.decode()
                    if owner != self.consumer:
                        return  # acked, or taken over: never steal it back
                    await self.redis.xclaim(
                        stream, group, self.consumer, 0, [entry_id], justid=True
                    )
                except Exception as exc:  # Redis blip: the next beat tries again
                    log.debug("job heartbeat failed", extra={"error": repr(exc)})

        task = asyncio.create_task(beat(), name=f"hold-{entry_id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def process(self, entry_id: str, fields: dict[str, str]) -> bool:
        """Run one delivered job to success (ack+del) or dead letter; False if it was
        left pending (stop requested while the store was down)."""
        async with self._holding(entry_id):
            return await self._process(entry_id, fields)

    async def _process(self, entry_id: str, fields: dict[str, str]) -> bool:
        head = JobHeader.of(fields)
        job_type, enqueued = head.type, head.enqueued_at_ms
        if enqueued:
            JOB_LAG.labels(job_type).observe(max(0.0, time.time() - enqueued / 1000))
        if await self._erased_since(entry_id, fields):
            await self._drop_erased(entry_id, fields, "before it ran")
            return True
        deliveries = await self._deliveries(entry_id)
        if deliveries > self.cfg.max_deliveries:
            await self._dead_letter(entry_id, fields, f"delivered {deliveries} times", deliveries)
            return True
        attempt = 0
        store_waits = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                result = await self.registry.run(self.ctx, fields)
                if await self._erased_since(entry_id, fields):
                    # ForgetUser ran while the job worked: delete what it may have written
                    if self.ctx.longterm is not None:
                        await self.ctx.longterm.forget_user(head.user_id)
                    await self._drop_erased(entry_id, fields, "while it ran")
                    return True
            except UnknownJobError as exc:
                await self._dead_letter(entry_id, fields, str(exc), attempt)
                return True
            except Exception as exc:
                if store_unavailable(exc):
                    attempt -= 1  # not the job's fault: wait for the store, do not count
                    store_waits += 1
                    if not await self._wait_for_store(exc, fields, store_waits):
                        return False
                    continue
                JOB_DURATION.labels(job_type).observe(time.monotonic() - started)
                if attempt >= self.cfg.max_attempts or isinstance(exc, PERMANENT_ERRORS):
                    await self._dead_letter(entry_id, fields, repr(exc), attempt)
                    if job_type == JobType.SUMMARIZE_THREAD:
                        await self._allow_new_summary(fields)
                    return True
                JOBS_RETRIED.labels(job_type).inc()
                log.warning(
                    "job failed; retrying",
                    extra=head.log(attempt=attempt, error=repr(exc)),
                )
                await self._sleep(self._backoff(attempt))
                continue
            JOB_DURATION.labels(job_type).observe(time.monotonic() - started)
            LLM_TOKENS.labels(job_type, "input").inc(result.usage.input_tokens)
            LLM_TOKENS.labels(job_type, "output").inc(result.usage.output_tokens)
            await self._finish(entry_id)
            JOBS_PROCESSED.labels(job_type).inc()
            log.info(
                "job done",
                extra=head.log(attempts=attempt, **result.detail),
            )
            return True

    async def _wait_for_store(self, exc: Exception, fields: dict[str, str], waits: int) -> bool:
        """Back off while a store is down; False when a stop was requested meanwhile (the
        job stays pending and is redelivered)."""
        store = exc.component if isinstance(exc, UnavailableError) else "redis"
        STORE_WAITS.labels(store).inc()
        log.warning(
            "%s unavailable; job waits (no attempt spent)",
            store,
            extra=JobHeader.of(fields).log(error=repr(exc)[:300]),
        )
        if self.stopping:
            return False
        await self._sleep(self._backoff(waits))
        return not self.stopping

    async def _erased_since(self, entry_id: Any, fields: dict[str, str]) -> bool:
        """Was the job's user erased after the job was enqueued?"""
        user_id = JobHeader.of(fields).user_id
        if not user_id:
            return False
        try:
            erased = await self.jobs.erased_at(user_id)
        except InvalidArgumentError:  # a malformed job: its handler fails and dead-letters it
            return False
        return bool(erased) and erased >= entry_time_ms(entry_id)

    async def _drop_erased(self, entry_id: Any, fields: dict[str, str], when: str) -> None:
        await self._finish(entry_id)
        head = JobHeader.of(fields)
        JOBS_DROPPED.labels(head.type).inc()
        log.info("job dropped: its user was erased " + when, extra=head.log())

    def _backoff(self, attempt: int) -> float:
        return float(min(self.cfg.backoff_max_s, self.cfg.backoff_base_s * 2 ** (attempt - 1)))

    async def _finish(self, entry_id: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.xack(self.jobs.stream, self.jobs.group, entry_id)
        pipe.xdel(self.jobs.stream, entry_id)
        await pipe.execute()

    async def _dead_letter(
        self, entry_id: str, fields: dict[str, str], error: str, attempts: int
    ) -> None:
        head = JobHeader.of(fields)
        body = dead_letter_fields(fields, entry_id, error, attempts)
        if await self._erased_since(entry_id, fields):
            await self._drop_erased(entry_id, fields, "before it was dead-lettered")
            return
        # two streams, two hash slots: no MULTI across them (Redis Cluster refuses it).
        # Dead letter first, then ack: a crash in between re-delivers the job, which is
        # dead-lettered again (a duplicate letter, never a lost job)
        await self.redis.xadd(self.jobs.dead_stream, body)
        await self._finish(entry_id)
        JOBS_FAILED.labels(head.type).inc()
        log.error("job dead-lettered", extra=head.log(error=error[:500]))

    async def _allow_new_summary(self, fields: dict[str, str]) -> None:
        try:
            head = JobHeader.of(fields)
            await self.ctx.threads.clear_summary_pending(head.user_id, head.thread_id)
        except Exception as exc:  # best effort: the stale-job timeout also re-enables it
            log.warning("could not clear summary flag", extra={"error": repr(exc)})


def _entries(reply: Any) -> list[tuple[Any, list[tuple[str, dict[str, str]]]]]:
    """XREADGROUP replies are a list (RESP2) or a dict (RESP3); normalise."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [(k, v[0] if v and isinstance(v[0], list) else v) for k, v in reply.items()]
    return [(s, e) for s, e in reply]
