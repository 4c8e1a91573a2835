"""The memory wire's server side (ADR 0032): unary RPCs over framed TCP, same handlers.

Listens on ``SERVER__WIRE_PORT`` beside the gRPC port and dispatches every request frame to
the very handler gRPC would run — found through the registrar (:class:`ErrorMapping`), so
the error mapping, request ids, deadline, metrics and the servicer's own checks are the
ones of the gRPC path. Per call it does what the gRPC server does and nothing more:

* ``SERVER__AUTH_TOKEN`` is checked before any handler runs (UNAUTHENTICATED otherwise;
  health stays open, as on gRPC);
* an unknown method → UNIMPLEMENTED; a streaming one → UNIMPLEMENTED (gRPC serves those);
* a request larger than ``SERVER__MAX_RECEIVE_MESSAGE_BYTES`` → RESOURCE_EXHAUSTED, and the
  connection is closed (its remaining bytes are not read);
* while draining (SIGTERM) new calls → UNAVAILABLE; calls in flight finish within the grace.

Bytes that are not this protocol close the connection; nothing else is affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NamedTuple

import grpc
from mnemo_common import wire

from mnemo_memory.interceptors import OPEN_METHOD_PREFIXES, UNAUTHENTICATED, TokenAuthInterceptor

log = logging.getLogger(__name__)


class _Metadatum(NamedTuple):
    key: str
    value: str


class _Abort(Exception):
    """A handler's ``context.abort``: the status to answer with."""


class WireContext:
    """The parts of ``grpc.aio.ServicerContext`` the memory service's handlers use."""

    __slots__ = ("_deadline", "_metadata", "code", "details", "peer_name", "trailing")

    def __init__(self, metadata: tuple[_Metadatum, ...], deadline: float | None, peer: str):
        self._metadata = metadata
        self._deadline = deadline
        self.peer_name = peer
        self.code = grpc.StatusCode.OK
        self.details = ""
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[_Metadatum, ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailing = tuple((str(k), str(v)) for k, v in metadata)

    def peer(self) -> str:
        return self.peer_name

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()
    ) -> None:
        self.code = code
        self.details = details
        if trailing_metadata:
            self.set_trailing_metadata(trailing_metadata)
        raise grpc.aio.AbortError(f"{code.name}: {details}")


class WireServer:
    """``await WireServer(registrar, ...).start(host, port)`` → the bound port."""

    def __init__(
        self,
        registrar: Any,
        *,
        auth_token: Any = None,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._registrar = registrar
        self._auth = TokenAuthInterceptor(auth_token) if auth_token else None
        self._max = max_message_bytes
        self._server: asyncio.Server | None = None
        self._draining = False
        self._inflight: set[asyncio.Task[Any]] = set()
        self._connections: set[asyncio.StreamWriter] = set()
        self._handlers: dict[str, Any] = {}

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._connection, host, port, reuse_port=False)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self, grace: float) -> None:
        """Refuse new calls (UNAVAILABLE), let those in flight finish within ``grace``."""
        self._draining = True
        if self._server is not None:
            self._server.close()
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=grace)
        for task in list(self._inflight):
            task.cancel()
        for writer in list(self._connections):
            writer.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        peer_name = f"wire:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "wire"
        self._connections.add(writer)
        try:
            while True:
                prefix = await reader.readexactly(wire.PREFIX_BYTES)
                rest, call_id, head_len = wire.split_prefix(prefix)
                if rest - head_len > self._max:
                    self._answer(
                        writer,
                        call_id,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"request of {rest - head_len} bytes exceeds the limit of {self._max}"
                        " (SERVER__MAX_RECEIVE_MESSAGE_BYTES)",
                    )
                    await writer.drain()
                    return
                body = await reader.readexactly(rest)
                header, payload = wire.decode_body(body, head_len)
                task = asyncio.create_task(self._call(writer, call_id, header, payload, peer_name))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away
        except wire.FrameError as exc:
            log.warning("memory wire: closing a connection that sent %s", exc)
        finally:
            self._connections.discard(writer)
            writer.close()

    def _answer(
        self,
        writer: asyncio.StreamWriter,
        call_id: int,
        code: grpc.StatusCode,
        details: str = "",
        trailing: tuple[tuple[str, str], ...] = (),
        payload: bytes = b"",
    ) -> None:
        if writer.is_closing():
            return
        header = {"c": code.value[0], "d": details, "tr": [list(t) for t in trailing]}
        writer.write(wire.encode(call_id, header, payload))

    def _handler(self, method: str) -> Any:
        handler = self._handlers.get(method)
        if handler is None:
            handler = self._registrar.lookup(method)
            if handler is not None:
                self._handlers[method] = handler
        return handler

    async def _call(
        self,
        writer: asyncio.StreamWriter,
        call_id: int,
        header: dict[str, Any],
        payload: bytes,
        peer: str,
    ) -> None:
        try:
            method = header.get("m")
            metadata = tuple(_Metadatum(k, v) for k, v in wire.metadata_pairs(header.get("md")))
            timeout = header.get("t")
            if not isinstance(method, str) or not (
                timeout is None or (isinstance(timeout, int | float) and timeout >= 0)
            ):
                raise wire.FrameError("request header needs a method and a timeout")
        except wire.FrameError as exc:
            self._answer(writer, call_id, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return
        if self._draining:
            self._answer(writer, call_id, grpc.StatusCode.UNAVAILABLE, "the server is draining")
            return
        name = method.rsplit("/", 1)[-1]
        if (
            self._auth is not None
            and not method.startswith(OPEN_METHOD_PREFIXES)
            and not self._auth.authorized(metadata)
        ):
            UNAUTHENTICATED.labels(name).inc()
            self._answer(
                writer,
                call_id,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing or wrong bearer token (authorization metadata; SERVER__AUTH_TOKEN)",
            )
            return
        handler = self._handler(method)
        if handler is None or handler.unary_unary is None:
            what = "is served over gRPC only" if handler is not None else "is not a method"
            self._answer(writer, call_id, grpc.StatusCode.UNIMPLEMENTED, f"{method} {what}")
            return
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        context = WireContext(metadata, deadline, peer)
        try:
            request = handler.request_deserializer(payload)
            response = await handler.unary_unary(request, context)
            body = handler.response_serializer(response)
        except grpc.aio.AbortError:
            self._answer(writer, call_id, context.code, context.details, context.trailing)
            return
        except Exception:  # the wrapped handler maps everything; this is a bug guard
            log.exception("memory wire: %s failed outside the error mapping", method)
            self._answer(writer, call_id, grpc.StatusCode.INTERNAL, "internal error")
            return
        self._answer(writer, call_id, grpc.StatusCode.OK, "", context.trailing, body)
