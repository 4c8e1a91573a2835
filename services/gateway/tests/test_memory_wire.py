"""The memory wire (ADR 0032): the gateway's unary calls over framed TCP, answered by the
same handlers as gRPC, with the same statuses, and gRPC when the wire cannot be reached."""

from __future__ import annotations

import asyncio
import socket
import struct

import grpc
import httpx
import pytest
from mnemo.memory.v1 import memory_pb2
from mnemo_common import wire
from mnemo_common.testing.procs import free_port
from mnemo_gateway.core import metrics as m
from mnemo_gateway.memory.client import MemoryClient
from mnemo_gateway.memory.wire import WireChannel

PREPARE = "/mnemo.memory.v1.MemoryService/PrepareTurn"


def _client(memory_server, wire_addr: str, token: str | None = None) -> MemoryClient:
    return MemoryClient(
        memory_server.address,
        timeout_s=10,
        admin_timeout_s=10,
        breaker_failures=5,
        breaker_cooldown_s=60,
        token=token,
        wire_addr=wire_addr,
    )


def _wire_connections(memory_server) -> int:
    return len(memory_server.handles.wire._connections)


def test_the_gateway_fixture_talks_to_memory_over_the_wire(memory_server, gateway_factory):
    gw = gateway_factory(memory_server.address)
    before = _wire_connections(memory_server)
    r = httpx.post(
        gw.url + "/v1/chat",
        json={"prompt": "My dog is called Rex.", "user_id": "wire-u", "thread_id": "wire-t"},
        timeout=30,
    )
    assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "ok"), r.text
    assert _wire_connections(memory_server) == before + 1
    # the turn was stored by the same handlers: the thread lists it (over the wire too)
    r = httpx.get(gw.url + "/v1/users/wire-u/threads", timeout=30)
    assert r.status_code == 200 and "wire-t" in r.text, r.text
    assert _wire_connections(memory_server) == before + 1


async def test_statuses_and_trailers_are_the_grpc_ones(memory_server):
    channel = WireChannel(memory_server.wire_address)
    try:
        ok = await channel.call(
            PREPARE,
            memory_pb2.PrepareTurnRequest(user_id="w1", thread_id="t1", query="hello"),
            memory_pb2.PrepareTurnResponse,
            timeout=10,
            metadata=(("x-request-id", "wire-rid-1"),),
        )
        assert ok.thread_id == "t1"
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.call(
                PREPARE,
                memory_pb2.PrepareTurnRequest(user_id="", thread_id="t1", query="hello"),
                memory_pb2.PrepareTurnResponse,
                timeout=10,
                metadata=(("x-request-id", "wire-rid-2"),),
            )
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "user_id" in (info.value.details() or "")
        # the service answered: its trailer carries the request id (breaker verdicts)
        assert ("x-request-id", "wire-rid-2") in tuple(info.value.trailing_metadata())
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.call(
                "/mnemo.memory.v1.MemoryService/NoSuchMethod",
                memory_pb2.PrepareTurnRequest(),
                memory_pb2.PrepareTurnResponse,
                timeout=10,
            )
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await channel.call(
                "/mnemo.memory.v1.MemoryService/ExportUser",
                memory_pb2.ExportUserRequest(user_id="w1"),
                memory_pb2.ExportUserChunk,
                timeout=10,
            )
        assert info.value.code() is grpc.StatusCode.UNIMPLEMENTED
        assert "gRPC" in (info.value.details() or "")
    finally:
        await channel.aclose()


async def test_concurrent_calls_share_one_connection(memory_server):
    channel = WireChannel(memory_server.wire_address)
    before = _wire_connections(memory_server)
    try:
        answers = await asyncio.gather(
            *(
                channel.call(
                    PREPARE,
                    memory_pb2.PrepareTurnRequest(user_id=f"c{i}", thread_id=f"t{i}", query="q"),
                    memory_pb2.PrepareTurnResponse,
                    timeout=20,
                )
                for i in range(40)
            )
        )
        assert [a.thread_id for a in answers] == [f"t{i}" for i in range(40)]
        assert _wire_connections(memory_server) == before + 1
    finally:
        await channel.aclose()


