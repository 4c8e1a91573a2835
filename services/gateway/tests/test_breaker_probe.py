"""A half-open probe that never finishes (its caller was cancelled) frees the probe slot:
otherwise the breaker would refuse every call until the gateway restarts."""

from __future__ import annotations

import asyncio
import socket

import pytest
from mnemo.memory.v1 import memory_pb2
from mnemo_gateway.memory.breaker import BreakerState
from mnemo_gateway.memory.client import MemoryClient, MemoryUnavailable


async def test_cancelled_probe_frees_the_half_open_slot():
    silent = socket.socket()  # accepts connections, never speaks gRPC: calls hit the deadline
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    now = [0.0]
    client = MemoryClient(
        f"127.0.0.1:{silent.getsockname()[1]}",
        timeout_s=0.3,
        admin_timeout_s=0.3,
        breaker_failures=1,
        breaker_cooldown_s=60,
        clock=lambda: now[0],
    )
    request = memory_pb2.PrepareTurnRequest(user_id="u1", thread_id="t1", query="hi")
    try:
        client.breaker.record_failure()  # as after a failed call (the channel stays fresh)
        assert client.breaker.state is BreakerState.OPEN
        now[0] += 60  # the cooldown passes
        assert client.breaker.state is BreakerState.HALF_OPEN
        probe = asyncio.create_task(client.prepare_turn(request))
        for _ in range(500):  # until the probe is admitted and waits for its answer
            if client.breaker.probe_in_flight:
                break
            await asyncio.sleep(0.001)
        assert client.breaker.probe_in_flight
        assert not probe.done()
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        # the next call is the probe again (it reaches for the service), not refused at once
        with pytest.raises(MemoryUnavailable) as info:
            await client.prepare_turn(request)
        assert info.value.reason in ("deadline_exceeded", "unavailable"), info.value.reason
    finally:
        await client.aclose()
        silent.close()
