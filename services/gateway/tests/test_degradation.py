"""Memory service down or slow → answers continue, marked degraded; back → memory resumes
without restarting the gateway. The circuit breaker opens and closes by itself."""

from __future__ import annotations

import socket

import grpc
import httpx
from mnemo.memory.v1 import memory_pb2, memory_pb2_grpc
from mnemo_common.testing.procs import wait_for
from mnemo_gateway.chat.prompt import PREFERENCES_TITLE
from mnemo_memory.testing.memory_server import MemoryServiceProcess


def warm_up(proc: MemoryServiceProcess) -> None:
    """Wait until recall is ready (the embedding model loaded): before that, turns are
    answered without recall and honestly marked degraded."""
    wait_for(lambda: proc.health("mnemo.memory.v1.Recall") == "SERVING", 120, "recall ready")
    with grpc.insecure_channel(proc.address) as channel:
        memory_pb2_grpc.MemoryServiceStub(channel).PrepareTurn(
            memory_pb2.PrepareTurnRequest(user_id="warmup", thread_id="warmup", query="hi"),
            timeout=120,
        )


def chat(gw, prompt: str) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/chat",
        timeout=30,
        json={"prompt": prompt, "user_id": "dee", "thread_id": "th-deg"},
    )


def metric(gw, name: str) -> float:
    """Sum of the samples whose name+labels start with ``name`` (metrics are per process)."""
    total = 0.0
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


DEGRADED = "mnemo_gateway_degraded_answers_total"
BREAKER_OPEN = DEGRADED + '{reason="breaker_open"}'
BREAKER_STATE = "mnemo_gateway_memory_breaker_state"


def test_memory_killed_mid_conversation_then_restarted(
    gateway_factory, memory_settings, tmp_path, fake_anthropic
):
    settings = memory_settings()
    proc = MemoryServiceProcess(settings, log_dir=tmp_path).start()
    try:
        warm_up(proc)
        gw = gateway_factory(
            proc.address,
            gateway={"memory_timeout_s": 2.0, "breaker_failures": 2, "breaker_cooldown_s": 0.5},
        )
        httpx.put(gw.url + "/v1/users/dee/preferences/name", json={"value": "Dee"})
        r = chat(gw, "first")
        assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "ok")
        assert "name: Dee" in fake_anthropic.last_system_prompt()

        proc.kill()
        degraded_before, open_before = metric(gw, DEGRADED), metric(gw, BREAKER_OPEN)
        for i in range(4):  # beyond the breaker threshold
            fake_anthropic.enqueue_text(f"stateless answer {i}")
            r = chat(gw, f"while down {i}")
            assert r.status_code == 200
            assert r.headers["x-mnemo-memory"] == "degraded"
            assert r.json()["response"] == f"stateless answer {i}"
            assert r.json()["committed"] is False
            assert PREFERENCES_TITLE not in fake_anthropic.last_system_prompt()
        assert metric(gw, DEGRADED) - degraded_before == 4
        assert metric(gw, BREAKER_OPEN) - open_before >= 1  # the breaker stopped the waiting
        assert metric(gw, BREAKER_STATE) in (1.0, 2.0)  # open or half-open
        # control endpoints say so instead of hanging
        r = httpx.get(gw.url + "/v1/users/dee/preferences")
        assert (r.status_code, r.json()["error"]["code"]) == (503, "memory_unavailable")
        r = httpx.get(gw.url + "/readyz")
        assert r.status_code == 503 and r.json()["checks"]["memory"] is False

        proc = MemoryServiceProcess(settings, log_dir=tmp_path, port=proc.port).start()
        warm_up(proc)
        wait_for(
            lambda: chat(gw, "back?").headers["x-mnemo-memory"] == "ok",
            30,
            "memory to resume through the same gateway",
        )
        assert "name: Dee" in fake_anthropic.last_system_prompt()
        assert metric(gw, BREAKER_STATE) == 0.0  # closed again by itself
        msgs = httpx.get(gw.url + "/v1/users/dee/threads/th-deg").json()["messages"]
        contents = [m["content"] for m in msgs]
        assert contents[0] == "first"
        assert not any(c.startswith("while down") for c in contents)  # nothing half-stored
        assert httpx.get(gw.url + "/readyz").status_code == 200
    finally:
        proc.stop()


def test_memory_that_never_answers_costs_one_deadline(gateway_factory, fake_anthropic):
    # a port that accepts connections but never speaks gRPC: every call hits the deadline
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        gw = gateway_factory(
            f"127.0.0.1:{silent.getsockname()[1]}",
            gateway={"memory_timeout_s": 0.3, "breaker_failures": 1, "breaker_cooldown_s": 60},
        )
        degraded_before, open_before = metric(gw, DEGRADED), metric(gw, BREAKER_OPEN)
        for _ in range(3):
            r = chat(gw, "anyone there?")
            assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "degraded")
        assert metric(gw, DEGRADED) - degraded_before == 3
        assert metric(gw, BREAKER_OPEN) - open_before == 2  # later requests did not wait
    finally:
        silent.close()