async def test_an_unreachable_wire_falls_back_to_grpc(memory_server):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    client = _client(memory_server, dead)
    before = m.MEMORY_WIRE_FALLBACKS._value.get()
    try:
        for i in range(3):
            response = await client.prepare_turn(
                memory_pb2.PrepareTurnRequest(user_id="fb", thread_id="fb", query=f"q{i}")
            )
            assert response.thread_id == "fb"
        # one failed connect, then gRPC for FALLBACK_S without trying again
        assert m.MEMORY_WIRE_FALLBACKS._value.get() == before + 1
    finally:
        await client.aclose()


async def test_the_token_is_required_on_the_wire_too(memory_server_factory, memory_settings):
    server = memory_server_factory(
        settings=memory_settings(server={"auth_token": "s3cret"}), longterm=None
    )
    request = memory_pb2.PrepareTurnRequest(user_id="tok", thread_id="tok", query="hi")
    channel = WireChannel(server.wire_address)
    try:
        for metadata in ((), (("authorization", "Bearer wrong"),)):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await channel.call(
                    PREPARE, request, memory_pb2.PrepareTurnResponse, timeout=10, metadata=metadata
                )
            assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        ok = await channel.call(
            PREPARE,
            request,
            memory_pb2.PrepareTurnResponse,
            timeout=10,
            metadata=(("authorization", "Bearer s3cret"),),
        )
        assert ok.thread_id == "tok"
    finally:
        await channel.aclose()


def _raw(memory_server) -> socket.socket:
    host, port = memory_server.wire_address.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _read_frame(sock: socket.socket) -> tuple[dict, bytes]:
    data = b""
    while len(data) < wire.PREFIX_BYTES:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before an answer"
        data += chunk
    rest, _, head_len = wire.split_prefix(data[: wire.PREFIX_BYTES])
    body = data[wire.PREFIX_BYTES :]
    while len(body) < rest:
        body += sock.recv(65536)
    return wire.decode_body(body, head_len)


def test_garbage_closes_only_its_connection(memory_server):
    with _raw(memory_server) as sock:
        sock.sendall(struct.pack(">IIH", 10, 1, 200) + b"x" * 4)  # header longer than frame
        assert sock.recv(100) == b""  # closed
    with _raw(memory_server) as sock:
        sock.sendall(wire.encode(7, {"m": 5, "t": "soon"}, b""))
        header, _ = _read_frame(sock)
        assert header["c"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        # the same connection still serves a good call
        request = memory_pb2.PrepareTurnRequest(user_id="g", thread_id="g", query="hi")
        sock.sendall(wire.encode(8, {"m": PREPARE, "t": 10}, request.SerializeToString()))
        header, payload = _read_frame(sock)
        assert header["c"] == 0
        assert memory_pb2.PrepareTurnResponse.FromString(payload).thread_id == "g"


def test_an_oversized_request_is_refused_naming_the_limit(memory_server_factory, memory_settings):
    server = memory_server_factory(
        settings=memory_settings(server={"max_receive_message_bytes": 4096}), longterm=None
    )
    with _raw(server) as sock:
        sock.sendall(wire.encode(3, {"m": PREPARE, "t": 10}, b"\n" + b"x" * 10_000)[:200])
        header, _ = _read_frame(sock)
        assert header["c"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        assert "SERVER__MAX_RECEIVE_MESSAGE_BYTES" in header["d"]


def test_a_non_utf8_string_is_invalid_argument_naming_the_field(memory_server):
    good = memory_pb2.PrepareTurnRequest(user_id="u8", thread_id="u8", query="hi")
    raw = good.SerializeToString().replace(b"hi", b"\xff\xfe")
    with _raw(memory_server) as sock:
        sock.sendall(wire.encode(4, {"m": PREPARE, "t": 10}, raw))
        header, _ = _read_frame(sock)
    assert header["c"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "query" in header["d"]
