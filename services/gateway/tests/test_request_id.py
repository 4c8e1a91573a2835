"""X-Request-Id: a safe client id is propagated; anything else is replaced, never a 500."""

from __future__ import annotations

import re

import httpx
import pytest
from mnemo.memory.v1 import memory_pb2
from mnemo_common.logging import request_id_var
from mnemo_gateway.memory.breaker import BreakerState
from mnemo_gateway.memory.client import MemoryClient, MemoryUnavailable

GENERATED = re.compile(r"[0-9a-f]{32}")


def chat(gw, **headers) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/chat",
        json={"prompt": "hi", "user_id": "rid-user", "thread_id": "rid-thread"},
        headers=headers,
        timeout=30,
    )


def test_a_safe_request_id_is_kept(gateway):
    for rid in ("abc-123", "req_01.x:y", "A" * 128, "0af7651916cd43dd8448eb211c80319c"):
        r = chat(gateway, **{"X-Request-Id": rid})
        assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "ok"), r.text
        assert r.headers["x-request-id"] == rid


UNSAFE = [b"tab\there", b"caf\xc3\xa9", b"\xff", b"A" * 129, b"has space", b"semi;colon", b""]


def test_an_unsafe_request_id_is_replaced(gateway):
    for bad in UNSAFE:
        r = chat(gateway, **{"X-Request-Id": bad})
        assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "ok"), (bad, r.text)
        assert GENERATED.fullmatch(r.headers["x-request-id"]), bad
        r = httpx.get(gateway.url + "/v1/users/rid-user/threads", headers={"X-Request-Id": bad})
        assert r.status_code == 200, (bad, r.text)


async def test_a_grpc_client_side_failure_degrades_and_leaves_the_breaker_alone():
    # grpc refuses the metadata before connecting: no server needed to see it
    client = MemoryClient(
        "127.0.0.1:1", timeout_s=2, admin_timeout_s=2, breaker_failures=1, breaker_cooldown_s=60
    )
    request = memory_pb2.PrepareTurnRequest(user_id="u1", thread_id="t1", query="hi")
    try:
        token = request_id_var.set("bad\tid")
        try:
            for _ in range(3):
                with pytest.raises(MemoryUnavailable) as info:
                    await client.prepare_turn(request)
                assert info.value.reason == "client_error"
        finally:
            request_id_var.reset(token)
        assert client.breaker.state is BreakerState.CLOSED
        # whereas a service that cannot be reached does open it
        with pytest.raises(MemoryUnavailable) as info:
            await client.prepare_turn(request)
        assert info.value.reason == "unavailable"
        assert client.breaker.state is BreakerState.OPEN
    finally:
        await client.aclose()
