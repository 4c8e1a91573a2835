"""With auth on, every endpoint refuses another user's data.

Routes are enumerated from the OpenAPI document, so a new route cannot be forgotten: each
one is either user-scoped (and must refuse another user) or listed in NO_USER_DATA.
"""

from __future__ import annotations

import re
import time

import anthropic
import httpx
import jwt
import pytest

SECRET = "test-secret-with-enough-entropy-0123456789"
NO_USER_DATA = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/info"),
    ("GET", "/v1/me"),
    # no user data, but a credential is still required: test_models_and_count_tokens.py
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_id}"),
}
PATH_VALUES = {"memory_id": "m1", "thread_id": "t1", "key": "k1"}
BODIES = {
    ("POST", "/v1/users/{user_id}/memories"): {"text": "a fact"},
    ("PATCH", "/v1/users/{user_id}/memories/{memory_id}"): {"text": "changed"},
    ("PUT", "/v1/users/{user_id}/preferences/{key}"): {"value": "v"},
}


def token(sub: str, **claims) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600, **claims}, SECRET, "HS256")


def chat_requests_for(user: str) -> dict[tuple[str, str], dict]:
    """Chat routes name their user in the body; each asks for ``user``'s memory."""
    return {
        ("POST", "/v1/chat"): {"prompt": "hi", "user_id": user},
        ("POST", "/v1/messages"): {
            "model": "m",
            "max_tokens": 5,
            "metadata": {"user_id": user},
            "messages": [{"role": "user", "content": "hi"}],
        },
        ("POST", "/v1/messages/count_tokens"): {
            "model": "m",
            "metadata": {"user_id": user},
            "messages": [{"role": "user", "content": "hi"}],
        },
        ("POST", "/v1/responses"): {"model": "m", "user": user, "input": "hi"},
        ("POST", "/v1/chat/completions"): {
            "model": "m",
            "user": user,
            "messages": [{"role": "user", "content": "hi"}],
        },
    }


def all_routes(gw) -> list[tuple[str, str]]:
    spec = httpx.get(gw.url + "/openapi.json").json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]


def request_for(method: str, path: str, user: str) -> tuple[str, str, dict | None]:
    filled = re.sub(
        r"\{(\w+)\}", lambda m: user if m.group(1) == "user_id" else PATH_VALUES[m.group(1)], path
    )
    body = BODIES.get((method, path)) or chat_requests_for(user).get((method, path))
    return method, filled, body


@pytest.fixture
def jwt_gateway(gateway_factory, memory_server):
    return gateway_factory(memory_server.address, auth={"mode": "jwt", "jwt_secret": SECRET})


def test_every_route_refuses_another_users_data_with_jwt(jwt_gateway, fake_anthropic):
    routes = all_routes(jwt_gateway)
    assert len(routes) >= 20
    chat_routes = set(chat_requests_for("x"))
    headers = {"Authorization": f"Bearer {token('alice')}"}
    checked = 0
    for method, path in routes:
        if (method, path) in NO_USER_DATA:
            continue
        assert "{user_id}" in path or (method, path) in chat_routes, (
            f"{method} {path} is neither user-scoped nor listed as holding no user data"
        )
        m, url, body = request_for(method, path, "bob")
        r = httpx.request(m, jwt_gateway.url + url, json=body, headers=headers)
        assert r.status_code == 403, f"{method} {path} let alice reach bob: {r.status_code}"
        assert r.json()["error"]["code"] == "forbidden"
        # and without a credential nobody gets anything
        r = httpx.request(m, jwt_gateway.url + url, json=body)
        assert r.status_code == 401, f"{method} {path} without a token: {r.status_code}"
        checked += 1
    assert checked == len(routes) - len(NO_USER_DATA)
    assert fake_anthropic.requests == []  # nothing reached the LLM


def test_jwt_user_reaches_own_data_and_sub_wins_over_the_body(jwt_gateway, fake_anthropic):
    h = {"Authorization": f"Bearer {token('alice')}"}
    assert (
        httpx.put(
            jwt_gateway.url + "/v1/users/me/preferences/color", headers=h, json={"value": "green"}
        ).status_code
        == 200
    )
    r = httpx.get(jwt_gateway.url + "/v1/users/alice/preferences", headers=h)
    assert r.status_code == 200 and r.json()["values"] == {"color": "green"}
    # no user in the body: the token's subject is the user
    r = httpx.post(jwt_gateway.url + "/v1/chat", headers=h, json={"prompt": "hi"}, timeout=30)
    assert r.status_code == 200 and r.json()["user_id"] == "alice"
    assert "color: green" in fake_anthropic.last_system_prompt()
    assert httpx.get(jwt_gateway.url + "/v1/me", headers=h).json()["user_id"] == "alice"


