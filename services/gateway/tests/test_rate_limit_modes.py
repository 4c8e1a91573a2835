"""Rate limits the way an abuser or an outage meets them (issue 11): an api-key tenant
cannot dodge the per-user limits by inventing user ids (per-tenant windows), and what
happens when the memory service — which checks the limits — is down is a setting
(``GATEWAY__RATE_LIMIT_FAIL_MODE``, default open)."""

from __future__ import annotations

import httpx
import pytest
from mnemo_common.testing.procs import free_port

ENDPOINTS = {
    "/v1/chat": lambda u: {"prompt": "hi", "user_id": u},
    "/v1/messages": lambda u: {
        "model": "m",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {"user_id": u},
    },
    "/v1/chat/completions": lambda u: {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "user": u,
    },
}


def test_a_tenant_key_cannot_dodge_user_limits_by_varying_user_ids(
    memory_server_factory, memory_settings, gateway_factory, tmp_path
):
    server = memory_server_factory(
        memory_settings(rate_limit={"per_minute": 3, "tenant_per_minute": 5}), longterm=None
    )
    keys = tmp_path / "api-keys"
    keys.write_text("k-acme acme\nk-beta beta\n")
    gw = gateway_factory(server.address, auth={"mode": "api-key", "api_keys_file": str(keys)})
    codes = []
    for i in range(8):  # a new user id every time: each is far below its own limit of 3
        path = list(ENDPOINTS)[i % 3]
        r = httpx.post(
            gw.url + path,
            headers={"x-api-key": "k-acme"},
            json=ENDPOINTS[path](f"sock-puppet-{i}"),
            timeout=30,
        )
        codes.append(r.status_code)
        if r.status_code == 429:
            assert "tenant_minute" in r.text and int(r.headers["retry-after"]) >= 1
    assert codes == [200] * 5 + [429] * 3
    # another tenant has its own window; the per-user window still applies inside one
    for i in range(4):
        r = httpx.post(
            gw.url + "/v1/chat",
            headers={"x-api-key": "k-beta"},
            json={"prompt": "hi", "user_id": "same"},
            timeout=30,
        )
        assert r.status_code == (200 if i < 3 else 429), (i, r.text)


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_memory_down_rate_limit_fail_mode(gateway_factory, mode):
    extra = {} if mode == "open" else {"rate_limit_fail_mode": "closed"}
    gw = gateway_factory(f"127.0.0.1:{free_port()}", gateway={"memory_timeout_s": 1.0, **extra})
    for path, body in ENDPOINTS.items():
        r = httpx.post(gw.url + path, json=body("dana"), timeout=30)
        if mode == "open":  # the documented default: answered, unlimited, without memory
            assert (r.status_code, r.headers["x-mnemo-memory"]) == (200, "degraded"), path
        else:
            assert r.status_code == 503, (path, r.text)
            assert r.json()["error"]["code"] == "rate_limit_unavailable", r.text
            assert r.headers["retry-after"] == "5"
    outcome = "admitted" if mode == "open" else "refused"
    line = f'mnemo_gateway_rate_limit_unchecked_total{{outcome="{outcome}"}}'
    assert line in httpx.get(gw.url + "/metrics").text
