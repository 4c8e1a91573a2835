"""The user id fields of the drop-in endpoints: malformed is a 422 naming the field (never a
500 the SDKs retry), and OpenAI's ``safety_identifier`` names the user like ``user``."""

from __future__ import annotations

import time

import anthropic
import httpx
import jwt
import openai
import pytest

SECRET = "test-secret-with-enough-entropy-0123456789"
NOT_STRINGS = [12345, 3.5, True, ["ada"], {"id": "ada"}]


@pytest.fixture
def stateless(gateway_factory):
    return gateway_factory(None)


def messages_body(**extra):
    return {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], **extra}


def completions_body(**extra):
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def assert_names(r: httpx.Response, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field, r.text
    assert field in r.json()["error"]["message"]


@pytest.mark.parametrize("value", NOT_STRINGS, ids=lambda v: type(v).__name__)
def test_a_non_string_user_id_is_422_naming_the_field(stateless, fake_anthropic, value):
    url = stateless.url
    r = httpx.post(url + "/v1/messages", json=messages_body(metadata={"user_id": value}))
    assert_names(r, "metadata.user_id")
    r = httpx.post(url + "/v1/chat/completions", json=completions_body(user=value))
    assert_names(r, "user")
    r = httpx.post(url + "/v1/chat/completions", json=completions_body(safety_identifier=value))
    assert_names(r, "safety_identifier")
    assert fake_anthropic.requests == []  # refused before any LLM call


@pytest.mark.parametrize("bad", ["has space", "a:b", "x" * 129, "a/b"])
def test_malformed_id_strings_are_422_naming_their_field(stateless, fake_anthropic, bad):
    url = stateless.url
    r = httpx.post(url + "/v1/messages", json=messages_body(metadata={"user_id": bad}))
    assert_names(r, "metadata.user_id")
    r = httpx.post(url + "/v1/chat/completions", json=completions_body(safety_identifier=bad))
    assert_names(r, "safety_identifier")
    for path, body in (
        ("/v1/messages", messages_body()),
        ("/v1/chat/completions", completions_body()),
    ):
        r = httpx.post(url + path, json=body, headers={"X-Mnemo-User-Id": bad})
        assert_names(r, "X-Mnemo-User-Id")
        r = httpx.post(url + path, json=body, headers={"X-Mnemo-Thread-Id": bad})
        assert_names(r, "X-Mnemo-Thread-Id")
        r = httpx.post(url + path, json=body, headers={"Idempotency-Key": bad})
        assert_names(r, "idempotency_key")
    assert fake_anthropic.requests == []


def test_the_sdks_get_a_422_not_a_retried_500(stateless, fake_anthropic):
    a = anthropic.Anthropic(base_url=stateless.url, api_key="x", max_retries=2)
    with pytest.raises(anthropic.UnprocessableEntityError) as err:
        a.messages.create(**messages_body(metadata={"user_id": 42}))
    assert err.value.body["error"]["field"] == "metadata.user_id"
    o = openai.OpenAI(base_url=stateless.url + "/v1", api_key="x", max_retries=2)
    with pytest.raises(openai.UnprocessableEntityError) as err:
        o.chat.completions.create(**completions_body(user=42))
    with pytest.raises(openai.UnprocessableEntityError):
        o.chat.completions.create(**completions_body(), extra_body={"safety_identifier": 42})
    assert fake_anthropic.requests == []


def thread_of(gw, **fields) -> str:
    r = httpx.post(gw.url + "/v1/chat/completions", json=completions_body(**fields))
    assert r.status_code == 200, r.text
    return r.headers["x-mnemo-thread-id"]


def test_safety_identifier_names_the_user_after_user(stateless, fake_anthropic):
    """``user`` first, then ``safety_identifier``, then ``X-Mnemo-User-Id`` (the thread of a
    conversation is scoped to its user, so equal threads mean the same user)."""
    ada = thread_of(stateless, user="ada")
    assert thread_of(stateless, safety_identifier="ada") == ada
    assert thread_of(stateless, safety_identifier="bob") != ada
    assert thread_of(stateless, user="ada", safety_identifier="bob") == ada
    assert thread_of(stateless, user="", safety_identifier="ada") == ada


def test_safety_identifier_is_checked_against_the_credential(
    gateway_factory, memory_server, fake_anthropic
):
    gw = gateway_factory(memory_server.address, auth={"mode": "jwt", "jwt_secret": SECRET})
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, "HS256")
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json=completions_body(safety_identifier="bob"),
        headers=headers,
    )
    assert r.status_code == 403 and r.json()["error"]["field"] == "safety_identifier"
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json=completions_body(safety_identifier="alice"),
        headers=headers,
        timeout=30,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("field", ["user_id", "thread_id", "idempotency_key"])
def test_the_seed_chat_endpoint_names_a_non_string_id_too(stateless, fake_anthropic, field):
    r = httpx.post(stateless.url + "/v1/chat", json={"prompt": "hi", field: 12345})
    assert_names(r, field)
    assert fake_anthropic.requests == []
