"""Drop-in pass-through with the real SDKs: the fake upstream logs the bodies it receives.

Same protocol (Anthropic SDK → anthropic provider, OpenAI SDK → openai-compatible provider):
the body reaches the upstream as sent (only the model is the gateway's), and the answer —
tool calls, thinking blocks, stream events — comes back as the upstream sent it.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from anthropic._constants import ANTHROPIC_API_VERSION
from mnemo_common.testing.fake_llm import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": WEATHER_TOOL["input_schema"],
    },
}
PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


@pytest.fixture
def on_anthropic(gateway_factory):
    return gateway_factory(None)


@pytest.fixture
def on_openai(gateway_factory, fake_openai):
    return gateway_factory(None, llm_fake=fake_openai)


def sent_without_model(fake) -> dict:
    return {k: v for k, v in fake.last_request.body.items() if k != "model"}


def without_model(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "model"}


def a_client(gw) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)


def o_client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tools_round_trip(on_anthropic, fake_anthropic, stream):
    client = a_client(on_anthropic)
    first = [{"role": "user", "content": "Weather in Paris?"}]
    options = {
        "model": "claude-x",
        "max_tokens": 200,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "auto"},
    }
    fake_anthropic.enqueue_tool_call("get_weather", {"city": "Paris"}, text="Let me check.")
    if stream:
        with client.messages.stream(messages=first, **options) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(messages=first, **options)
    assert sent_without_model(fake_anthropic) == {
        **without_model(options),
        "messages": first,
        **({"stream": True} if stream else {}),
    }
    assert msg.stop_reason == "tool_use"
    use = next(b for b in msg.content if b.type == "tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})

    second = [
        *first,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18°C, sunny"}],
        },
    ]
    fake_anthropic.enqueue_text("It is 18°C and sunny in Paris.")
    if stream:
        with client.messages.stream(messages=second, **options) as s:
            final = s.get_final_message()
    else:
        final = client.messages.create(messages=second, **options)
    assert fake_anthropic.last_request.body["messages"] == second
    assert final.content[0].text == "It is 18°C and sunny in Paris."
    assert final.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tools_round_trip(on_openai, fake_openai, stream):
    client = o_client(on_openai)
    first = [{"role": "user", "content": "Weather in Paris?"}]
    options = {"model": "gpt-x", "tools": [OPENAI_TOOL], "tool_choice": "auto"}
    fake_openai.enqueue_tool_call("get_weather", {"city": "Paris"})
    if stream:
        chunks = list(client.chat.completions.create(messages=first, stream=True, **options))
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        assert len(deltas) >= 2  # the call is streamed as tool_calls deltas
        call_id, name = deltas[0].id, deltas[0].function.name
        arguments = "".join(d.function.arguments or "" for d in deltas)
        assert chunks[-1].choices[0].finish_reason == "tool_calls"
    else:
        out = client.chat.completions.create(messages=first, **options)
        call = out.choices[0].message.tool_calls[0]
        call_id, name, arguments = call.id, call.function.name, call.function.arguments
        assert out.choices[0].finish_reason == "tool_calls"
        assert out.choices[0].message.content is None
    assert (name, json.loads(arguments)) == ("get_weather", {"city": "Paris"})
    sent = sent_without_model(fake_openai)
    assert sent == {
        **without_model(options),
        "messages": first,
        **({"stream": True} if stream else {}),
    }

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
        {"role": "tool", "tool_call_id": call_id, "content": "18°C, sunny"},
    ]
    fake_openai.enqueue_text("It is 18°C and sunny.")
    if stream:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(messages=second, stream=True, **options)
            if c.choices
        )
    else:
        text = client.chat.completions.create(messages=second, **options).choices[0].message.content
    assert fake_openai.last_request.body["messages"] == second  # content: null kept
    assert text == "It is 18°C and sunny."


@pytest.mark.parametrize("stream", [False, True])
def test_images_and_options_reach_the_upstream_unchanged(
    on_anthropic, on_openai, fake_anthropic, fake_openai, stream
):
    body = {
        "model": "claude-x",
        "max_tokens": 50,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
        "stop_sequences": ["END"],
        "tool_choice": {"type": "none"},
        "tools": [WEATHER_TOOL],
        "output_config": {"effort": "low"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "service_tier": "auto",
        "metadata": {"user_id": "ada"},
    }
    client = a_client(on_anthropic)
    if stream:
        with client.messages.stream(**body) as s:
            s.get_final_message()
    else:
        client.messages.create(**body)
    assert sent_without_model(fake_anthropic) == {
        **without_model(body),
        **({"stream": True} if stream else {}),
    }

    o_body = {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
                ],
            },
        ],
        "temperature": 0.3,
        "seed": 7,
        "stop": ["END"],
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "top_logprobs": 2,
        "n": 2,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.1,
        "logit_bias": {"50256": -100},
        "reasoning_effort": "low",
        "prediction": {"type": "content", "content": "x"},
        "user": "ada",
    }
    if stream:
        list(o_client(on_openai).chat.completions.create(stream=True, **o_body))
    else:
        o_client(on_openai).chat.completions.create(**o_body)
    assert sent_without_model(fake_openai) == {
        **without_model(o_body),
        **({"stream": True} if stream else {}),
    }


def test_stream_events_come_back_as_the_upstream_sent_them(gateway_factory, fake_anthropic):
    """Same event names, order and payloads (thinking, tool_use, input_json_delta, usage)."""
    on_anthropic = gateway_factory(None, gateway={"pass_client_model": True})
    body = {
        "model": "m",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }

    def events(url: str) -> list[tuple[str, dict]]:
        fake_anthropic.enqueue_tool_call(
            "get_weather", {"city": "Oslo"}, text="Checking.", thinking="hmm"
        )
        out = []
        with httpx.stream("POST", url + "/v1/messages", json=body, headers={"x-api-key": "k"}) as r:
            assert r.status_code == 200
            name = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    data.get("message", {}).pop("id", None)
                    data.get("content_block", {}).pop("id", None)
                    out.append((name, data))
        return out

    direct = events(fake_anthropic.url)
    through = events(on_anthropic.url)
    # plus exactly one Mnemo event, the turn's final memory status, just before message_stop
    (at,) = [i for i, (name, _) in enumerate(through) if name == "mnemo"]
    assert through[at + 1][0] == "message_stop"
    assert {"memory", "committed", "missing", "thread_id"} <= set(through[at][1])
    assert through[:at] + through[at + 1 :] == direct
    kinds = [d.get("delta", {}).get("type") for _, d in through if _ == "content_block_delta"]
    assert {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"} <= set(kinds)


def test_openai_headers_and_unknown_fields_pass(on_openai, fake_openai):
    """A field no SDK knows yet reaches the upstream too; Mnemo's headers stay."""
    r = httpx.post(
        on_openai.url + "/v1/chat/completions",
        json={
            "model": "m",
            "messages": [{"role": "user", "content": "q"}],
            "brand_new_option": {"a": 1},
        },
    )
    assert r.status_code == 200, r.text
    assert fake_openai.last_request.body["brand_new_option"] == {"a": 1}
    # GATEWAY__PASS_CLIENT_MODEL=false (the default): the configured model answers
    assert fake_openai.last_request.body["model"] == "fake-chat-model"
    assert r.headers["x-mnemo-provider"] == "openai-compatible"
    assert r.headers["x-mnemo-memory"] == "off"