@pytest.mark.parametrize(
    "bad",
    [
        "not-a-jwt",
        jwt.encode(
            {"sub": "alice", "exp": int(time.time()) + 60},
            "wrong-secret-0123456789abcdef-0123456789",
            "HS256",
        ),
        jwt.encode({"sub": "alice", "exp": int(time.time()) - 60}, SECRET, "HS256"),
        jwt.encode({"exp": int(time.time()) + 60}, SECRET, "HS256"),
        jwt.encode({"sub": "bad:sub", "exp": int(time.time()) + 60}, SECRET, "HS256"),
        jwt.encode({"sub": "alice"}, SECRET, "HS256"),  # never expires
    ],
)
def test_bad_tokens_are_401(jwt_gateway, bad):
    r = httpx.get(
        jwt_gateway.url + "/v1/users/me/preferences", headers={"Authorization": f"Bearer {bad}"}
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_token"
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.fixture
def key_gateway(gateway_factory, memory_server, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("# key tenant [user]\nk-acme acme\nk-other other\nk-carol acme carol\n")
    return gateway_factory(
        memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
    )


def test_api_keys_isolate_tenants(key_gateway, fake_anthropic):
    acme = {"x-api-key": "k-acme"}
    other = {"Authorization": "Bearer k-other"}
    r = httpx.post(
        key_gateway.url + "/v1/chat",
        headers=acme,
        json={"prompt": "acme secret", "user_id": "x", "thread_id": "th-acme"},
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["user_id"] == "x"
    httpx.put(
        key_gateway.url + "/v1/users/x/preferences/plan", headers=acme, json={"value": "gold"}
    )
    # the same user name in another tenant is another user
    r = httpx.get(key_gateway.url + "/v1/users/x/preferences", headers=other)
    assert r.status_code == 200 and r.json()["values"] == {}
    r = httpx.get(key_gateway.url + "/v1/users/x/threads/th-acme", headers=other)
    assert r.status_code == 404
    # the other tenant's x may use the same thread name: its own thread, acme's untouched
    r = httpx.post(
        key_gateway.url + "/v1/chat",
        headers=other,
        json={"prompt": "other tenant", "user_id": "x", "thread_id": "th-acme"},
        timeout=30,
    )
    assert r.status_code == 200 and "acme secret" not in fake_anthropic.last_system_prompt()
    r = httpx.get(key_gateway.url + "/v1/users/x/threads", headers=acme)
    assert [t["thread_id"] for t in r.json()["threads"]] == ["th-acme"]
    assert r.json()["threads"][0]["message_count"] == 2
    assert r.json()["threads"][0]["user_id"] == "x"  # the tenant prefix stays internal


def test_pinned_key_and_unknown_key(key_gateway, fake_anthropic):
    r = httpx.get(key_gateway.url + "/v1/users/dave/preferences", headers={"x-api-key": "k-carol"})
    assert r.status_code == 403
    r = httpx.get(key_gateway.url + "/v1/users/carol/preferences", headers={"x-api-key": "k-carol"})
    assert r.status_code == 200
    r = httpx.get(key_gateway.url + "/v1/users/carol/preferences", headers={"x-api-key": "nope"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")


def test_anthropic_sdk_authenticates_with_its_api_key(key_gateway, fake_anthropic):
    fake_anthropic.enqueue_text("authenticated answer")
    client = anthropic.Anthropic(
        base_url=key_gateway.url, api_key="k-carol", max_retries=0, timeout=30
    )
    msg = client.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.content[0].text == "authenticated answer"
    bad = anthropic.Anthropic(base_url=key_gateway.url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])


def test_keys_never_appear_in_logs(key_gateway, caplog):
    httpx.get(key_gateway.url + "/v1/users/x/preferences", headers={"x-api-key": "k-acme"})
    httpx.get(key_gateway.url + "/v1/users/x/preferences", headers={"x-api-key": "k-leaked"})
    assert "k-acme" not in caplog.text and "k-leaked" not in caplog.text


def test_tokens_without_expiry_only_when_allowed(gateway_factory, memory_server):
    gw = gateway_factory(
        memory_server.address,
        auth={"mode": "jwt", "jwt_secret": SECRET, "jwt_require_exp": False},
    )
    forever = jwt.encode({"sub": "svc-1"}, SECRET, "HS256")
    r = httpx.get(gw.url + "/v1/me", headers={"Authorization": f"Bearer {forever}"})
    assert r.status_code == 200 and r.json()["user_id"] == "svc-1"
