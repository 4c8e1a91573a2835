"""The anthropic provider driving the real ``anthropic`` SDK against the fake Messages API."""

from __future__ import annotations

import asyncio

import pytest
from mnemo_common import metrics
from mnemo_common.llm import (
    ChatMessage,
    ChatRequest,
    LLMError,
    LLMErrorKind,
    StreamEnd,
    TextDelta,
)
from mnemo_common.testing.procs import free_port

REQUEST = ChatRequest(
    system="You are Mnemo. The user likes green tea.",
    messages=[ChatMessage("user", "What do I like to drink?")],
)
FACTS_SCHEMA = {
    "type": "object",
    "properties": {"facts": {"type": "array", "items": {"type": "string"}}},
    "required": ["facts"],
    "additionalProperties": False,
}


async def test_complete_sends_system_prompt_key_and_chat_model(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    fake_anthropic.enqueue_text("You like green tea.")

    result = await provider.complete(REQUEST)

    assert result.text == "You like green tea."
    assert result.model == "claude-opus-4-8"
    assert result.stop_reason == "end_turn"
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
    sent = fake_anthropic.last_request
    assert sent.body["model"] == "claude-opus-4-8"
    assert sent.api_key == "sk-ant-fake-test-key"
    assert fake_anthropic.last_system_prompt() == REQUEST.system
    assert sent.body["messages"] == [{"role": "user", "content": "What do I like to drink?"}]


async def test_extraction_purpose_uses_the_cheaper_model(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    assert provider.model_for("extraction") == "claude-haiku-4-5-20251001"

    await provider.complete(ChatRequest(system="", messages=REQUEST.messages, purpose="extraction"))

    assert fake_anthropic.last_request.body["model"] == "claude-haiku-4-5-20251001"
    assert "system" not in fake_anthropic.last_request.body  # empty system is not sent


async def test_stream_arrives_token_by_token(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    answer = "You told me last week that you like green tea with honey."
    fake_anthropic.enqueue_text(answer)
    gate = fake_anthropic.hold_stream()  # server pauses after the first chunk

    events = provider.stream(REQUEST)
    first = await anext(events)
    # the first words reached us while the server was still holding back the rest
    assert isinstance(first, TextDelta) and answer.startswith(first.text)
    assert first.text != answer
    gate.set()
    rest = [event async for event in events]

    deltas = [first, *(e for e in rest if isinstance(e, TextDelta))]
    assert len(deltas) >= 3
    assert "".join(d.text for d in deltas) == answer
    end = rest[-1]
    assert isinstance(end, StreamEnd)
    assert end.model == "claude-opus-4-8" and end.stop_reason == "end_turn"
    assert end.usage.input_tokens > 0 and end.usage.output_tokens > 0
    assert fake_anthropic.last_request.body["stream"] is True


@pytest.mark.parametrize("status", [429, 529, 500])
async def test_transient_error_then_success_is_retried(fake_anthropic, make_provider, status):
    provider = make_provider(fake_anthropic.settings(max_retries=2))
    fake_anthropic.enqueue_error(status, retry_after=0.01)
    fake_anthropic.enqueue_text("second time lucky")

    result = await provider.complete(REQUEST)

    assert result.text == "second time lucky"
    assert len(fake_anthropic.requests) == 2


async def test_stream_is_retried_before_the_first_token(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings(max_retries=1))
    fake_anthropic.enqueue_error(529, "overloaded_error")
    fake_anthropic.enqueue_text("streamed after an overload")

    events = [e async for e in provider.stream(REQUEST)]

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == (
        "streamed after an overload"
    )
    assert len(fake_anthropic.requests) == 2


@pytest.mark.parametrize(
    ("status", "error_type", "kind", "attempts"),
    [
        (429, "rate_limit_error", LLMErrorKind.RATE_LIMITED, 2),
        (529, "overloaded_error", LLMErrorKind.OVERLOADED, 2),
        (500, "api_error", LLMErrorKind.UNAVAILABLE, 2),
        (401, "authentication_error", LLMErrorKind.AUTH, 1),
        (403, "permission_error", LLMErrorKind.AUTH, 1),
        (400, "invalid_request_error", LLMErrorKind.BAD_REQUEST, 1),
    ],
)
async def test_errors_map_to_kinds_with_the_providers_message(
    fake_anthropic, make_provider, status, error_type, kind, attempts
):
    provider = make_provider(fake_anthropic.settings(max_retries=1))
    message = f"upstream says {error_type}"
    for _ in range(2):
        fake_anthropic.enqueue_error(status, error_type, message, retry_after=0.01)

    with pytest.raises(LLMError) as caught:
        await provider.complete(REQUEST)

    error = caught.value
    assert error.kind is kind
    assert error.message == message
    assert error.status_code == status
    assert error.provider == "anthropic"
    # 4xx other than 429 are not worth retrying; the rest are retried until exhausted
    assert len(fake_anthropic.requests) == attempts


async def test_rate_limit_error_carries_retry_after(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings(max_retries=0))
    fake_anthropic.enqueue_error(429, message="slow down", retry_after=7)

    with pytest.raises(LLMError) as caught:
        await provider.complete(REQUEST)

    assert caught.value.kind is LLMErrorKind.RATE_LIMITED
    assert caught.value.retry_after_s == pytest.approx(7)


async def test_timeout_surfaces_as_timeout_error(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings(timeout_s=0.5, max_retries=0))
    fake_anthropic.set_delay(5)

    with pytest.raises(LLMError) as caught:
        await asyncio.wait_for(provider.complete(REQUEST), timeout=4)

    assert caught.value.kind is LLMErrorKind.TIMEOUT
    assert "did not answer in time" in str(caught.value)


async def test_stream_timeout_surfaces_as_timeout_error(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings(timeout_s=0.5, max_retries=0))
    fake_anthropic.set_delay(5)

    with pytest.raises(LLMError) as caught:
        async with asyncio.timeout(4):
            _ = [e async for e in provider.stream(REQUEST)]

    assert caught.value.kind is LLMErrorKind.TIMEOUT


async def test_unreachable_api_is_unavailable(fake_anthropic, make_provider):
    settings = fake_anthropic.settings(
        anthropic_base_url=f"http://127.0.0.1:{free_port()}", max_retries=0
    )
    provider = make_provider(settings)

    with pytest.raises(LLMError) as caught:
        await provider.complete(REQUEST)

    assert caught.value.kind is LLMErrorKind.UNAVAILABLE


async def test_error_in_the_middle_of_a_stream(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    fake_anthropic.enqueue_stream_failure("The first half of the answer", message="overloaded")
    received: list[str] = []

    with pytest.raises(LLMError) as caught:
        async for event in provider.stream(REQUEST):
            if isinstance(event, TextDelta):
                received.append(event.text)

    assert "".join(received) == "The first half of the answer"
    assert caught.value.kind is LLMErrorKind.OVERLOADED
    assert caught.value.message == "overloaded"


async def test_request_without_messages_is_refused_before_any_call(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())

    with pytest.raises(LLMError) as caught:
        await provider.complete(ChatRequest(system="s", messages=[]))

    assert caught.value.kind is LLMErrorKind.BAD_REQUEST
    assert fake_anthropic.requests == []


async def test_outcomes_are_counted_in_metrics(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings(max_retries=0))
    fake_anthropic.enqueue_error(429)
    with pytest.raises(LLMError):
        await provider.complete(REQUEST)
    await provider.complete(REQUEST)

    text = metrics.render_latest()[0].decode()
    assert (
        'mnemo_llm_requests_total{outcome="rate_limited",provider="anthropic",purpose="chat"}'
        in text
    )
    assert 'mnemo_llm_tokens_total{direction="output",provider="anthropic"}' in text


# -- structured output ---------------------------------------------------------------------


async def test_complete_json_returns_validated_data(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    fake_anthropic.enqueue_json({"facts": ["likes green tea", "lives in Lyon"]})

    value, usage = await provider.complete_json(REQUEST, FACTS_SCHEMA)

    assert value == {"facts": ["likes green tea", "lives in Lyon"]}
    assert usage.output_tokens > 0
    system = fake_anthropic.last_system_prompt()
    assert system.startswith(REQUEST.system)  # the caller's prompt is kept
    assert "JSON Schema" in system and '"facts"' in system


async def test_complete_json_accepts_a_fenced_reply(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    fake_anthropic.enqueue_text('```json\n{"facts": ["plays chess"]}\n```')

    value, _ = await provider.complete_json(REQUEST, FACTS_SCHEMA)

    assert value == {"facts": ["plays chess"]}


async def test_complete_json_refuses_data_that_breaks_the_schema(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    fake_anthropic.enqueue_json({"facts": "likes tea"})

    with pytest.raises(LLMError) as caught:
        await provider.complete_json(REQUEST, FACTS_SCHEMA)

    assert caught.value.kind is LLMErrorKind.INVALID_OUTPUT
    assert "$.facts" in caught.value.message
    assert "is not of type 'array'" in caught.value.message


async def test_complete_json_refuses_prose(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    fake_anthropic.enqueue_text("Sure! The user likes tea.")

    with pytest.raises(LLMError) as caught:
        await provider.complete_json(REQUEST, FACTS_SCHEMA)

    assert caught.value.kind is LLMErrorKind.INVALID_OUTPUT
    assert "not JSON" in caught.value.message
    assert "Sure! The user likes tea." in caught.value.message


async def test_complete_json_says_when_the_reply_was_cut_off(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.settings())
    fake_anthropic.enqueue_text('{"facts": ["likes', stop_reason="max_tokens")

    with pytest.raises(LLMError) as caught:
        await provider.complete_json(REQUEST, FACTS_SCHEMA)

    assert caught.value.kind is LLMErrorKind.INVALID_OUTPUT
    assert "max_tokens" in caught.value.message


async def test_complete_json_rejects_an_invalid_schema_without_calling(
    fake_anthropic, make_provider
):
    provider = make_provider(fake_anthropic.settings())

    with pytest.raises(LLMError) as caught:
        await provider.complete_json(REQUEST, {"type": "no-such-type"})

    assert caught.value.kind is LLMErrorKind.BAD_REQUEST
    assert fake_anthropic.requests == []
