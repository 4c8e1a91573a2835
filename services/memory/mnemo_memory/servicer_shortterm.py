"""gRPC handlers of the short-term RPCs (chat path, threads, preferences, the user).

Thin: validate ids and sizes, call the stores, convert to protobuf. Domain errors
propagate to :mod:`mnemo_memory.interceptors`, which maps them to status codes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from grpc.aio import ServicerContext
from mnemo.memory.v1 import memory_pb2
from mnemo_common import metrics
from mnemo_common.limits import MAX_METADATA_ENTRIES, MAX_METADATA_VALUE_BYTES

from mnemo_memory.budget import excerpt_budget, fit_context
from mnemo_memory.convert import (
    JOB_TYPES,
    check_recall,
    message_pb,
    ranked_to_pb,
    recall_filter,
    thread_info_pb,
)
from mnemo_memory.errors import InvalidArgumentError, UnavailableError
from mnemo_memory.stores import erasure, outbox, usage
from mnemo_memory.stores.jobs import JobType
from mnemo_memory.stores.keys import checked_id
from mnemo_memory.stores.lua import execute_with_scripts
from mnemo_memory.stores.ratelimit import CHECK_AND_COUNT, RateLimiter, WindowState
from mnemo_memory.stores.text import checked_text
from mnemo_memory.stores.thread_scripts import NOTE_TURN
from mnemo_memory.stores.threads import StoredMessage, message_ids_for

if TYPE_CHECKING:
    from mnemo_memory.config import MemoryServiceSettings
    from mnemo_memory.erasure_jobs import ErasureJobs
    from mnemo_memory.health import RedisHealth
    from mnemo_memory.longterm import LongTermAPI
    from mnemo_memory.longterm.ranking import Ranked
    from mnemo_memory.stores.shortterm import ShortTermStores

log = logging.getLogger(__name__)

RATE_LIMITED = metrics.counter(
    "mnemo_memory_rate_limited_total", "PrepareTurn calls refused by the rate limiter", ("window",)
)
DEGRADED = metrics.counter(
    "mnemo_memory_degraded_total", "PrepareTurn answers missing a component", ("component",)
)
DROPPED = metrics.counter(
    "mnemo_memory_context_dropped_total",
    "Context items left out to fit the token budget",
    ("kind",),
)
COMMITS = metrics.counter("mnemo_memory_commits_total", "CommitTurn calls", ("outcome",))
JOBS_ENQUEUED = metrics.counter("mnemo_memory_jobs_enqueued_total", "Jobs enqueued", ("type",))


class ShortTermRPCs:
    """Mixed into MemoryServicer; expects ``settings``, ``stores``, ``longterm`` and
    ``redis_health`` attributes."""

    settings: MemoryServiceSettings
    stores: ShortTermStores
    longterm: LongTermAPI | None
    redis_health: RedisHealth | None
    erasures: ErasureJobs

    def _require_redis(self) -> None:
        """Fail fast while the health probe says Redis is down."""
        if self.redis_health is not None and not self.redis_health.up:
            raise UnavailableError("redis", "the last health probe failed")

    # --- the chat path ---
    async def PrepareTurn(
        self,
        request: memory_pb2.PrepareTurnRequest,
        context: ServicerContext[memory_pb2.PrepareTurnRequest, memory_pb2.PrepareTurnResponse],
    ) -> memory_pb2.PrepareTurnResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        tid = checked_id(request.thread_id, "thread_id")
        policy = self.settings.memory
        checked_text(request.query, "query", policy.max_message_bytes)
        if request.token_budget < 0:
            raise InvalidArgumentError("token_budget", "must not be negative")
        if request.HasField("recall"):
            check_recall(request.recall)
        budget = request.token_budget or policy.default_token_budget
        stores, k = self.stores, self.stores.keys
        rl_call = stores.limiter.script_call(uid, count=request.count_rate_limit)
        key = request.idempotency_key and checked_id(request.idempotency_key, "idempotency_key")
        tenant = checked_id(request.tenant, "tenant") if request.tenant else ""
        tenant_call = stores.limiter.tenant_script_call(tenant, count=request.count_rate_limit)

        def build(pipe: Any) -> None:
            if tenant_call is not None:
                CHECK_AND_COUNT.queue(pipe, *tenant_call)
            if rl_call is not None:
                CHECK_AND_COUNT.queue(pipe, *rl_call)
            pipe.exists(k.meta(uid, tid))
            pipe.lrange(k.messages(uid, tid), 0, -1)
            pipe.get(k.summary(uid, tid))
            pipe.hgetall(k.preferences(uid))
            if not stores.inline_global:
                pipe.zcard(k.outbox(uid))
            if key:  # the turn's start, for CommitTurn's erasure check
                NOTE_TURN.queue(pipe, [k.inflight(uid)], [k.inflight_member(tid, key), 3_600_000])

        results = await execute_with_scripts(
            stores.redis, build, [CHECK_AND_COUNT, NOTE_TURN], transaction=stores.inline_global
        )
        if key:
            results.pop()
        windows: list[WindowState] = []
        for call in (tenant_call, rl_call):
            if call is None:
                continue
            states, limited = RateLimiter.parse(results.pop(0))
            windows += states
            # a preview (count_rate_limit=false) reports the windows but is never refused
            if limited is not None and request.count_rate_limit:
                RATE_LIMITED.labels(limited.window).inc()
                raise limited
        if not stores.inline_global and results.pop():
            # Cluster: a commit's jobs are still in the user's outbox (the stream's node
            # failed during the commit); this turn, often that commit's retry, sends them
            await outbox.relay_quietly(stores.redis, k, uid, stores.threads.replication)
        meta_exists, raw_messages, summary, prefs = results
        exists = bool(meta_exists)
        held = raw_messages if exists else []
        replay = _replay_of(held, tid, request.idempotency_key)
        if replay is not None and not stores.inline_global:
            # Cluster: report a turn as stored only once a replica has it (the commit
            # that stored it may have died before its WAIT)
            await stores.threads.replication.wait(stores.redis, k.messages(uid, tid))
        messages = [] if request.exclude_history else [StoredMessage.from_json(r) for r in held]
        summary = (summary or "") if exists else ""
        # a message memory of a message this thread still shows would say it twice: recall
        # leaves those out of every excerpt (not only an excerpt's best member)
        held_ids = frozenset(m.id for m in messages)
        memories, degraded = await self._recall(uid, request, context, budget, held_ids)
        fitted = fit_context(budget, messages, summary, prefs, memories)
        for kind, n in (
            ("messages", fitted.dropped_messages),
            ("memories", fitted.dropped_memories),
            ("preferences", fitted.dropped_preferences),
            ("summary", int(fitted.dropped_summary)),
        ):
            if n:
                DROPPED.labels(kind).inc(n)
        return memory_pb2.PrepareTurnResponse(
            thread_id=tid,
            thread_exists=exists,
            messages=[message_pb(m) for m in fitted.messages],
            summary=fitted.summary,
            preferences=fitted.preferences,
            memories=[ranked_to_pb(r) for r in fitted.memories],
            context_tokens=fitted.tokens,
            token_budget=budget,
            dropped=memory_pb2.DroppedContext(
                messages=fitted.dropped_messages,
                memories=fitted.dropped_memories,
                summary=fitted.dropped_summary,
                preferences=fitted.dropped_preferences,
            ),
            rate_limits=[
                memory_pb2.RateLimitWindow(
                    window=w.window,
                    limit=w.limit,
                    remaining=w.remaining,
                    reset_after_s=w.reset_after_s,
                )
                for w in windows
            ],
            degraded=degraded,
            replay=replay,
        )

    async def _recall(
        self,
        uid: str,
        request: memory_pb2.PrepareTurnRequest,
        context: ServicerContext[memory_pb2.PrepareTurnRequest, memory_pb2.PrepareTurnResponse]
        | None,
        budget: int = 0,
        held_ids: frozenset[str] = frozenset(),
    ) -> tuple[list[Ranked], list[str]]:
        """Long-term memories for the turn; a failing or slow vector store degrades the
        answer (``degraded=["vector_store"]``), it never fails the turn."""
        if self.longterm is None or request.recall.disabled or not request.query:
            return [], []
        timeout = self.settings.shortterm.recall_timeout_s
        remaining = context.time_remaining() if context is not None else None
        if remaining is not None:
            # leave the short-term answer time to reach the caller before its deadline
            timeout = max(0.05, min(timeout, remaining - 0.1))
        try:
            async with asyncio.timeout(timeout):
                found = await self.longterm.recall(
                    uid,
                    request.query,
                    recall_filter(uid, request.recall),
                    request.recall.top_k,
                    excerpt_budget(budget),
                    held_ids,
                )
            return list(found), []
        except TimeoutError:
            log.warning("recall degraded: no answer within %.2fs", timeout)
        except UnavailableError as exc:
            log.warning("recall degraded: %s", exc)
        except Exception:  # the chat must go on without long-term memory
            log.exception("recall failed")
        DEGRADED.labels("vector_store").inc()
        return [], ["vector_store"]

    async def CommitTurn(
        self,
        request: memory_pb2.CommitTurnRequest,
        context: ServicerContext[memory_pb2.CommitTurnRequest, memory_pb2.CommitTurnResponse],
    ) -> memory_pb2.CommitTurnResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        tid = checked_id(request.thread_id, "thread_id")
        key = checked_id(request.idempotency_key, "idempotency_key")
        limit = self.settings.memory.max_message_bytes
        checked_text(request.user_message, "user_message", limit, required=True)
        checked_text(request.assistant_message, "assistant_message", limit)
        metadata = dict(request.metadata)
        if len(metadata) > MAX_METADATA_ENTRIES:
            raise InvalidArgumentError("metadata", f"more than {MAX_METADATA_ENTRIES} entries")
        for mk, mv in metadata.items():
            checked_id(mk, "metadata")
            checked_text(mv, f"metadata.{mk}", MAX_METADATA_VALUE_BYTES)
        result = await self.stores.threads.append_turn(
            uid, tid, key, request.user_message, request.assistant_message, metadata
        )
        COMMITS.labels("duplicate" if result.duplicate else "stored").inc()
        for job in result.enqueued_jobs:
            JOBS_ENQUEUED.labels(job).inc()
        return memory_pb2.CommitTurnResponse(
            thread_id=tid,
            message_ids=result.message_ids,
            duplicate=result.duplicate,
            message_count=result.message_count,
            enqueued_jobs=[JOB_TYPES[j] for j in result.enqueued_jobs],
        )

    # --- threads ---
    async def GetThread(
        self,
        request: memory_pb2.GetThreadRequest,
        context: ServicerContext[memory_pb2.GetThreadRequest, memory_pb2.GetThreadResponse],
    ) -> memory_pb2.GetThreadResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        tid = checked_id(request.thread_id, "thread_id")
        if request.limit < 0:
            raise InvalidArgumentError("limit", "must not be negative")
        meta, messages, summary = await self.stores.threads.get_thread(uid, tid, request.limit)
        return memory_pb2.GetThreadResponse(
            thread=thread_info_pb(meta), messages=[message_pb(m) for m in messages], summary=summary
        )

    async def ListThreads(
        self,
        request: memory_pb2.ListThreadsRequest,
        context: ServicerContext[memory_pb2.ListThreadsRequest, memory_pb2.ListThreadsResponse],
    ) -> memory_pb2.ListThreadsResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        if request.page_size < 0 or request.page_size > 500:
            raise InvalidArgumentError("page_size", "must be between 0 and 500")
        threads, token = await self.stores.threads.list_threads(
            uid, request.page_size, request.page_token
        )
        return memory_pb2.ListThreadsResponse(
            threads=[thread_info_pb(t) for t in threads], next_page_token=token
        )

    async def DeleteThread(
        self,
        request: memory_pb2.DeleteThreadRequest,
        context: ServicerContext[memory_pb2.DeleteThreadRequest, memory_pb2.DeleteThreadResponse],
    ) -> memory_pb2.DeleteThreadResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        tid = checked_id(request.thread_id, "thread_id")
        n = await self.stores.threads.delete_thread(uid, tid)
        if self.longterm is not None:
            # message memories are verbatim copies of the thread's messages: they go with it
            await self.longterm.delete_thread_messages(uid, tid)
        self.erasures.request_purge()
        return memory_pb2.DeleteThreadResponse(deleted=True, messages_deleted=n)

    async def CloseThread(
        self,
        request: memory_pb2.CloseThreadRequest,
        context: ServicerContext[memory_pb2.CloseThreadRequest, memory_pb2.CloseThreadResponse],
    ) -> memory_pb2.CloseThreadResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        tid = checked_id(request.thread_id, "thread_id")
        await self.stores.threads.close_thread(uid, tid)
        JOBS_ENQUEUED.labels(JobType.CREATE_EPISODE).inc()
        return memory_pb2.CloseThreadResponse(episode_enqueued=True)

    # --- preferences ---
    async def GetPreferences(
        self,
        request: memory_pb2.GetPreferencesRequest,
        context: ServicerContext[memory_pb2.GetPreferencesRequest, memory_pb2.Preferences],
    ) -> memory_pb2.Preferences:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        return memory_pb2.Preferences(values=await self.stores.preferences.get_all(uid))

    async def SetPreference(
        self,
        request: memory_pb2.SetPreferenceRequest,
        context: ServicerContext[memory_pb2.SetPreferenceRequest, memory_pb2.Preferences],
    ) -> memory_pb2.Preferences:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        values = await self.stores.preferences.set(uid, request.key, request.value)
        return memory_pb2.Preferences(values=values)

    async def DeletePreference(
        self,
        request: memory_pb2.DeletePreferenceRequest,
        context: ServicerContext[memory_pb2.DeletePreferenceRequest, memory_pb2.Preferences],
    ) -> memory_pb2.Preferences:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        return memory_pb2.Preferences(values=await self.stores.preferences.delete(uid, request.key))

    # --- the user as a whole ---
    async def ForgetUser(
        self,
        request: memory_pb2.ForgetUserRequest,
        context: ServicerContext[memory_pb2.ForgetUserRequest, memory_pb2.ForgetUserResponse],
    ) -> memory_pb2.ForgetUserResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        receipt = await self.erasures.run(uid)
        counts = receipt.counts
        log.info(
            "user erased" if not receipt.pending else "user erasure pending",
            extra={"erased_user": uid, "counts": counts, "pending": receipt.pending},
        )
        return memory_pb2.ForgetUserResponse(
            receipt=memory_pb2.ErasureReceipt(
                user_id=uid,
                erased_at_ms=receipt.erased_at_ms,
                counts=counts,
                total=sum(counts.values()),
                pending=receipt.pending,
            )
        )

    async def ExportUser(
        self,
        request: memory_pb2.ExportUserRequest,
        context: ServicerContext[memory_pb2.ExportUserRequest, memory_pb2.ExportUserChunk],
    ) -> AsyncIterator[memory_pb2.ExportUserChunk]:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id")
        async for section, doc in erasure.export_user(self.stores, uid):
            yield _chunk(section, doc)
        if self.longterm is not None:
            async for section, doc in self.longterm.export_user(uid):
                yield _chunk(section, doc)

    async def GetStats(
        self,
        request: memory_pb2.GetStatsRequest,
        context: ServicerContext[memory_pb2.GetStatsRequest, memory_pb2.GetStatsResponse],
    ) -> memory_pb2.GetStatsResponse:
        self._require_redis()
        uid = checked_id(request.user_id, "user_id") if request.user_id else None
        st = self.settings.shortterm
        stats = await usage.global_stats(self.stores, scan_limit=st.stats_scan_limit)
        usage.publish_gauges(stats)
        lt: dict[str, int] = {}
        if self.longterm is not None:
            try:
                lt = await self.longterm.stats(uid)
                usage.VECTORS.set(lt["vector_count"])
            except UnavailableError as exc:
                log.warning("long-term stats unavailable: %s", exc)
        response = memory_pb2.GetStatsResponse(
            redis_used_memory_bytes=stats["used_memory"],
            redis_maxmemory_bytes=stats["maxmemory"],
            keys_by_kind=stats["keys_by_kind"],
            job_stream_length=stats["stream_length"],
            job_pending=stats["pending"],
            dead_letter_length=stats["dead_letter_length"],
            vector_count=int(lt.get("vector_count", 0)),
        )
        if uid is not None:
            us = await usage.user_stats(self.stores, uid, samples=st.stats_memory_samples)
            response.user.CopyFrom(
                memory_pb2.UserStats(
                    threads=us["threads"],
                    messages=us["messages"],
                    approx_bytes=us["approx_bytes"],
                    preferences=us["preferences"],
                    facts=int(lt.get("facts", 0)),
                    episodes=int(lt.get("episodes", 0)),
                )
            )
        return response


def _chunk(section: str, doc: dict[str, Any]) -> memory_pb2.ExportUserChunk:
    return memory_pb2.ExportUserChunk(
        section=section, json=json.dumps(doc, ensure_ascii=False, default=str).encode()
    )


def _replay_of(
    raw_messages: list[str], thread_id: str, idempotency_key: str
) -> memory_pb2.Replay | None:
    """The exchange already committed under ``idempotency_key``, when the thread still
    holds both of its messages (ids derive from the key: ``message_ids_for``). Only the
    stored JSON that contains one of the two ids is decoded: the gateway sends a key with
    every turn, and drop-in turns need no other message decoded."""
    if not idempotency_key:
        return None
    user_id, assistant_id = message_ids_for(
        thread_id, checked_id(idempotency_key, "idempotency_key")
    )
    candidates = [
        StoredMessage.from_json(r) for r in raw_messages if user_id in r or assistant_id in r
    ]
    by_id = {m.id: m for m in candidates if m.id in (user_id, assistant_id)}
    if len(by_id) != 2:
        return None
    return memory_pb2.Replay(
        user_message=message_pb(by_id[user_id]), assistant_message=message_pb(by_id[assistant_id])
    )
