"""``/readyz?memory=optional`` (the chart's default readiness path) keeps a gateway Ready
while the memory service is down, because it still answers (degraded); plain ``/readyz``
does not; the closed rate-limit mode, which refuses turns without memory, needs memory."""

from __future__ import annotations

import httpx
from mnemo_common.testing.procs import free_port

OPTIONAL = "/readyz?memory=optional"


def test_memory_down_keeps_the_optional_readiness_and_the_answers(gateway_factory) -> None:
    # nothing listens at this address: the memory service is down
    gw = gateway_factory(f"127.0.0.1:{free_port()}", gateway={"memory_timeout_s": 0.3})
    strict = httpx.get(gw.url + "/readyz")
    assert strict.status_code == 503
    assert strict.json()["checks"]["memory"] is False
    lenient = httpx.get(gw.url + OPTIONAL)
    assert lenient.status_code == 200
    # the body still tells the truth about memory
    assert lenient.json() == {"status": "ready", "checks": {"llm": True, "memory": False}}
    # and the gateway does serve what that readiness promises
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi", "user_id": "u1"}, timeout=30)
    assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "degraded")


def test_closed_rate_limit_mode_still_needs_memory(gateway_factory) -> None:
    gw = gateway_factory(
        f"127.0.0.1:{free_port()}",
        gateway={"memory_timeout_s": 0.3, "rate_limit_fail_mode": "closed"},
    )
    assert httpx.get(gw.url + OPTIONAL).status_code == 503
    # that is what a turn gets there: refused, not answered
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi", "user_id": "u1"}, timeout=30)
    assert r.status_code == 503


def test_an_unknown_memory_mode_is_refused_naming_the_parameter(gateway_factory) -> None:
    gw = gateway_factory(f"127.0.0.1:{free_port()}")
    r = httpx.get(gw.url + "/readyz?memory=maybe")
    assert r.status_code == 422
    assert "memory" in r.text
