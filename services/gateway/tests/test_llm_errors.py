"""LLM failures become 502/503/504 with the provider's reason (memory-less gateway; the
"nothing stored" half is in tests/integration/test_chat_memory.py)."""

from __future__ import annotations

import anthropic
import httpx
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
    fake_anthropic.enqueue_error(529)
    client = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as s,
    ):
        list(s.text_stream)
    assert info.value.status_code == 503
    assert info.value.body["error"]["code"] == "llm_overloaded"


def test_failure_mid_stream_is_an_error_event(gw, fake_anthropic):
    fake_anthropic.enqueue_stream_failure("partial answer")
    with httpx.stream("POST", gw.url + "/v1/chat", json={"prompt": "hi", "stream": True}) as r:
        assert r.status_code == 200
        body = r.read().decode()
    assert "event: delta" in body
    assert "event: error" in body
    assert "event: done" not in body
