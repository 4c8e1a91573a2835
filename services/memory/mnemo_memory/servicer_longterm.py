"""gRPC handlers of the long-term RPCs (SearchMemories, List/Add/Update/DeleteMemory).

Thin: validate ids, translate protobuf to :class:`~mnemo_memory.longterm.service.LongTermMemory`
calls and back. Domain errors propagate to the error-mapping interceptor (NOT_FOUND —
also for another user's memory —, INVALID_ARGUMENT, UNAVAILABLE, FAILED_PRECONDITION).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import grpc
from grpc.aio import ServicerContext
from mnemo.memory.v1 import memory_pb2

from mnemo_memory.convert import (
    MAX_TOP_K,
    filter_from_pb,
    kind_from_pb,
    ranked_to_pb,
    record_to_pb,
)
from mnemo_memory.errors import InvalidArgumentError
from mnemo_memory.stores.keys import checked_id
from mnemo_memory.stores.text import checked_clean

if TYPE_CHECKING:
    from mnemo_memory.erasure_jobs import ErasureJobs
    from mnemo_memory.longterm import LongTermAPI
    from mnemo_memory.stores.threads import ThreadStore
    from mnemo_memory.stores.vector import MemoryRecord

MAX_QUERY_CHARS = 8000

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class LongTermRPCs:
    """Mixed into MemoryServicer; expects ``longterm`` (None = not available) and
    ``threads`` (the ThreadStore)."""

    longterm: LongTermAPI | None
    threads: ThreadStore
    erasures: ErasureJobs

    async def _lt(self, context: ServicerContext[Req, Resp]) -> LongTermAPI:
        if self.longterm is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, "long-term memory is not enabled on this server"
            )
            raise AssertionError("context.abort returns only by raising")  # pragma: no cover
        return self.longterm

    async def SearchMemories(
        self,
        request: memory_pb2.SearchMemoriesRequest,
        context: ServicerContext[
            memory_pb2.SearchMemoriesRequest, memory_pb2.SearchMemoriesResponse
        ],
    ) -> memory_pb2.SearchMemoriesResponse:
        lt = await self._lt(context)
        uid = checked_id(request.user_id, "user_id")
        if not request.query.strip():
            raise InvalidArgumentError("query", "must not be empty")
        checked_clean(request.query, "query")
        if len(request.query) > MAX_QUERY_CHARS:
            raise InvalidArgumentError("query", f"is longer than {MAX_QUERY_CHARS} characters")
        if not 0 <= request.top_k <= MAX_TOP_K:
            raise InvalidArgumentError("top_k", f"must be between 0 and {MAX_TOP_K}")
        if request.token_budget < 0:
            raise InvalidArgumentError("token_budget", "must not be negative")
        flt = filter_from_pb(uid, request.filter if request.HasField("filter") else None)
        ranked, tokens = await lt.search(
            uid, request.query, flt, request.top_k, request.token_budget
        )
        return memory_pb2.SearchMemoriesResponse(
            results=[ranked_to_pb(r) for r in ranked], context_tokens=tokens
        )

    async def ListMemories(
        self,
        request: memory_pb2.ListMemoriesRequest,
        context: ServicerContext[memory_pb2.ListMemoriesRequest, memory_pb2.ListMemoriesResponse],
    ) -> memory_pb2.ListMemoriesResponse:
        lt = await self._lt(context)
        uid = checked_id(request.user_id, "user_id")
        flt = filter_from_pb(uid, request.filter if request.HasField("filter") else None)
        records, token = await lt.list_memories(uid, flt, request.page_size, request.page_token)
        return memory_pb2.ListMemoriesResponse(
            memories=[record_to_pb(r) for r in records], next_page_token=token
        )

    async def AddMemory(
        self,
        request: memory_pb2.AddMemoryRequest,
        context: ServicerContext[memory_pb2.AddMemoryRequest, memory_pb2.Memory],
    ) -> memory_pb2.Memory:
        lt = await self._lt(context)
        uid = checked_id(request.user_id, "user_id")
        if request.source_thread_id:
            # a thread id names one of this user's threads (it may have expired already)
            checked_id(request.source_thread_id, "source_thread_id")
        await self.erasures.refuse_if_erasing(uid)
        record = await lt.add_memory(
            uid,
            request.text,
            kind_from_pb(request.kind),
            request.importance,
            request.source_thread_id,
        )
        return record_to_pb(record)

    async def UpdateMemory(
        self,
        request: memory_pb2.UpdateMemoryRequest,
        context: ServicerContext[memory_pb2.UpdateMemoryRequest, memory_pb2.Memory],
    ) -> memory_pb2.Memory:
        lt = await self._lt(context)
        uid = checked_id(request.user_id, "user_id")
        mid = checked_id(request.memory_id, "memory_id")
        await self.erasures.refuse_if_erasing(uid)
        record = await lt.update_memory(
            uid,
            mid,
            request.text if request.HasField("text") else None,
            request.importance if request.HasField("importance") else None,
            kind_from_pb(request.kind) if request.kind else "",
        )
        if request.HasField("text"):
            await self._redact_sources(uid, record)  # no later episode quotes the old text
            self.erasures.request_purge()  # the corrected text leaves the files too
        return record_to_pb(record)

    async def _redact_sources(self, uid: str, record: MemoryRecord) -> None:
        """Remove a deleted or corrected memory's source messages from its thread."""
        if record.kind != "episode" and record.source_thread_id and record.source_message_ids:
            await self.threads.redact_messages(
                uid, record.source_thread_id, record.source_message_ids
            )

    async def DeleteMemory(
        self,
        request: memory_pb2.DeleteMemoryRequest,
        context: ServicerContext[memory_pb2.DeleteMemoryRequest, memory_pb2.DeleteMemoryResponse],
    ) -> memory_pb2.DeleteMemoryResponse:
        lt = await self._lt(context)
        uid = checked_id(request.user_id, "user_id")
        mid = checked_id(request.memory_id, "memory_id")
        deleted, record, _ = await lt.forget_memory(uid, mid)
        await self._redact_sources(uid, record)
        self.erasures.request_purge()
        return memory_pb2.DeleteMemoryResponse(deleted=deleted)
