"""The fake LLM servers themselves: what other suites rely on when they script them."""

from __future__ import annotations

import threading

import anthropic
import httpx
import openai
from mnemo_common.testing.fake_llm import FakeAnthropicServer, split_chunks


def test_sync_sdk_client_works_outside_any_event_loop(fake_anthropic):
    client = anthropic.Anthropic(api_key="k", base_url=fake_anthropic.url, max_retries=0)
    try:
        reply = client.messages.create(
            model="claude-test",
            max_tokens=50,
            system=[{"type": "text", "text": "Block one. "}, {"type": "text", "text": "Two."}],
            messages=[{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
        )
    finally:
        client.close()

    assert reply.content[0].text == "fake reply to: hi there"  # deterministic default
    assert fake_anthropic.last_system_prompt() == "Block one. Two."
    assert fake_anthropic.last_user_message() == "hi there"


def test_replies_are_consumed_in_order_then_the_default_returns(fake_openai):
    client = openai.OpenAI(api_key="k", base_url=fake_openai.url, max_retries=0)
    fake_openai.enqueue_text("first")
    fake_openai.enqueue_json({"n": 2})
    fake_openai.set_default_reply(lambda body: f"{len(body['messages'])} messages")

    def ask() -> str:
        response = client.chat.completions.create(
            model="m",
            messages=[{"role": "system", "content": "S"}, {"role": "user", "content": "q"}],
        )
        return response.choices[0].message.content or ""

    try:
        assert [ask(), ask(), ask()] == ["first", '{"n": 2}', "2 messages"]
    finally:
        client.close()
    assert fake_openai.last_system_prompt() == "S"
    assert len(fake_openai.chat_requests()) == 3


def test_reset_forgets_everything_and_releases_held_streams():
    server = FakeAnthropicServer().start()
    try:
        server.enqueue_error(500)
        server.set_delay(30)
        server.set_default_reply("custom")
        gate = server.hold_stream()
        server.stream_chunks = 9

        server.reset()

        assert gate.is_set()
        assert server.requests == []
        response = httpx.post(
            f"{server.url}/v1/messages",
            json={"model": "m", "messages": [{"role": "user", "content": "again"}]},
            timeout=5,
        )
        assert response.status_code == 200
        assert response.json()["content"][0]["text"] == "fake reply to: again"
        assert server.stream_chunks == 4
    finally:
        server.stop()


def test_errors_look_like_the_vendors(fake_anthropic, fake_openai):
    fake_anthropic.enqueue_error(529, message="Overloaded", retry_after=3)
    fake_openai.enqueue_error(429, message="Too many")

    a = httpx.post(f"{fake_anthropic.url}/v1/messages", json={"messages": []}, timeout=5)
    o = httpx.post(f"{fake_openai.url}/chat/completions", json={"messages": []}, timeout=5)

    assert a.status_code == 529 and a.headers["retry-after"] == "3"
    assert a.json()["type"] == "error"
    assert a.json()["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert o.status_code == 429 and o.headers["retry-after-ms"] == "10"
    assert o.json()["error"]["message"] == "Too many"
    assert o.json()["error"]["type"] == "rate_limit_exceeded"


def test_unknown_path_is_a_404_in_the_vendor_format(fake_anthropic):
    response = httpx.get(f"{fake_anthropic.url}/v1/files", timeout=5)

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_models_and_count_tokens_endpoints(fake_anthropic, fake_openai):
    page = httpx.get(f"{fake_anthropic.url}/v1/models", params={"limit": 2}, timeout=5).json()
    assert page["has_more"] is True and page["last_id"] == page["data"][1]["id"]
    rest = httpx.get(
        f"{fake_anthropic.url}/v1/models", params={"after_id": page["last_id"]}, timeout=5
    ).json()
    assert rest["has_more"] is False and len(rest["data"]) == 1
    assert httpx.get(f"{fake_anthropic.url}/v1/models/nope", timeout=5).status_code == 404
    listed = httpx.get(f"{fake_openai.url}/models", timeout=5).json()
    assert listed["object"] == "list" and listed["data"][0]["object"] == "model"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    counted = httpx.post(f"{fake_anthropic.url}/v1/messages/count_tokens", json=body, timeout=5)
    assert counted.json()["input_tokens"] > 0
    assert fake_anthropic.chat_requests() == []  # not chat: no reply consumed
    fake_anthropic.enqueue_error(404)
    assert httpx.get(f"{fake_anthropic.url}/v1/models", timeout=5).status_code == 404


def test_requests_are_recorded_with_headers_from_any_thread(fake_anthropic):
    def call(i: int) -> None:
        httpx.post(
            f"{fake_anthropic.url}/v1/messages",
            json={"model": "m", "messages": [{"role": "user", "content": f"m{i}"}]},
            headers={"x-api-key": f"key-{i}"},
            timeout=5,
        )

    threads = [threading.Thread(target=call, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(r.api_key or "" for r in fake_anthropic.requests) == [
        f"key-{i}" for i in range(5)
    ]


def test_split_chunks_keeps_the_text():
    text = "one two three four five six seven"

    pieces = split_chunks(text, 4)

    assert "".join(pieces) == text and len(pieces) == 4
    assert split_chunks("single", 4) == ["single"]
