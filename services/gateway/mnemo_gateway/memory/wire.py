"""The memory wire's client side (ADR 0032): the gateway's unary calls as framed TCP.

:class:`WireChannel` is a drop-in for a grpc.aio unary-unary call: ``await
channel.call(path, request, response_type, timeout=..., metadata=...)`` returns the
response message or raises ``grpc.aio.AioRpcError`` exactly as the gRPC call would —
the service's statuses with its trailing metadata (so :class:`MemoryClient`'s breakers
tell "the service answered" from "no answer" as before), and the client's own
DEADLINE_EXCEEDED / UNAVAILABLE with no trailers when there was no answer.

One connection, opened on first use, carries every concurrent call (call ids). If it
cannot be opened at all (nothing listens on ``GATEWAY__MEMORY_WIRE_ADDR``: an older
memory service, a port not published), the caller falls back to gRPC for
``FALLBACK_S`` seconds (:class:`WireUnreachable`) — a request already sent is never sent
again on the other transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from mnemo_common import wire

log = logging.getLogger(__name__)

Resp = TypeVar("Resp", bound=ProtoMessage)

#: seconds the gRPC path is used after the wire could not be connected
FALLBACK_S = 5.0
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class WireUnreachable(Exception):
    """The wire could not be connected; nothing was sent (the caller uses gRPC)."""


def _rpc_error(
    code: grpc.StatusCode, details: str, trailing: tuple[tuple[str, str], ...] = ()
) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details
    )


class WireChannel:
    """A multiplexed connection to the memory service's wire port."""

    def __init__(self, addr: str, *, connect_timeout_s: float = 1.0) -> None:
        host, _, port = addr.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"GATEWAY__MEMORY_WIRE_ADDR must be host:port, got {addr!r}")
        self.addr = addr
        self._host = host.strip("[]")
        self._port = int(port)
        self._connect_timeout_s = connect_timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[tuple[dict[str, Any], bytes]]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self._down_until = 0.0
        self._closed = False

    @property
    def usable(self) -> bool:
        """False while a failed connect sends calls to gRPC (``FALLBACK_S``)."""
        return not self._closed and (
            self._writer is not None or time.monotonic() >= self._down_until
        )

    async def _connect(self) -> asyncio.StreamWriter:
        writer = self._writer
        if writer is not None and not writer.is_closing():
            return writer
        async with self._lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            try:
                reader, opened = await asyncio.wait_for(
                    asyncio.open_connection(self._host, self._port), self._connect_timeout_s
                )
            except (OSError, TimeoutError) as exc:
                self._down_until = time.monotonic() + FALLBACK_S
                log.warning(
                    "memory wire %s unreachable (%s): using gRPC for %.0f s",
                    self.addr,
                    exc,
                    FALLBACK_S,
                )
                raise WireUnreachable(str(exc)) from exc
            self._writer = opened
            self._reader_task = asyncio.create_task(self._read(reader, opened))
            return opened

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reason = "connection to the memory wire closed"
        try:
            while True:
                prefix = await reader.readexactly(wire.PREFIX_BYTES)
                rest, call_id, head_len = wire.split_prefix(prefix)
                body = await reader.readexactly(rest)
                future = self._pending.pop(call_id, None)
                if future is not None and not future.done():
                    future.set_result(wire.decode_body(body, head_len))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except wire.FrameError as exc:
            reason = f"the memory wire sent a malformed frame ({exc})"
            log.error("%s; reconnecting", reason)
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()
            pending, self._pending = self._pending, {}
            for future in pending.values():
                if not future.done():
                    future.set_exception(_rpc_error(grpc.StatusCode.UNAVAILABLE, reason))

    async def call(
        self,
        method: str,
        request: ProtoMessage,
        response_type: type[Resp],
        *,
        timeout: float | None,  # noqa: ASYNC109 - the gRPC call's deadline, sent along
        metadata: tuple[tuple[str, str], ...] = (),
    ) -> Resp:
        """The unary call ``method`` (``/package.Service/Method``); see the module doc."""
        writer = await self._connect()
        call_id = next(self._ids) & 0xFFFFFFFF
        future: asyncio.Future[tuple[dict[str, Any], bytes]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[call_id] = future
        header = {"m": method, "md": [list(item) for item in metadata], "t": timeout}
        try:
            writer.write(wire.encode(call_id, header, request.SerializeToString()))
            async with asyncio.timeout(timeout):
                head, payload = await future
        except TimeoutError:
            raise _rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from None
        except ConnectionError as exc:  # the transport closed under us
            raise _rpc_error(grpc.StatusCode.UNAVAILABLE, f"memory wire: {exc}") from exc
        finally:
            self._pending.pop(call_id, None)
        status = head.get("c")
        code = _CODES.get(status, grpc.StatusCode.UNKNOWN) if isinstance(status, int) else None
        code = code or grpc.StatusCode.UNKNOWN
        trailing = tuple(wire.metadata_pairs(head.get("tr")))
        if code is not grpc.StatusCode.OK:
            raise _rpc_error(code, str(head.get("d") or ""), trailing)
        response = response_type()
        try:
            response.ParseFromString(payload)
        except DecodeError as exc:
            raise _rpc_error(grpc.StatusCode.INTERNAL, f"unparsable response: {exc}") from exc
        return response

    async def aclose(self) -> None:
        self._closed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader_task
