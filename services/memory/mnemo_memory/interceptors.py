"""The one place where domain errors become gRPC status codes.

Every unary RPC — short-term, long-term, whatever a servicer mixin adds, health too — is
registered through :class:`ErrorMapping` (``ErrorMapping(server).add(add_fn, servicer)``),
which wraps its handler once, at registration, so that it also: sets the request id (gRPC
metadata ``x-request-id``, generated when absent) for the logs and echoes it in trailing
metadata; applies the caller's deadline to the handler (→ DEADLINE_EXCEEDED); turns a
request that fails to parse because a string is not UTF-8 into INVALID_ARGUMENT naming the
field; and records latency/outcome metrics. Unknown exceptions → INTERNAL with the request
id, logged with the traceback. It is not a ``grpc.aio.ServerInterceptor``: grpc.aio runs an
interceptor chain as coroutines on every call to find a handler whose wrapping never
changes per method (ADR 0031); wrapped at registration, a call pays only for the wrapper.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import grpc
from google.protobuf.descriptor import FieldDescriptor
from mnemo_common import metrics
from mnemo_common.logging import request_id_var
from redis import exceptions as redis_errors

from mnemo_memory import errors

log = logging.getLogger(__name__)

RPC_SECONDS = metrics.histogram(
    "mnemo_memory_rpc_duration_seconds", "Memory service RPC latency", ("method", "code")
)
UNAUTHENTICATED = metrics.counter(
    "mnemo_memory_rpc_unauthenticated_total",
    "RPCs refused because they lacked the SERVER__AUTH_TOKEN bearer token",
    ("method",),
)
RPC_ERRORS = metrics.counter(
    "mnemo_memory_rpc_errors_total",
    "Memory service RPCs that failed, by status code",
    ("method", "code"),
)

_REDIS_DOWN = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.ClusterDownError,
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,
    ConnectionError,
)

_DOMAIN_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (errors.InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFoundError, grpc.StatusCode.NOT_FOUND),
    (errors.PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (errors.RateLimitedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (errors.ConflictError, grpc.StatusCode.ABORTED),
    (errors.ModelMismatchError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ErasedError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
]


class UnparsableRequest:
    """Stands in for a request whose bytes did not parse; the handler never sees it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def find_invalid_utf8(data: bytes, descriptor: Any) -> str | None:
    """Dotted name of the first string field of ``data`` that is not UTF-8, if any."""
    pos = 0
    try:
        while pos < len(data):
            key, pos = _varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, pos = _varint(data, pos)
            elif wire_type == 1:
                pos += 8
            elif wire_type == 5:
                pos += 4
            elif wire_type == 2:
                length, pos = _varint(data, pos)
                chunk, pos = data[pos : pos + length], pos + length
                fd = descriptor.fields_by_number.get(number)
                if fd is None:
                    continue
                if fd.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return str(fd.name)
                elif fd.type == FieldDescriptor.TYPE_MESSAGE:
                    inner = find_invalid_utf8(chunk, fd.message_type)
                    if inner:
                        return f"{fd.name}.{inner}"
            else:
                return None
    except IndexError:
        return None
    return None


def _safe_deserializer(deserialize: Callable[[bytes], Any] | None) -> Any:
    if deserialize is None:
        return None
    descriptor = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # any parse failure is the client's bad request
            field = find_invalid_utf8(data, descriptor) if descriptor is not None else None
            if field:
                return UnparsableRequest(field, "is not valid UTF-8")
            return UnparsableRequest("request", "could not be parsed")

    return parse


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status code and message for an exception raised by a handler."""
    for kind, code in _DOMAIN_CODES:
        if isinstance(exc, kind):
            return code, str(exc)
    if isinstance(exc, _REDIS_DOWN):
        return grpc.StatusCode.UNAVAILABLE, "redis unavailable"
    if isinstance(exc, redis_errors.OutOfMemoryError):
        # maxmemory reached under noeviction: refuse loudly, callers degrade
        return grpc.StatusCode.UNAVAILABLE, "redis is out of memory (maxmemory reached)"
    if isinstance(exc, redis_errors.ReadOnlyError):  # a replica after failover, briefly
        return grpc.StatusCode.UNAVAILABLE, "redis is read-only (failover in progress?)"
    if isinstance(exc, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    return grpc.StatusCode.INTERNAL, ""


def handler_budget(context: Any) -> float | None:
    """Seconds the handler may run: the caller's deadline less a small margin, so a slow
    store is answered as DEADLINE_EXCEEDED *by the service* (with its trailing metadata)
    before the caller's own deadline fires — the gateway then knows the service is up and
    only this request's store is slow (ADR 0014). None: the caller set no deadline."""
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return None
    return max(0.0, remaining - min(0.1, remaining * 0.1))