def test_betas_header_and_upstream_headers_pass(gateway_factory, fake_anthropic):
    """The SDK's ``betas`` (an ``anthropic-beta`` header) reach the upstream; the upstream's
    response headers (here a 429's retry-after) come back with its status and body."""
    client = a_client(gateway_factory(None, llm={"max_retries": 0}))
    client.beta.messages.create(
        model="m",
        max_tokens=5,
        betas=["token-efficient-tools-2025-02-19"],
        messages=[{"role": "user", "content": "hi"}],
    )
    assert (
        fake_anthropic.last_request.headers["anthropic-beta"] == "token-efficient-tools-2025-02-19"
    )
    fake_anthropic.enqueue_error(429, retry_after=7)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.response.headers["retry-after"] == "7"
    assert info.value.body["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_unchanged_body_reaches_the_upstream_byte_for_byte(
    gateway_factory, fake_anthropic, fake_openai, protocol, stream
):
    """Nothing to add (memory off, the client's model kept): the upstream receives the
    client's own bytes — spacing, key order and escapes included — not a re-encoding; once
    the gateway changes the model, it receives a body with the gateway's model."""
    fake = fake_anthropic if protocol == "anthropic" else fake_openai
    path = "/v1/messages" if protocol == "anthropic" else "/v1/chat/completions"
    raw = (
        '{ "model" : "client-model",\n  "max_tokens": 16, "zz_unknown": "caf\\u00e9",'
        '  "messages": [ {"role": "user", "content": "hi \\ud83d\\ude00"} ],'
        f' "stream": {json.dumps(stream)} }}'
    ).encode()
    headers = {"content-type": "application/json", "x-api-key": "unused"}
    kept = gateway_factory(None, llm_fake=fake, gateway={"pass_client_model": True})
    resp = httpx.post(kept.url + path, content=raw, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert fake.last_request.raw == raw

    rewritten = gateway_factory(None, llm_fake=fake)
    resp = httpx.post(rewritten.url + path, content=raw, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    sent = fake.last_request
    assert sent.raw != raw
    assert sent.body["model"] != "client-model"
    assert without_model(sent.body) == without_model(json.loads(raw))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
def test_forwarding_keeps_the_sdk_key_version_and_retry_policy(
    gateway_factory, fake_anthropic, fake_openai, protocol, stream
):
    """The forwarded request carries the gateway's key (and ``anthropic-version``); a 429
    or 5xx is retried (``LLM__MAX_RETRIES``), a 400 is not, and once the retries are spent
    the client gets the upstream's last status and body."""
    fake = fake_anthropic if protocol == "anthropic" else fake_openai
    path = "/v1/messages" if protocol == "anthropic" else "/v1/chat/completions"
    key = FAKE_ANTHROPIC_KEY if protocol == "anthropic" else FAKE_OPENAI_KEY
    gw = gateway_factory(None, llm_fake=fake, llm={"max_retries": 2})
    body = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    body["stream"] = stream

    def post(*errors: int) -> httpx.Response:
        fake.reset()
        for status in errors:
            fake.enqueue_error(status, message="busy now")
        return httpx.post(gw.url + path, json=body, headers={"x-api-key": "u"}, timeout=20)

    resp = post(429, 503)
    assert resp.status_code == 200, resp.text
    sent = fake.chat_requests()
    assert [r.headers["x-stainless-retry-count"] for r in sent] == ["0", "1", "2"]
    assert {r.api_key for r in sent} == {key}
    if protocol == "anthropic":
        assert {r.headers["anthropic-version"] for r in sent} == {ANTHROPIC_API_VERSION}

    resp = post(400)
    assert resp.status_code == 400
    assert len(fake.chat_requests()) == 1

    resp = post(503, 503, 503)
    assert resp.status_code == 503
    assert "busy now" in resp.text
    assert len(fake.chat_requests()) == 3
