"""Memory on the drop-in paths (real memory service and Redis): what the upstream sees in
its system prompt, and what a tool-using exchange leaves in the thread (ADR 0010)."""

from __future__ import annotations

import json

import httpx
import pytest
from mnemo_gateway.chat.conversation import TOOL_RECORD_HEAD
from mnemo_gateway.chat.prompt import PREFERENCES_TITLE

from .test_drop_in_passthrough import OPENAI_TOOL, WEATHER_TOOL, a_client, o_client


def thread_messages(gw, user: str, thread_id: str) -> list[str]:
    r = httpx.get(f"{gw.url}/v1/users/{user}/threads/{thread_id}", timeout=10)
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return [m["content"] for m in r.json()["messages"]]


@pytest.fixture
def on_openai(gateway_factory, memory_server, fake_openai):
    return gateway_factory(memory_server.address, llm_fake=fake_openai)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_loop_is_one_turn_with_a_tool_record(gateway, fake_anthropic, stream):
    client = a_client(gateway)
    thread = f"th-tools-a-{stream}"
    opts = {
        "model": "m",
        "max_tokens": 100,
        "tools": [WEATHER_TOOL],
        "metadata": {"user_id": "tia"},
        "extra_headers": {"X-Mnemo-Thread-Id": thread},
    }

    def ask(messages):
        if stream:
            with client.messages.stream(messages=messages, **opts) as s:
                return s.get_final_message()
        return client.messages.create(messages=messages, **opts)

    first = [{"role": "user", "content": "Weather in Paris?"}]
    fake_anthropic.enqueue_tool_call("get_weather", {"city": "Paris"})
    msg = ask(first)
    assert msg.stop_reason == "tool_use"
    assert thread_messages(gateway, "tia", thread) == []  # a tool-only step is no turn
    use = next(b for b in msg.content if b.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "18°C, sunny"}
    second = [
        *first,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {"role": "user", "content": [result]},
    ]
    fake_anthropic.enqueue_tool_call("get_time", {"city": "Paris"})
    msg2 = ask(second)  # a second tool step of the same exchange
    use2 = next(b for b in msg2.content if b.type == "tool_use")
    assert thread_messages(gateway, "tia", thread) == []
    third = [
        *second,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg2.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use2.id, "content": "14:05"}],
        },
    ]
    fake_anthropic.enqueue_text("18°C and sunny at 14:05.")
    assert ask(third).content[0].text == "18°C and sunny at 14:05."
    assert thread_messages(gateway, "tia", thread) == [
        "Weather in Paris?",
        "18°C and sunny at 14:05."
        + TOOL_RECORD_HEAD
        + '- get_weather({"city": "Paris"}) → 18°C, sunny\n- get_time({"city": "Paris"}) → 14:05',
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_loop_is_one_turn_with_a_tool_record(on_openai, fake_openai, stream):
    client = o_client(on_openai)
    thread = f"th-tools-o-{stream}"
    opts = {"model": "m", "tools": [OPENAI_TOOL], "user": "tom"}
    headers = {"X-Mnemo-Thread-Id": thread}
    first = [{"role": "user", "content": "Weather in Paris?"}]
    fake_openai.enqueue_tool_call("get_weather", {"city": "Paris"})
    resp = client.chat.completions.with_raw_response.create(
        messages=first, stream=stream, extra_headers=headers, **opts
    )
    assert resp.headers["x-mnemo-thread-id"] == thread
    if stream:
        list(resp.parse())
    assert thread_messages(on_openai, "tom", thread) == []
    second = [
        *first,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
    ]
    fake_openai.enqueue_text("18°C and sunny.")
    resp = client.chat.completions.with_raw_response.create(
        messages=second, stream=stream, extra_headers=headers, **opts
    )
    assert resp.headers["x-mnemo-thread-id"] == thread
    if stream:
        list(resp.parse())
    assert thread_messages(on_openai, "tom", thread) == [
        "Weather in Paris?",
        "18°C and sunny." + TOOL_RECORD_HEAD + '- get_weather({"city": "Paris"}) → 18°C, sunny',
    ]


def test_memory_reaches_the_upstream_system_prompt_of_that_user_only(
    gateway, on_openai, fake_anthropic, fake_openai
):
    """Anthropic: appended after the client's system blocks (cache_control kept); OpenAI:
    appended to the first system message, or prepended as one."""
    httpx.put(gateway.url + "/v1/users/uma/preferences/units", json={"value": "metric"})
    block = {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    a_client(gateway).messages.create(
        model="m",
        max_tokens=20,
        system=[block],
        metadata={"user_id": "uma"},
        messages=[{"role": "user", "content": "Weather?"}],
    )
    system = fake_anthropic.last_request.body["system"]
    assert system[0] == block
    assert system[1]["type"] == "text" and "units: metric" in system[1]["text"]
    assert PREFERENCES_TITLE in system[1]["text"]

    o = o_client(on_openai)
    o.chat.completions.create(
        model="m",
        user="uma",
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "q"}],
    )
    first = fake_openai.last_request.body["messages"][0]
    assert first["role"] == "developer" and first["content"].startswith("Be brief.\n\n")
    assert "units: metric" in first["content"]
    o.chat.completions.create(model="m", user="uma", messages=[{"role": "user", "content": "q"}])
    sent = fake_openai.last_request.body["messages"]
    assert sent[0]["role"] == "system" and "units: metric" in sent[0]["content"]
    assert sent[1] == {"role": "user", "content": "q"}

    o.chat.completions.create(model="m", user="ulf", messages=[{"role": "user", "content": "q"}])
    assert fake_openai.last_request.body["messages"] == [{"role": "user", "content": "q"}]
    a_client(gateway).messages.create(
        model="m", max_tokens=20, metadata={"user_id": "ulf"}, system=[block],
        messages=[{"role": "user", "content": "Weather?"}],
    )  # fmt: skip
    assert fake_anthropic.last_request.body["system"] == [block]


def test_replayed_tool_turn_answers_the_final_text_only(gateway, fake_anthropic):
    client = a_client(gateway)
    key = {"X-Mnemo-Thread-Id": "th-replay-tools", "Idempotency-Key": "k-tools"}
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "w", "input": {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sun"}],
        },
    ]
    fake_anthropic.enqueue_text("Sunny.")
    opts = {"model": "m", "max_tokens": 20, "metadata": {"user_id": "rex"}, "extra_headers": key}
    assert client.messages.create(messages=messages, **opts).content[0].text == "Sunny."
    again = client.messages.create(messages=messages, **opts)
    assert again.content[0].text == "Sunny."
    assert len(fake_anthropic.chat_requests()) == 1


def test_a_message_without_text_is_answered_and_stores_nothing(gateway, fake_anthropic):
    """An image alone: no user text to remember the turn by (nor to recall with)."""
    r = a_client(gateway).messages.with_raw_response.create(
        model="m",
        max_tokens=20,
        metadata={"user_id": "ian"},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}}
                ],
            }
        ],
    )
    assert r.http_response.status_code == 200
    assert r.headers["x-mnemo-memory"] == "ok"
    assert thread_messages(gateway, "ian", r.headers["x-mnemo-thread-id"]) == []