def _request_id(context: Any) -> str:
    for item in context.invocation_metadata() or ():
        if item.key == "x-request-id" and item.value:
            return str(item.value)[:128]
    return uuid.uuid4().hex


async def _fail(context: Any, exc: BaseException, rid: str, method: str) -> grpc.StatusCode:
    code, message = status_for(exc)
    trailing: list[tuple[str, str]] = [("x-request-id", rid)]
    if isinstance(exc, errors.RateLimitedError):
        trailing.append(("retry-after", str(exc.retry_after_s)))
    if code is grpc.StatusCode.INTERNAL:
        log.exception("unhandled error in %s", method, extra={"rpc": method})
        message = f"internal error (request id {rid})"
    elif code is grpc.StatusCode.UNAVAILABLE:
        log.warning("%s: %s", method, message, extra={"rpc": method})
    context.set_trailing_metadata(tuple(trailing))
    RPC_ERRORS.labels(method, code.name).inc()
    await context.abort(code, message)
    return code  # pragma: no cover - abort raises


def wrap_handler(handler: Any, method: str) -> Any:
    """``handler`` (a ``grpc.RpcMethodHandler``) with the mapping of the module docstring;
    client-streaming handlers are returned as they are (the service has none of its own)."""
    if handler is None or handler.request_streaming:
        return handler
    deserializer = _safe_deserializer(handler.request_deserializer)
    if handler.unary_unary is not None:
        return handler._replace(
            request_deserializer=deserializer,
            unary_unary=_wrap_unary(handler.unary_unary, method),
        )
    if handler.unary_stream is not None:
        return handler._replace(
            request_deserializer=deserializer,
            unary_stream=_wrap_stream(handler.unary_stream, method),
        )
    return handler


class _CallDetails(NamedTuple):
    """What a generic handler is asked with (``grpc.HandlerCallDetails``'s fields)."""

    method: str
    invocation_metadata: tuple[Any, ...]


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come back wrapped, built once per method."""

    _CACHE_LIMIT = 256  # the registered services' methods are a fixed set

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._wrapped: dict[str, Any] = {}

    def service(self, handler_call_details: Any) -> Any:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            wrapped = wrap_handler(handler, method.rsplit("/", 1)[-1])
            if len(self._wrapped) < self._CACHE_LIMIT:
                self._wrapped[method] = wrapped
        return wrapped


class ErrorMapping:
    """Registers services on ``server`` with their handlers wrapped (module docstring):
    ``ErrorMapping(server).add(memory_pb2_grpc.add_MemoryServiceServicer_to_server,
    servicer)``; code that takes a server to register on (reflection) can be given this
    object instead."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._registered: dict[str, Any] = {}  # full method path -> wrapped handler
        self._generic: list[_WrappedGenericHandler] = []

    def lookup(self, method: str) -> Any:
        """The wrapped handler of ``method`` (``/package.Service/Method``), as gRPC would
        find it — the memory wire (ADR 0032) dispatches through this; None if unknown."""
        handler = self._registered.get(method)
        if handler is not None:
            return handler
        details = _CallDetails(method, ())
        for generic in self._generic:
            handler = generic.service(details)
            if handler is not None:
                return handler
        return None

    def add(self, add_to_server: Callable[[Any, Any], None], servicer: Any) -> None:
        """Call a generated ``add_XServicer_to_server(servicer, server)`` through this."""
        add_to_server(servicer, self)

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        wrapped = tuple(_WrappedGenericHandler(h) for h in handlers)
        self._generic.extend(wrapped)
        self._server.add_generic_rpc_handlers(wrapped)

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, Any]) -> None:
        # registered handlers take precedence over generic ones: they must be wrapped too
        wrapped = {name: wrap_handler(h, name) for name, h in handlers.items()}
        for name, handler in wrapped.items():
            self._registered[f"/{service_name}/{name}"] = handler
        self._server.add_registered_method_handlers(service_name, wrapped)


