"""Across protocols (Anthropic client on an OpenAI-compatible upstream and the reverse) and
on the offline provider: what is translated, and what is refused naming the field."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from mnemo_common.llm import OFFLINE_LABEL

from .test_drop_in_passthrough import OPENAI_TOOL, PIXEL, WEATHER_TOOL, a_client, o_client


@pytest.fixture
def on_anthropic(gateway_factory):
    return gateway_factory(None)


@pytest.fixture
def on_openai(gateway_factory, fake_openai):
    return gateway_factory(None, llm_fake=fake_openai)


@pytest.fixture
def offline(gateway_factory):
    return gateway_factory(None, llm_fake=None)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_client_on_openai_upstream_tools_images_stops(on_openai, fake_openai, stream):
    client = a_client(on_openai)
    first = [
        {
            "role": "user",
            "content": [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                },
                {"type": "text", "text": "Weather where this was taken?"},
            ],
        }
    ]
    options = {
        "model": "claude-x",
        "max_tokens": 100,
        "system": "Be brief.",
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "any"},
        "stop_sequences": ["END"],
    }
    fake_openai.enqueue_tool_call("get_weather", {"city": "Paris"})
    if stream:
        with client.messages.stream(messages=first, **options) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(messages=first, **options)
    sent = fake_openai.last_request.body
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                {"type": "text", "text": "Weather where this was taken?"},
            ],
        },
    ]
    assert sent["tools"] == [OPENAI_TOOL]
    assert (sent["tool_choice"], sent["stop"], sent["max_tokens"]) == ("required", ["END"], 100)
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})

    second = [
        *first,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18°C"}],
        },
    ]
    fake_openai.enqueue_text("18°C in Paris.")
    final = client.messages.create(messages=second, **options)
    sent = fake_openai.last_request.body["messages"]
    assert sent[2]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": json.dumps({"city": "Paris"}),
    }
    assert sent[3] == {"role": "tool", "tool_call_id": use.id, "content": "18°C"}
    assert final.content[0].text == "18°C in Paris." and final.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True])
def test_openai_client_on_anthropic_upstream_tools_images_stops(
    on_anthropic, fake_anthropic, stream
):
    client = o_client(on_anthropic)
    first = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
            ],
        },
    ]
    options = {"model": "gpt-x", "tools": [OPENAI_TOOL], "tool_choice": "required", "stop": "END"}
    fake_anthropic.enqueue_tool_call("get_weather", {"city": "Oslo"})
    if stream:
        chunks = list(client.chat.completions.create(messages=first, stream=True, **options))
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        assert len(deltas) >= 2  # tool_calls deltas, the arguments in pieces
        call_id, name = deltas[0].id, deltas[0].function.name
        arguments = "".join(d.function.arguments or "" for d in deltas)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        out = client.chat.completions.create(messages=first, **options)
        call = out.choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        finish = out.choices[0].finish_reason
    assert (name, json.loads(arguments), finish) == ("get_weather", {"city": "Oslo"}, "tool_calls")
    sent = fake_anthropic.last_request.body
    assert sent["system"] == "Be brief."
    assert sent["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
    }
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER_TOOL["input_schema"],
            "description": "Weather in a city",
        }
    ]
    assert (sent["tool_choice"], sent["stop_sequences"]) == ({"type": "any"}, ["END"])

    second = [
        *first,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "-3°C"},
    ]
    fake_anthropic.enqueue_text("Cold: -3°C.")
    out = client.chat.completions.create(messages=second, **options)
    sent = fake_anthropic.last_request.body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": call_id, "name": "get_weather", "input": {"city": "Oslo"}}
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "-3°C"}],
    }
    assert out.choices[0].message.content == "Cold: -3°C."


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
        ({"output_config": {"effort": "low"}}, "output_config"),
        (
            {"system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}]},
            "system.0.cache_control",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
    ],
)
def test_untranslatable_anthropic_fields_are_refused(on_openai, fake_openai, extra, field):
    with pytest.raises(anthropic.UnprocessableEntityError) as info:
        a_client(on_openai).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "q"}], **extra
        )
    assert (info.value.body["error"]["code"], info.value.body["error"]["field"]) == (
        "untranslatable",
        field,
    )
    assert fake_openai.requests == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"seed": 7}, "seed"),
        ({"temperature": 1.5}, "temperature"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_untranslatable_openai_fields_are_refused(on_anthropic, fake_anthropic, extra, field):
    with pytest.raises(openai.UnprocessableEntityError) as info:
        o_client(on_anthropic).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}], **extra
        )
    assert (info.value.code, info.value.body["field"]) == ("untranslatable", field)
    assert fake_anthropic.requests == []


def test_upstream_error_across_protocols_keeps_its_status(on_anthropic, fake_anthropic):
    fake_anthropic.enqueue_error(400, message="messages: bad image")
    with pytest.raises(openai.BadRequestError) as info:
        o_client(on_anthropic).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}]
        )
    assert "messages: bad image" in info.value.message


@pytest.mark.parametrize("stream", [False, True])
def test_offline_accepts_tools_and_images_and_honours_max_tokens_and_stops(offline, stream):
    client = a_client(offline)
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                    },
                    {"type": "text", "text": "hi"},
                ],
            }
        ],
        "tools": [WEATHER_TOOL],
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }

    def ask(**extra):
        if stream:
            with client.messages.stream(**body, **extra) as s:
                return s.get_final_message()
        return client.messages.create(**body, **extra)

    whole = ask(max_tokens=1000)
    assert whole.content[0].text.startswith(OFFLINE_LABEL) and whole.stop_reason == "end_turn"
    assert 'You said: "[image] hi"' in whole.content[0].text  # images as bracketed notes
    short = ask(max_tokens=8)
    assert short.stop_reason == "max_tokens"
    assert short.content[0].text.startswith(OFFLINE_LABEL)
    assert len(short.content[0].text) < len(whole.content[0].text)
    assert len(short.content[0].text) <= 8 * 4
    stopped = ask(max_tokens=1000, stop_sequences=["connected"])
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "connected")
    assert stopped.content[0].text == whole.content[0].text.split("connected")[0]

    o = o_client(offline)
    o_body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [OPENAI_TOOL],
        "seed": 1,
    }
    if stream:
        chunks = list(o.chat.completions.create(**o_body, stop=["connected"], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        out = o.chat.completions.create(**o_body, stop=["connected"])
        text, finish = out.choices[0].message.content, out.choices[0].finish_reason
    assert text.startswith(OFFLINE_LABEL) and "connected" not in text and finish == "stop"
    out = o.chat.completions.create(**o_body, max_tokens=8)
    assert out.choices[0].finish_reason == "length"
