"""LLM failures become 502/503/504 with the provider's reason — or 400 when the provider
refused the request itself (memory-less gateway; the "nothing stored" half is in
tests/integration/test_chat_memory.py)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest


@pytest.fixture
def gw(gateway_factory):
    return gateway_factory(None, llm={"max_retries": 0, "timeout_s": 0.5})


@pytest.mark.parametrize(
    ("status", "expected", "code"),
    [
        (429, 503, "llm_rate_limited"),
        (529, 503, "llm_overloaded"),
        (500, 502, "llm_unavailable"),
        (401, 502, "llm_auth_failed"),
    ],
)
def test_llm_error_status(gw, fake_anthropic, status, expected, code):
    fake_anthropic.enqueue_error(status, message="upstream said no")
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi"})
    assert r.status_code == expected
    e = r.json()["error"]
    assert e["code"] == code
    assert "upstream said no" in e["message"]


def test_llm_rate_limit_passes_retry_after(gw, fake_anthropic):
    fake_anthropic.enqueue_error(429, retry_after=7)
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi"})
    assert r.status_code == 503
    assert r.headers["retry-after"] == "7"


def test_llm_timeout_is_504(gw, fake_anthropic):
    fake_anthropic.set_delay(3)
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi"}, timeout=30)
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "llm_timeout"


def test_streamed_request_failing_before_first_token_gets_http_status(gw, fake_anthropic):
    """A drop-in stream the upstream refuses gets the upstream's status and body as sent."""
    fake_anthropic.enqueue_error(529)
    client = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as s,
    ):
        list(s.text_stream)
    assert info.value.status_code == 529
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_failure_mid_stream_is_an_error_event(gw, fake_anthropic):
    fake_anthropic.enqueue_stream_failure("partial answer")
    with httpx.stream("POST", gw.url + "/v1/chat", json={"prompt": "hi", "stream": True}) as r:
        assert r.status_code == 200
        body = r.read().decode()
    assert "event: delta" in body
    assert "event: error" in body
    assert "event: done" not in body


# --- the provider refusing the request itself (the client's mistake) ----------------------


@pytest.mark.parametrize("status", [400, 413, 422])
def test_llm_refusing_the_request_keeps_its_status_and_body_on_drop_in(gw, fake_anthropic, status):
    """The pass-through returns the upstream's refusal as it sent it (same status, same
    body): the SDK raises the error it would raise against the vendor, and does not retry."""
    client = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=2)
    for stream in (False, True):
        fake_anthropic.enqueue_error(status, message="max_tokens: 20000 > 8192")
        with pytest.raises(anthropic.APIStatusError) as info:
            if stream:
                with client.messages.stream(
                    model="m", max_tokens=20_000, messages=[{"role": "user", "content": "hi"}]
                ) as s:
                    list(s.text_stream)
            else:
                client.messages.create(
                    model="m", max_tokens=20_000, messages=[{"role": "user", "content": "hi"}]
                )
        assert info.value.status_code == status
        body = info.value.body
        assert body["type"] == "error"
        assert body["error"] == {
            "type": fake_anthropic.default_error_type(status),
            "message": "max_tokens: 20000 > 8192",
        }
    assert len(fake_anthropic.chat_requests()) == 2  # the SDK did not retry


def test_llm_refusing_the_request_is_400_on_chat(gw, fake_anthropic):
    """/v1/chat (Mnemo's own shape) maps an upstream refusal to 400 llm_bad_request."""
    fake_anthropic.enqueue_error(400, message="max_tokens: 20000 > 8192")
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "llm_bad_request")
    assert "max_tokens: 20000 > 8192" in r.json()["error"]["message"]


def test_llm_refusing_the_request_on_the_openai_endpoint(gateway_factory, fake_openai):
    gw = gateway_factory(None, llm_fake=fake_openai, llm={"max_retries": 0})
    fake_openai.enqueue_error(400, message="max_tokens is too large")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=2)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="m", max_tokens=20_000, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 400
    assert info.value.type == "invalid_request_error"
    assert info.value.code == "invalid_request_error"  # the upstream's body, as sent
    assert "max_tokens is too large" in info.value.message
    assert len(fake_openai.chat_requests()) == 1
    fake_openai.enqueue_error(422, message="bad temperature")
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "llm_bad_request")


def test_upstream_refusing_the_gateways_key_is_502_not_401(gw, fake_anthropic):
    """A 401 from the upstream is about the gateway's key: the client must not be told
    its own credential is wrong."""
    fake_anthropic.enqueue_error(401, message="invalid x-api-key")
    r = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (502, "llm_auth_failed")


def test_llm_not_knowing_the_model_stays_a_gateway_error(gw, fake_anthropic):
    # the gateway's configured model or base URL: not something the client can fix
    fake_anthropic.enqueue_error(404, message="model: claude-nope")
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi"})
    assert (r.status_code, r.json()["error"]["code"]) == (502, "llm_error")
    assert "model: claude-nope" in r.json()["error"]["message"]


@pytest.mark.parametrize("content", ["", "   ", []])
def test_empty_last_user_message_is_422_before_the_llm(gw, fake_anthropic, content):
    r = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]},
    )
    assert r.status_code == 422, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["field"]) == (
        "invalid_request",
        "messages",
    )
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": content or None}]},
    )
    assert r.status_code == 422, r.text
    assert (r.json()["error"]["code"], r.json()["error"]["field"]) == (
        "invalid_request",
        "messages",
    )
    assert fake_anthropic.requests == []


def test_drop_in_upstream_timeout_is_504(gw, fake_anthropic):
    """No upstream answer at all (no status to pass on) is the gateway's 504."""
    fake_anthropic.set_delay(3)
    for stream in (False, True):
        r = httpx.post(
            gw.url + "/v1/messages",
            timeout=30,
            json={
                "model": "m",
                "max_tokens": 5,
                "stream": stream,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert (r.status_code, r.json()["error"]["code"]) == (504, "llm_timeout")