def _wrap_unary(behavior: Any, method: str) -> Any:
    ok_seconds = RPC_SECONDS.labels(method, "OK")  # the common case, looked up once

    async def wrapped(request: Any, context: Any) -> Any:
        rid = _request_id(context)
        token = request_id_var.set(rid)
        start = time.perf_counter()
        code = "OK"
        try:
            if isinstance(request, UnparsableRequest):
                raise errors.InvalidArgumentError(request.field, request.reason)
            async with asyncio.timeout(handler_budget(context)):  # None: no deadline
                response = await behavior(request, context)
            context.set_trailing_metadata((("x-request-id", rid),))
            return response
        except grpc.aio.AbortError:
            code = "ABORTED_BY_HANDLER"
            raise
        except Exception as exc:  # mapped to a status, never swallowed
            code = status_for(exc)[0].name
            await _fail(context, exc, rid, method)
            raise
        finally:
            seconds = ok_seconds if code == "OK" else RPC_SECONDS.labels(method, code)
            seconds.observe(time.perf_counter() - start)
            request_id_var.reset(token)

    return wrapped


def _wrap_stream(behavior: Any, method: str) -> Any:
    async def wrapped(request: Any, context: Any) -> Any:
        rid = _request_id(context)
        token = request_id_var.set(rid)
        start = time.perf_counter()
        code = "OK"
        try:
            if isinstance(request, UnparsableRequest):
                raise errors.InvalidArgumentError(request.field, request.reason)
            result = behavior(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            else:
                await result
            context.set_trailing_metadata((("x-request-id", rid),))
        except grpc.aio.AbortError:
            code = "ABORTED_BY_HANDLER"
            raise
        except Exception as exc:  # mapped to a status, never swallowed
            code = status_for(exc)[0].name
            await _fail(context, exc, rid, method)
            raise
        finally:
            RPC_SECONDS.labels(method, code).observe(time.perf_counter() - start)
            with contextlib.suppress(ValueError):  # generators may finish in another context
                request_id_var.reset(token)

    return wrapped


#: methods anyone may call: kubelet's gRPC probes cannot send a token
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/",)


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Every RPC but health must carry ``authorization: Bearer <SERVER__AUTH_TOKEN>``
    (compared in constant time); others are refused with UNAUTHENTICATED before any
    handler runs. Reflection, when enabled, needs the token too."""

    def __init__(self, token: Any) -> None:
        secret = token.get_secret_value() if hasattr(token, "get_secret_value") else str(token)
        self._expected = f"Bearer {secret}".encode()

    def authorized(self, metadata: Any) -> bool:
        for item in metadata or ():
            if item.key == "authorization":
                value = item.value if isinstance(item.value, str) else item.value.decode()
                return hmac.compare_digest(value.encode(), self._expected)
        return False

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_METHOD_PREFIXES):
            return handler
        if self.authorized(handler_call_details.invocation_metadata):
            return handler
        return _refusing(handler, method.rsplit("/", 1)[-1])


def _refusing(handler: Any, method: str) -> Any:
    """A handler of the same shape that answers UNAUTHENTICATED."""

    async def refuse(request: Any, context: Any) -> Any:
        UNAUTHENTICATED.labels(method).inc()
        await context.abort(
            grpc.StatusCode.UNAUTHENTICATED,
            "missing or wrong bearer token (authorization metadata; SERVER__AUTH_TOKEN)",
        )

    args = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse, **args)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse, **args)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse, **args)
    return grpc.unary_unary_rpc_method_handler(refuse, **args)
