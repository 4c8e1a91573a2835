"""The drop-in endpoints with the real SDKs, memory disabled (the gateway as a plain proxy).

Memory-backed behaviour is in test_chat_memory.py; these pin the wire formats.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest


@pytest.fixture
def stateless(gateway_factory):
    return gateway_factory(None)


def test_anthropic_sdk_non_streamed(stateless, fake_anthropic):
    fake_anthropic.enqueue_text("Hello from the fake model")
    client = anthropic.Anthropic(base_url=stateless.url, api_key="unused", max_retries=0)
    msg = client.messages.create(
        model="claude-whatever",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hi there"}],
    )
    assert msg.content[0].text == "Hello from the fake model"
    assert msg.role == "assistant"
    assert msg.stop_reason == "end_turn"
    assert msg.usage.output_tokens > 0
    assert fake_anthropic.last_system_prompt() == "Be brief."
    assert fake_anthropic.last_user_message() == "hi there"


def test_anthropic_sdk_streamed(stateless, fake_anthropic):
    fake_anthropic.enqueue_text("one two three four five six")
    client = anthropic.Anthropic(base_url=stateless.url, api_key="unused", max_retries=0)
    with client.messages.stream(
        model="m", max_tokens=100, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1
    assert "".join(pieces) == "one two three four five six"
    assert final.content[0].text == "one two three four five six"
    assert final.stop_reason == "end_turn"


def test_openai_sdk_non_streamed_and_streamed(stateless, fake_anthropic):
    client = openai.OpenAI(base_url=stateless.url + "/v1", api_key="unused", max_retries=0)
    fake_anthropic.enqueue_text("a plain answer")
    out = client.chat.completions.create(
        model="gpt-whatever",
        messages=[{"role": "system", "content": "Sys."}, {"role": "user", "content": "q"}],
    )
    assert out.choices[0].message.content == "a plain answer"
    assert out.choices[0].finish_reason == "stop"
    assert fake_anthropic.last_system_prompt() == "Sys."

    fake_anthropic.enqueue_text("streamed answer in parts")
    chunks = list(
        client.chat.completions.create(
            model="gpt-whatever",
            messages=[{"role": "user", "content": "q2"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed answer in parts"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_memory_off_is_labelled(stateless):
    r = httpx.post(stateless.url + "/v1/chat", json={"prompt": "hello"})
    assert r.status_code == 200
    assert r.headers["x-mnemo-memory"] == "off"
    assert r.json()["committed"] is False
