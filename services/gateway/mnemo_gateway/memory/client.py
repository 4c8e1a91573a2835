"""Async client of the memory service over the generated stub.

Every call carries a deadline and the request id; only failures that mean "not answering"
(UNAVAILABLE, DEADLINE_EXCEEDED: down, unreachable, too slow) feed the circuit breakers,
per failure domain (ADR 0014): when the gRPC client itself produced the status (no
connection, no answer before the deadline) the ``service`` breaker counts it — a dead
memory service costs one fast check per request, not a deadline each; when the service
answered it (its trailing metadata carries our request id: its store failed for this
request, e.g. a Redis shard failing over) only that (method, user) breaker counts it.
Any other status is an answer about that one request (INVALID_ARGUMENT, NOT_FOUND,
PERMISSION_DENIED, RESOURCE_EXHAUSTED, and INTERNAL/UNKNOWN too: a server-side failure on
that request's data) and never trips it — otherwise one user's bad requests would switch
memory off for everybody. On the chat path INTERNAL/UNKNOWN still degrade the turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar, cast

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message as ProtoMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc
from mnemo_common.logging import request_id_var

from ..core import metrics as m
from ..core.errors import ApiError, from_grpc
from .breaker import BreakerSet, BreakerState
from .wire import WireChannel, WireUnreachable

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=ProtoMessage)
Resp = TypeVar("Resp", bound=ProtoMessage)

SERVICE_NAME = "mnemo.memory.v1.MemoryService"


def _unary_methods() -> dict[str, tuple[str, type[ProtoMessage]]]:
    service = memory_pb2.DESCRIPTOR.services_by_name["MemoryService"]
    return {
        method.name: (
            f"/{service.full_name}/{method.name}",
            message_factory.GetMessageClass(method.output_type),
        )
        for method in service.methods
        if not (method.client_streaming or method.server_streaming)
    }


#: method name -> (full path, response class) of every unary RPC the wire can carry
_UNARY = _unary_methods()

#: statuses that say the service (not the request) is in trouble: the only breaker failures
_HEALTH_FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: server-side failures of one request: a chat turn is answered without memory (degraded),
#: but the breaker does not count them
_DEGRADE_ONLY = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        # the service refused GATEWAY__MEMORY_TOKEN: a deployment error, not the user's
        grpc.StatusCode.UNAUTHENTICATED,
    }
)

#: what the gRPC client raises besides AioRpcError (usage errors, refused metadata, ...)
_CLIENT_ERRORS = (grpc.aio.BaseError, grpc.RpcError)

# Reconnect quickly after the memory service restarts (gRPC's default backoff grows to 2 min).
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
]


def _answered_by_service(err: grpc.aio.AioRpcError) -> bool:
    """The memory service sent this status itself (its interceptor puts the request id in
    the trailing metadata of every failure); a status the gRPC client made up (no
    connection, deadline passed without an answer) has no such trailer."""
    try:
        trailers = err.trailing_metadata() or ()
    except Exception:  # malformed trailers: treat as the client's own status
        return False
    return any(getattr(item, "key", None) == "x-request-id" for item in trailers) or any(
        isinstance(item, tuple) and item[0] == "x-request-id" for item in trailers
    )


class MemoryUnavailable(Exception):
    """The memory service could not answer (down, slow, or the breaker is open)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # breaker_open | unavailable | deadline_exceeded | internal ...
        self.detail = detail


