"""One memory service behind gateways of different auth modes: the memory-service user id
names the mode, the tenant and the user, so no identity of one mode or tenant can name
another's data (an api-key tenant's `victim` is not a JWT `sub` of `tenantB.victim`)."""

from __future__ import annotations

import random
import string
import time

import httpx
import jwt
import pytest
from mnemo_common.ids import is_valid_id
from mnemo_gateway.core.auth import AuthMode, Identity, decode_user_id, encode_user_id

SECRET = "identity-test-secret-with-enough-entropy-0123"


def bearer(sub: str) -> dict[str, str]:
    tok = jwt.encode({"sub": sub, "exp": int(time.time()) + 600}, SECRET, "HS256")
    return {"Authorization": f"Bearer {tok}"}


@pytest.fixture
def gateways(gateway_factory, memory_server, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("k-b tenantB\nk-a tenantA\n")
    return {
        "api-key": gateway_factory(
            memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
        ),
        "jwt": gateway_factory(memory_server.address, auth={"mode": "jwt", "jwt_secret": SECRET}),
        "none": gateway_factory(memory_server.address),
    }


def victim_data(gw, headers: dict[str, str], user: str) -> dict[str, object]:
    """What ``user`` (as the credential sees it) has: preferences, threads, memories."""
    base = f"{gw.url}/v1/users/{user}"
    out: dict[str, object] = {}
    out["prefs"] = httpx.get(base + "/preferences", headers=headers).json()["values"]
    out["threads"] = [
        t["thread_id"] for t in httpx.get(base + "/threads", headers=headers).json()["threads"]
    ]
    out["memories"] = [
        m["text"] for m in httpx.get(base + "/memories", headers=headers).json()["memories"]
    ]
    out["thread"] = httpx.get(base + "/threads/trip", headers=headers).status_code
    out["stats"] = httpx.get(base + "/stats", headers=headers).json()["threads"]
    export = httpx.get(base + "/export", headers=headers, timeout=30).json()
    out["export"] = "penicillin" in str(export)
    return out


def test_no_identity_of_one_mode_or_tenant_reaches_another(gateways, fake_anthropic):
    key_gw, jwt_gw, none_gw = gateways["api-key"], gateways["jwt"], gateways["none"]
    b = {"x-api-key": "k-b"}
    r = httpx.post(
        key_gw.url + "/v1/chat",
        headers=b,
        json={"prompt": "I am allergic to penicillin", "user_id": "victim", "thread_id": "trip"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["committed"] is True
    httpx.put(key_gw.url + "/v1/users/victim/preferences/plan", headers=b, json={"value": "gold"})
    httpx.post(
        key_gw.url + "/v1/users/victim/memories",
        headers=b,
        json={"text": "Victim takes penicillin"},
    )
    own = victim_data(key_gw, b, "victim")
    assert own["prefs"] == {"plan": "gold"} and own["threads"] == ["trip"] and own["export"]
    assert own["memories"] and own["thread"] == 200 and own["stats"] == 1
    # the export speaks the caller's ids, not the namespaced ones
    export = httpx.get(key_gw.url + "/v1/users/victim/export", headers=b, timeout=30).json()
    assert export["user_id"] == "victim"
    assert {t["user_id"] for t in export["sections"]["thread"]} == {"victim"}
    assert "tenantB" not in str(export)

    nothing = {
        "prefs": {},
        "threads": [],
        "memories": [],
        "thread": 404,
        "stats": 0,
        "export": False,
    }
    # every spelling a JWT subject could use to name api-key tenant B's victim
    for sub in ("tenantB.victim", "k.tenantB.victim", "victim", "n.victim", "j.victim"):
        assert victim_data(jwt_gw, bearer(sub), "me") == nothing, sub
    # another tenant's key, naming the user in every way it could
    for user in ("victim", "tenantB.victim", "k.tenantB.victim"):
        assert victim_data(key_gw, {"x-api-key": "k-a"}, user) == nothing, user
    # an unauthenticated (none) gateway on the same memory service
    for user in ("victim", "tenantB.victim", "k.tenantB.victim"):
        assert victim_data(none_gw, {}, user) == nothing, user
    # and the other way: a JWT user's data is not an api-key user's
    httpx.put(
        jwt_gw.url + "/v1/users/me/preferences/plan", headers=bearer("alice"), json={"value": "jwt"}
    )
    for user in ("alice", "j.alice"):
        r = httpx.get(f"{key_gw.url}/v1/users/{user}/preferences", headers={"x-api-key": "k-a"})
        assert r.json()["values"] == {}


def _identities() -> list[tuple[AuthMode, str | None, str]]:
    """Identities built to collide under a naive join (dots and mode tags everywhere),
    plus a seeded random sample of the id alphabet."""
    tenants = ["a", "k", "j", "n", "tenantB", "t-1", "x_y"]
    users = ["victim", "a.b", ".", "..", "k.a", "tenantB.victim", "j.x", "n", "@+-_.", "b.a"]
    rnd = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "._@+-"
    users += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 12))) for _ in range(60)]
    found: list[tuple[AuthMode, str | None, str]] = []
    for user in users:
        found += [(AuthMode.NONE, None, user), (AuthMode.JWT, None, user)]
        found += [(AuthMode.API_KEY, t, user) for t in tenants]
    return found


def test_the_encoding_is_injective_reversible_and_a_valid_id() -> None:
    identities = _identities()
    encoded: dict[str, tuple[AuthMode, str | None, str]] = {}
    for ident in identities:
        value = encode_user_id(*ident)
        assert is_valid_id(value), value
        assert decode_user_id(value) == ident
        assert encoded.setdefault(value, ident) == ident, (value, ident, encoded[value])
    assert len(encoded) == len(set(identities))
    for bad in ("victim", "x.victim", "k.victim", "k..v", "j.", "k.a b.c"):
        assert decode_user_id(bad) is None, bad


def test_ids_too_long_for_the_namespace_are_refused_naming_the_field(gateways) -> None:
    key_gw, jwt_gw = gateways["api-key"], gateways["jwt"]
    r = httpx.get(f"{key_gw.url}/v1/users/{'u' * 120}/preferences", headers={"x-api-key": "k-b"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "user_id"
    assert "at most 118 characters" in r.json()["error"]["message"]
    r = httpx.get(f"{jwt_gw.url}/v1/users/me/preferences", headers=bearer("s" * 127))
    assert r.status_code == 401 and "longer than 126" in r.json()["error"]["message"]
    ident = Identity(AuthMode.API_KEY, tenant="tenantB")
    assert ident.public_user_id(ident.memory_user_id("victim")) == "victim"
