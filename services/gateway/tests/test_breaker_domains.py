"""The circuit breaker is per failure domain (ADR 0014), not one switch for every user:
failures the memory service reports for one user's requests (its store failing for them)
stop only that user's calls of that kind; only a service that does not answer at all opens
the breaker everybody shares."""

from __future__ import annotations

import httpx
from mnemo_common.testing.procs import free_port
from mnemo_gateway.memory.breaker import BreakerSet, BreakerState

CALLS = "mnemo_gateway_memory_calls_total"


def metric(gw, name: str) -> float:
    total = 0.0
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def add_memory(gw, user: str) -> httpx.Response:
    return httpx.post(
        gw.url + f"/v1/users/{user}/memories", json={"text": "I like tea"}, timeout=30
    )


def test_a_store_failing_for_one_user_does_not_switch_memory_off_for_everyone(
    memory_server_factory, memory_settings, gateway_factory
):
    """Chroma is down: AddMemory fails (UNAVAILABLE, sent by the service). After two,
    alice's AddMemory calls stop at her breaker; bob's still reach the service, and every
    chat keeps its short-term memory and is stored (one global breaker used to open and
    answer everybody's chats without memory, unstored)."""
    settings = memory_settings(
        chromadb_url=f"http://127.0.0.1:{free_port()}", shortterm={"recall_timeout_s": 1.0}
    )
    server = memory_server_factory(settings)
    gw = gateway_factory(server.address, gateway={"breaker_failures": 2, "breaker_cooldown_s": 60})
    reached = CALLS + '{code="UNAVAILABLE",method="AddMemory"}'
    stopped = CALLS + '{code="STORE_BREAKER_OPEN",method="AddMemory"}'
    for _ in range(4):
        r = add_memory(gw, "alice")
        assert (r.status_code, r.json()["error"]["code"]) == (503, "memory_unavailable")
    assert (metric(gw, reached), metric(gw, stopped)) == (2, 2)
    assert metric(gw, "mnemo_gateway_memory_breaker_state") == 0  # the shared one: closed
    assert add_memory(gw, "bob").status_code == 503
    assert metric(gw, reached) == 3  # bob's call went to the service
    for user in ("alice", "bob"):
        r = httpx.post(
            gw.url + "/v1/chat",
            json={"prompt": "hello", "user_id": user, "thread_id": f"t-{user}"},
            timeout=30,
        )
        doc = r.json()
        assert (doc["memory"], doc["missing"], doc["committed"]) == (
            "degraded",
            ["vector_store"],
            True,
        ), doc


def test_breaker_set_domains_with_a_clock():
    now = [0.0]
    bs = BreakerSet(2, 10.0, max_store_domains=3, clock=lambda: now[0])
    for _ in range(2):
        assert bs.allow("PrepareTurn", "a") is None
        bs.record_store_failure("PrepareTurn", "a")
    assert bs.allow("PrepareTurn", "a") == "store"
    assert bs.allow("CommitTurn", "a") is None  # another kind of call
    assert bs.allow("PrepareTurn", "b") is None  # another user
    assert bs.service.state is BreakerState.CLOSED
    now[0] = 11.0  # cooldown over: one probe for alice, success forgets the domain
    assert bs.allow("PrepareTurn", "a") is None
    assert bs.allow("PrepareTurn", "a") == "store"  # the probe slot is taken
    bs.record_success("PrepareTurn", "a")
    assert bs.allow("PrepareTurn", "a") is None and bs.open_store_domains() == 0
    for user in "cdefg":  # bounded: old domains are evicted
        bs.record_store_failure("PrepareTurn", user)
    assert len(bs._stores) == 3
    # the service not answering opens the shared breaker for everybody
    bs.record_service_failure("PrepareTurn", "x")
    bs.record_service_failure("PrepareTurn", "y")
    assert bs.allow("PrepareTurn", "z") == "service"
