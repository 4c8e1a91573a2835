"""The offline provider: no network, deterministic, labelled, answers from memory."""

from __future__ import annotations

import socket

import pytest
from mnemo_common.llm import (
    OFFLINE_LABEL,
    ChatMessage,
    ChatRequest,
    LLMError,
    LLMErrorKind,
    MemoryContext,
    OfflineProvider,
    StreamEnd,
    TextDelta,
)

MEMORY = MemoryContext(
    summary="We planned a trip to Kyoto in April.",
    preferences={"tone": "brief", "language": "French"},
    memories=["Ada is vegetarian", "Ada's cat is called Pixel"],
)
REQUEST = ChatRequest(
    system="You are Mnemo.",
    messages=[
        ChatMessage("user", "Hello"),
        ChatMessage("assistant", "Hi"),
        ChatMessage("user", "What should I eat in Kyoto?"),
    ],
    memory=MEMORY,
)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the offline provider opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


async def test_reply_is_labelled_and_built_from_the_memory_context(no_network):
    provider = OfflineProvider()

    result = await provider.complete(REQUEST)

    text = result.text
    assert text.startswith(OFFLINE_LABEL)
    assert "No language model is connected" in text
    assert 'You said: "What should I eat in Kyoto?"' in text
    assert "language: French; tone: brief" in text
    assert "We planned a trip to Kyoto in April." in text
    assert "Ada is vegetarian" in text and "Pixel" in text
    assert "2 earlier messages" in text
    assert result.model == "offline" and provider.model_for("chat") == "offline"
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


async def test_reply_is_deterministic(no_network):
    provider = OfflineProvider()

    first = await provider.complete(REQUEST)
    second = await provider.complete(REQUEST)

    assert first == second


async def test_without_memory_it_says_it_remembers_nothing(no_network):
    provider = OfflineProvider()
    request = ChatRequest(system="", messages=[ChatMessage("user", "Hi")], memory=MemoryContext())

    result = await provider.complete(request)

    assert result.text.startswith(OFFLINE_LABEL)
    assert "I don't remember anything about you yet." in result.text


async def test_stream_yields_the_same_text_word_by_word(no_network):
    provider = OfflineProvider()

    events = [event async for event in provider.stream(REQUEST)]

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 10
    assert "".join(deltas) == (await provider.complete(REQUEST)).text
    assert isinstance(events[-1], StreamEnd) and events[-1].model == "offline"


async def test_structured_output_is_refused():
    provider = OfflineProvider()

    with pytest.raises(LLMError) as caught:
        await provider.complete_json(REQUEST, {"type": "object"})

    assert caught.value.kind is LLMErrorKind.BAD_REQUEST
    assert "offline provider cannot" in caught.value.message


async def test_offline_honours_max_tokens_and_stop_sequences_never_cutting_the_label():
    from mnemo_common.llm import ChatMessage, ChatRequest, OfflineProvider

    provider = OfflineProvider()
    base = ChatRequest(system="", messages=[ChatMessage("user", "hello")])
    whole = await provider.complete(base)
    assert whole.stop_reason == "end_turn"
    cut = await provider.complete(ChatRequest(system="", messages=base.messages, max_tokens=6))
    assert cut.stop_reason == "max_tokens" and cut.text.startswith(OFFLINE_LABEL)
    assert len(cut.text) <= 6 * 4 and whole.text.startswith(cut.text)
    tiny = await provider.complete(ChatRequest(system="", messages=base.messages, max_tokens=1))
    assert tiny.text == OFFLINE_LABEL  # the label is never cut
    stop = ChatRequest(system="", messages=base.messages, stop=["model is", "[offline"])
    stopped = await provider.complete(stop)
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "model is")
    assert stopped.text == whole.text.split("model is")[0]
    streamed = [e async for e in provider.stream(stop)]
    assert "".join(e.text for e in streamed[:-1]) == stopped.text
    assert streamed[-1].stop_reason == "stop_sequence"


async def test_a_thread_excerpt_keeps_one_line_per_memory(no_network):
    """Recall returns an excerpt of several memories of one thread, one per line: the reply
    shows each on its own line, never glued into one sentence."""
    memory = MemoryContext(memories=["User's dog is called Biscuit\nMy dog is Biscuit.", "Ada"])
    request = ChatRequest(system="", messages=[ChatMessage("user", "Hi")], memory=memory)

    text = (await OfflineProvider().complete(request)).text

    assert "  - User's dog is called Biscuit\n    My dog is Biscuit.\n  - Ada" in text