class MemoryClient:
    """One channel to the memory service, shared by every request of the process."""

    def __init__(
        self,
        addr: str,
        *,
        timeout_s: float,
        admin_timeout_s: float,
        breaker_failures: int,
        breaker_cooldown_s: float,
        max_store_domains: int = 10_000,
        token: str | None = None,
        wire_addr: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.addr = addr
        # GATEWAY__MEMORY_WIRE_ADDR: unary calls over the memory wire (ADR 0032)
        self._wire = WireChannel(wire_addr) if wire_addr else None
        # SERVER__AUTH_TOKEN of the memory service, sent as gRPC metadata on every call
        self._auth: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.timeout_s = timeout_s
        self.admin_timeout_s = admin_timeout_s
        self.breakers = BreakerSet(
            breaker_failures,
            breaker_cooldown_s,
            max_store_domains=max_store_domains,
            clock=clock,
            on_change=self._breaker_changed,
        )
        self.breaker = self.breakers.service  # the breaker every caller shares
        m.BREAKER_STATE.set(0)
        self._channel = grpc.aio.insecure_channel(addr, options=_CHANNEL_OPTIONS)
        # the .pyi's overload types this stub on an aio channel as MemoryServiceAsyncStub
        self._stub: memory_pb2_grpc.MemoryServiceAsyncStub = memory_pb2_grpc.MemoryServiceStub(
            self._channel
        )
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def aclose(self) -> None:
        if self._wire is not None:
            await self._wire.aclose()
        await self._channel.close()

    async def _send(
        self,
        method: str,
        rpc: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        deadline_s: float,
    ) -> Resp:
        """One unary call, on the memory wire when it is configured and reachable, on gRPC
        otherwise; either raises AioRpcError the same way."""
        metadata = self._metadata()
        wire = self._wire
        if wire is not None and wire.usable:
            path, response_type = _UNARY[method]
            try:
                response = await wire.call(
                    path, request, response_type, timeout=deadline_s, metadata=metadata
                )
                return cast(Resp, response)
            except WireUnreachable:
                m.MEMORY_WIRE_FALLBACKS.inc()  # nothing was sent: gRPC carries this call
        return await rpc(request, timeout=deadline_s, metadata=metadata)

    def _breaker_changed(self, state: BreakerState) -> None:
        m.BREAKER_STATE.set(int(state))
        log.warning(
            "memory circuit breaker %s",
            state.name.lower().replace("_", "-"),
            extra={"memory_addr": self.addr},
        )

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        rid = request_id_var.get()
        return self._auth + ((("x-request-id", rid),) if rid else ())

    def _admit(self, method: str, user: str) -> None:
        """Raise MemoryUnavailable when a breaker of the call's domains is open."""
        domain = self.breakers.allow(method, user)
        if domain == "service":
            m.MEMORY_CALLS.labels(method, "BREAKER_OPEN").inc()
            raise MemoryUnavailable("breaker_open", "memory service circuit breaker is open")
        if domain == "store":
            m.MEMORY_CALLS.labels(method, "STORE_BREAKER_OPEN").inc()
            raise MemoryUnavailable(
                "store_breaker_open", f"{method} keeps failing for this user; not retried yet"
            )

    def _failed(self, method: str, user: str, err: grpc.aio.AioRpcError) -> bool:
        """Feed an RPC failure to the right breaker; True when it means "unavailable"."""
        if err.code() not in _HEALTH_FAILURES:
            self.breakers.release(method, user)
            return False
        if _answered_by_service(err):
            self.breakers.record_store_failure(method, user)
            m.STORE_BREAKERS_OPEN.set(self.breakers.open_store_domains())
        else:
            self.breakers.record_service_failure(method, user)
        return True

    async def _call(
        self,
        method: str,
        rpc: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        deadline_s: float,
    ) -> Resp:
        """Call ``rpc`` (the stub's ``method``) through the breakers; raises
        MemoryUnavailable or AioRpcError."""
        user = str(getattr(request, "user_id", ""))
        self._admit(method, user)
        start = time.perf_counter()
        try:
            response = await self._send(method, rpc, request, deadline_s)
        except grpc.aio.AioRpcError as err:
            m.MEMORY_CALLS.labels(method, err.code().name).inc()
            if self._failed(method, user, err):
                raise MemoryUnavailable(err.code().name.lower(), err.details() or "") from err
            raise
        except _CLIENT_ERRORS as exc:
            # grpc failed on our side (e.g. metadata it refuses): not a verdict of the service
            m.MEMORY_CALLS.labels(method, "CLIENT_ERROR").inc()
            self.breakers.abandon(method, user)
            log.warning("memory call failed in the gRPC client", exc_info=True)
            raise MemoryUnavailable("client_error", f"{type(exc).__name__}: {exc}") from exc
        except asyncio.CancelledError:
            self.breakers.abandon(method, user)  # a probe that never finished frees its slot
            raise
        finally:
            m.MEMORY_LATENCY.labels(method).observe(time.perf_counter() - start)
        m.MEMORY_CALLS.labels(method, "OK").inc()
        self.breakers.record_success(method, user)
        return response

    # --- chat path: raises MemoryUnavailable (the caller degrades) or AioRpcError ----------

    async def _chat_call(
        self, method: str, rpc: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req
    ) -> Resp:
        try:
            return await self._call(method, rpc, request, self.timeout_s)
        except grpc.aio.AioRpcError as err:
            if err.code() in _DEGRADE_ONLY:
                if err.code() is grpc.StatusCode.UNAUTHENTICATED:
                    log.error("the memory service refused GATEWAY__MEMORY_TOKEN")
                raise MemoryUnavailable(err.code().name.lower(), err.details() or "") from err
            raise

    async def prepare_turn(
        self, request: memory_pb2.PrepareTurnRequest
    ) -> memory_pb2.PrepareTurnResponse:
        return await self._chat_call("PrepareTurn", self._stub.PrepareTurn, request)

    async def commit_turn(
        self, request: memory_pb2.CommitTurnRequest
    ) -> memory_pb2.CommitTurnResponse:
        return await self._chat_call("CommitTurn", self._stub.CommitTurn, request)

    # --- control path: every failure becomes an ApiError ----------------------------------

    async def _admin(
        self, method: str, rpc: grpc.aio.UnaryUnaryMultiCallable[Req, Resp], request: Req
    ) -> Resp:
        """Call a control RPC; errors become :class:`ApiError` (503 when unreachable)."""
        try:
            return await self._call(method, rpc, request, self.admin_timeout_s)
        except MemoryUnavailable as exc:
            raise ApiError(
                503,
                "memory_unavailable",
                f"the memory service is unavailable ({exc.reason})",
                headers={"Retry-After": "5"},
            ) from exc
        except grpc.aio.AioRpcError as err:
            raise from_grpc(err) from err

    async def list_threads(
        self, request: memory_pb2.ListThreadsRequest
    ) -> memory_pb2.ListThreadsResponse:
        return await self._admin("ListThreads", self._stub.ListThreads, request)

    async def get_thread(
        self, request: memory_pb2.GetThreadRequest
    ) -> memory_pb2.GetThreadResponse:
        return await self._admin("GetThread", self._stub.GetThread, request)

    async def close_thread(
        self, request: memory_pb2.CloseThreadRequest
    ) -> memory_pb2.CloseThreadResponse:
        return await self._admin("CloseThread", self._stub.CloseThread, request)

    async def delete_thread(
        self, request: memory_pb2.DeleteThreadRequest
    ) -> memory_pb2.DeleteThreadResponse:
        return await self._admin("DeleteThread", self._stub.DeleteThread, request)

    async def get_preferences(
        self, request: memory_pb2.GetPreferencesRequest
    ) -> memory_pb2.Preferences:
        return await self._admin("GetPreferences", self._stub.GetPreferences, request)

    async def set_preference(
        self, request: memory_pb2.SetPreferenceRequest
    ) -> memory_pb2.Preferences:
        return await self._admin("SetPreference", self._stub.SetPreference, request)

    async def delete_preference(
        self, request: memory_pb2.DeletePreferenceRequest
    ) -> memory_pb2.Preferences:
        return await self._admin("DeletePreference", self._stub.DeletePreference, request)

    async def search_memories(
        self, request: memory_pb2.SearchMemoriesRequest
    ) -> memory_pb2.SearchMemoriesResponse:
        return await self._admin("SearchMemories", self._stub.SearchMemories, request)

    async def list_memories(
        self, request: memory_pb2.ListMemoriesRequest
    ) -> memory_pb2.ListMemoriesResponse:
        return await self._admin("ListMemories", self._stub.ListMemories, request)

    async def add_memory(self, request: memory_pb2.AddMemoryRequest) -> memory_pb2.Memory:
        return await self._admin("AddMemory", self._stub.AddMemory, request)

    async def update_memory(self, request: memory_pb2.UpdateMemoryRequest) -> memory_pb2.Memory:
        return await self._admin("UpdateMemory", self._stub.UpdateMemory, request)

    async def delete_memory(
        self, request: memory_pb2.DeleteMemoryRequest
    ) -> memory_pb2.DeleteMemoryResponse:
        return await self._admin("DeleteMemory", self._stub.DeleteMemory, request)

    async def forget_user(
        self, request: memory_pb2.ForgetUserRequest
    ) -> memory_pb2.ForgetUserResponse:
        return await self._admin("ForgetUser", self._stub.ForgetUser, request)

    async def get_stats(self, request: memory_pb2.GetStatsRequest) -> memory_pb2.GetStatsResponse:
        return await self._admin("GetStats", self._stub.GetStats, request)

    async def export_user(self, user_id: str) -> AsyncIterator[memory_pb2.ExportUserChunk]:
        """The export stream; errors become :class:`ApiError`."""
        method = "ExportUser"
        try:
            self._admit(method, user_id)
        except MemoryUnavailable as exc:
            raise ApiError(
                503,
                "memory_unavailable",
                f"the memory service is unavailable ({exc.reason})",
                headers={"Retry-After": "5"},
            ) from exc
        call = self._stub.ExportUser(
            memory_pb2.ExportUserRequest(user_id=user_id),
            timeout=self.admin_timeout_s,
            metadata=self._metadata(),
        )
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as err:
            m.MEMORY_CALLS.labels(method, err.code().name).inc()
            self._failed(method, user_id, err)
            raise from_grpc(err) from err
        except _CLIENT_ERRORS as exc:
            m.MEMORY_CALLS.labels(method, "CLIENT_ERROR").inc()
            self.breakers.abandon(method, user_id)
            log.warning("memory call failed in the gRPC client", exc_info=True)
            raise ApiError(
                503,
                "memory_unavailable",
                "the memory service is unavailable (client_error)",
                headers={"Retry-After": "5"},
            ) from exc
        except asyncio.CancelledError:
            self.breakers.abandon(method, user_id)
            raise
        m.MEMORY_CALLS.labels(method, "OK").inc()
        self.breakers.record_success(method, user_id)

    async def serving(self, timeout_s: float = 1.0) -> bool:
        """True when the memory service's gRPC health says SERVING."""
        try:
            resp = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout_s
            )
        except (grpc.aio.AioRpcError, *_CLIENT_ERRORS):
            return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
