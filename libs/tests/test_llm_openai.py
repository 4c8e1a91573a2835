"""The openai-compatible provider driving the real ``openai`` SDK against the fake server."""

from __future__ import annotations

import asyncio

import pytest
from mnemo_common.llm import ChatMessage, ChatRequest, LLMError, LLMErrorKind, StreamEnd, TextDelta

REQUEST = ChatRequest(
    system="You are Mnemo. The user's name is Ada.",
    messages=[
        ChatMessage("user", "Hi!"),
        ChatMessage("assistant", "Hello Ada."),
        ChatMessage("user", "What is my name?"),
    ],
)
SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string", "minLength": 1}},
    "required": ["summary"],
}


async def test_complete_sends_system_message_model_and_key(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings())
    fake_openai.enqueue_text("Your name is Ada.")

    result = await provider.complete(REQUEST)

    assert result.text == "Your name is Ada."
    assert result.model == "fake-chat-model"
    assert result.stop_reason == "stop"
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    body = fake_openai.last_request.body
    assert body["model"] == "fake-chat-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert fake_openai.last_system_prompt() == REQUEST.system
    assert fake_openai.last_request.api_key == "sk-fake-test-key"


async def test_key_is_optional_for_local_servers(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings(openai_api_key=""))

    result = await provider.complete(REQUEST)

    assert result.text == "fake reply to: What is my name?"


async def test_extraction_model_defaults_to_the_chat_model(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings(openai_extraction_model=""))

    await provider.complete(ChatRequest(system="", messages=REQUEST.messages, purpose="extraction"))

    assert fake_openai.last_request.body["model"] == "fake-chat-model"
    assert fake_openai.last_system_prompt() == ""


async def test_extraction_purpose_uses_the_extraction_model(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings())

    await provider.complete(ChatRequest(system="", messages=REQUEST.messages, purpose="extraction"))

    assert fake_openai.last_request.body["model"] == "fake-extraction-model"


async def test_stream_arrives_in_pieces_with_usage(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings())
    answer = "Your name is Ada, you told me at the start of this thread."
    fake_openai.enqueue_text(answer)
    gate = fake_openai.hold_stream()

    events = provider.stream(REQUEST)
    first = await anext(events)
    assert isinstance(first, TextDelta) and first.text != answer
    gate.set()
    rest = [event async for event in events]

    deltas = [first, *(e for e in rest if isinstance(e, TextDelta))]
    assert len(deltas) >= 3
    assert "".join(d.text for d in deltas) == answer
    end = rest[-1]
    assert isinstance(end, StreamEnd) and end.stop_reason == "stop"
    assert end.usage.input_tokens > 0 and end.usage.output_tokens > 0
    assert fake_openai.last_request.body["stream_options"] == {"include_usage": True}


async def test_stream_from_a_server_without_usage_estimates_it(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings())
    fake_openai.stream_usage = False
    fake_openai.enqueue_text("A server that never reports token usage.")

    events = [e async for e in provider.stream(REQUEST)]

    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert end.usage.output_tokens > 0 and end.usage.input_tokens > 0


async def test_429_then_200_is_retried(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings(max_retries=2))
    fake_openai.enqueue_error(429, retry_after=0.01)
    fake_openai.enqueue_text("after the rate limit")

    result = await provider.complete(REQUEST)

    assert result.text == "after the rate limit"
    assert len(fake_openai.requests) == 2


@pytest.mark.parametrize(
    ("status", "kind", "attempts"),
    [
        (429, LLMErrorKind.RATE_LIMITED, 2),
        (503, LLMErrorKind.OVERLOADED, 2),
        (500, LLMErrorKind.UNAVAILABLE, 2),
        (401, LLMErrorKind.AUTH, 1),
        (404, LLMErrorKind.BAD_REQUEST, 1),
    ],
)
async def test_errors_map_to_kinds(fake_openai, make_provider, status, kind, attempts):
    provider = make_provider(fake_openai.settings(max_retries=1))
    for _ in range(2):
        fake_openai.enqueue_error(status, message=f"server said {status}", retry_after=0.01)

    with pytest.raises(LLMError) as caught:
        await provider.complete(REQUEST)

    assert caught.value.kind is kind
    assert caught.value.message == f"server said {status}"
    assert caught.value.status_code == status
    assert caught.value.provider == "openai-compatible"
    assert len(fake_openai.requests) == attempts


async def test_timeout_surfaces_as_timeout_error(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings(timeout_s=0.5, max_retries=0))
    fake_openai.set_delay(5)

    with pytest.raises(LLMError) as caught:
        await asyncio.wait_for(provider.complete(REQUEST), timeout=4)

    assert caught.value.kind is LLMErrorKind.TIMEOUT


async def test_error_in_the_middle_of_a_stream(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings())
    fake_openai.enqueue_stream_failure("half an answer", "server_error", "model crashed")
    received: list[str] = []

    with pytest.raises(LLMError) as caught:
        async for event in provider.stream(REQUEST):
            if isinstance(event, TextDelta):
                received.append(event.text)

    assert "".join(received) == "half an answer"
    assert caught.value.kind is LLMErrorKind.UNAVAILABLE
    assert caught.value.message == "model crashed"


async def test_complete_json_valid_and_invalid(fake_openai, make_provider):
    provider = make_provider(fake_openai.settings())
    fake_openai.enqueue_json({"summary": "Ada introduced herself."})
    fake_openai.enqueue_json({"summary": ""})
    fake_openai.enqueue_text("I cannot do that.")

    value, _ = await provider.complete_json(REQUEST, SCHEMA)
    assert value == {"summary": "Ada introduced herself."}
    assert "JSON Schema" in fake_openai.last_system_prompt()

    with pytest.raises(LLMError) as schema_error:
        await provider.complete_json(REQUEST, SCHEMA)
    assert schema_error.value.kind is LLMErrorKind.INVALID_OUTPUT
    assert "$.summary" in schema_error.value.message

    with pytest.raises(LLMError) as prose_error:
        await provider.complete_json(REQUEST, SCHEMA)
    assert prose_error.value.kind is LLMErrorKind.INVALID_OUTPUT
    assert "not JSON" in prose_error.value.message
