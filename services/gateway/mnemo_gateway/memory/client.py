"""Async client of the memory service over the generated stub.

Every call carries a deadline and the request id; only failures that mean "the service is
not answering" (UNAVAILABLE, DEADLINE_EXCEEDED: down, unreachable, too slow) feed a circuit
breaker so a dead memory service costs one fast check per request, not a deadline each.
Any other status is an answer about that one request (INVALID_ARGUMENT, NOT_FOUND,
PERMISSION_DENIED, RESOURCE_EXHAUSTED, and INTERNAL/UNKNOWN too: a server-side failure on
that request's data) and never trips it — otherwise one user's bad requests would switch
memory off for everybody. On the chat path INTERNAL/UNKNOWN still degrade the turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message as ProtoMessage
from grpc_health.v1 import health_pb2, health_pb2_grpc
from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc
from mnemo_common.logging import request_id_var

from ..core import metrics as m
from ..core.errors import ApiError, from_grpc
from .breaker import BreakerState, CircuitBreaker

log = logging.getLogger(__name__)

R = TypeVar("R", bound=ProtoMessage)

SERVICE_NAME = "mnemo.memory.v1.MemoryService"

#: statuses that say the service (not the request) is in trouble: the only breaker failures
_HEALTH_FAILURES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: server-side failures of one request: a chat turn is answered without memory (degraded),
#: but the breaker does not count them
_DEGRADE_ONLY = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
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
    ) -> None:
        self.addr = addr
        self.timeout_s = timeout_s
        self.admin_timeout_s = admin_timeout_s
        self.breaker = CircuitBreaker(
            breaker_failures, breaker_cooldown_s, on_change=self._breaker_changed
        )
        m.BREAKER_STATE.set(0)
        self._channel = grpc.aio.insecure_channel(addr, options=_CHANNEL_OPTIONS)
        self._stub = memory_pb2_grpc.MemoryServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def aclose(self) -> None:
        await self._channel.close()

    def _breaker_changed(self, state: BreakerState) -> None:
        m.BREAKER_STATE.set(int(state))
        log.warning(
            "memory circuit breaker %s",
            state.name.lower().replace("_", "-"),
            extra={"memory_addr": self.addr},
        )

    @staticmethod
    def _metadata() -> tuple[tuple[str, str], ...]:
        rid = request_id_var.get()
        return (("x-request-id", rid),) if rid else ()

    async def _call(self, method: str, request: ProtoMessage, deadline_s: float) -> Any:
        """Call ``method`` through the breaker; raises MemoryUnavailable or AioRpcError."""
        if not self.breaker.allow():
            m.MEMORY_CALLS.labels(method, "BREAKER_OPEN").inc()
            raise MemoryUnavailable("breaker_open", "memory service circuit breaker is open")
        start = time.perf_counter()
        try:
            response = await getattr(self._stub, method)(
                request, timeout=deadline_s, metadata=self._metadata()
            )
        except grpc.aio.AioRpcError as err:
            m.MEMORY_CALLS.labels(method, err.code().name).inc()
            if err.code() in _HEALTH_FAILURES:
                self.breaker.record_failure()
                raise MemoryUnavailable(err.code().name.lower(), err.details() or "") from err
            self.breaker.release()
            raise
        except _CLIENT_ERRORS as exc:
            # grpc failed on our side (e.g. metadata it refuses): not a verdict of the service
            m.MEMORY_CALLS.labels(method, "CLIENT_ERROR").inc()
            self.breaker.abandon()
            log.warning("memory call failed in the gRPC client", exc_info=True)
            raise MemoryUnavailable("client_error", f"{type(exc).__name__}: {exc}") from exc
        except asyncio.CancelledError:
            self.breaker.abandon()  # a half-open probe that never finished frees its slot
            raise
        finally:
            m.MEMORY_LATENCY.labels(method).observe(time.perf_counter() - start)
        m.MEMORY_CALLS.labels(method, "OK").inc()
        self.breaker.record_success()
        return response

    # --- chat path: raises MemoryUnavailable (the caller degrades) or AioRpcError ----------

    async def _chat_call(self, method: str, request: ProtoMessage) -> Any:
        try:
            return await self._call(method, request, self.timeout_s)
        except grpc.aio.AioRpcError as err:
            if err.code() in _DEGRADE_ONLY:
                raise MemoryUnavailable(err.code().name.lower(), err.details() or "") from err
            raise

    async def prepare_turn(
        self, request: memory_pb2.PrepareTurnRequest
    ) -> memory_pb2.PrepareTurnResponse:
        return await self._chat_call("PrepareTurn", request)  # type: ignore[no-any-return]

    async def commit_turn(
        self, request: memory_pb2.CommitTurnRequest
    ) -> memory_pb2.CommitTurnResponse:
        return await self._chat_call("CommitTurn", request)  # type: ignore[no-any-return]

    # --- control path: every failure becomes an ApiError ----------------------------------

    async def admin(self, method: str, request: ProtoMessage) -> Any:
        """Call a control RPC; errors become :class:`ApiError` (503 when unreachable)."""
        try:
            return await self._call(method, request, self.admin_timeout_s)
        except MemoryUnavailable as exc:
            raise ApiError(
                503,
                "memory_unavailable",
                f"the memory service is unavailable ({exc.reason})",
                headers={"Retry-After": "5"},
            ) from exc
        except grpc.aio.AioRpcError as err:
            raise from_grpc(err) from err

    async def export_user(self, user_id: str) -> AsyncIterator[memory_pb2.ExportUserChunk]:
        """The export stream; errors become :class:`ApiError`."""
        if not self.breaker.allow():
            raise ApiError(
                503,
                "memory_unavailable",
                "the memory service is unavailable",
                headers={"Retry-After": "5"},
            )
        call = self._stub.ExportUser(
            memory_pb2.ExportUserRequest(user_id=user_id),
            timeout=self.admin_timeout_s,
            metadata=self._metadata(),
        )
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as err:
            m.MEMORY_CALLS.labels("ExportUser", err.code().name).inc()
            if err.code() in _HEALTH_FAILURES:
                self.breaker.record_failure()
            else:
                self.breaker.release()
            raise from_grpc(err) from err
        except _CLIENT_ERRORS as exc:
            m.MEMORY_CALLS.labels("ExportUser", "CLIENT_ERROR").inc()
            self.breaker.abandon()
            log.warning("memory call failed in the gRPC client", exc_info=True)
            raise ApiError(
                503,
                "memory_unavailable",
                "the memory service is unavailable (client_error)",
                headers={"Retry-After": "5"},
            ) from exc
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        m.MEMORY_CALLS.labels("ExportUser", "OK").inc()
        self.breaker.record_success()

    async def serving(self, timeout_s: float = 1.0) -> bool:
        """True when the memory service's gRPC health says SERVING."""
        try:
            resp = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=timeout_s
            )
        except (grpc.aio.AioRpcError, *_CLIENT_ERRORS):
            return False
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)
