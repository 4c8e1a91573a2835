"""The SSE readers on awkward input: frames split across chunks, CRLF, an error event."""

from __future__ import annotations

from mnemo_common.llm.base import StreamEnd, TextDelta
from mnemo_gateway.chat.answer import (
    AnswerBuilder,
    AnthropicStreamReader,
    OpenAIStreamReader,
    SSESplitter,
    ToolStart,
)

ANTHROPIC = (
    b'event: message_start\r\ndata: {"type":"message_start","message":{"model":"c",'
    b'"usage":{"input_tokens":5,"output_tokens":1}}}\r\n\r\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hel"}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"lo"}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
    b'"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
    b'"delta":{"type":"input_json_delta","partial_json":"{\\"a\\": "}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,'
    b'"delta":{"type":"input_json_delta","partial_json":"1}"}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use",'
    b'"stop_sequence":null},"usage":{"output_tokens":9}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def read_all(reader, data: bytes, size: int):
    splitter, builder, frames = SSESplitter(), AnswerBuilder(), []
    for i in range(0, len(data), size):
        for frame in splitter.feed(data[i : i + size]):
            frames.append(frame)
            for event in reader.read(frame):
                builder.add(event)
    return frames, builder


def test_anthropic_stream_split_anywhere_gives_the_same_answer():
    for size in (1, 7, 64, len(ANTHROPIC)):
        frames, builder = read_all(AnthropicStreamReader(), ANTHROPIC, size)
        assert len(frames) == 9 and builder.ended
        answer = builder.result()
        assert answer.text == "Hello" and answer.model == "c"
        assert [(c.name, c.input()) for c in answer.tool_calls] == [("f", {"a": 1})]
        assert answer.stop_reason == "tool_use" and not answer.is_final
        assert (answer.usage.input_tokens, answer.usage.output_tokens) == (5, 9)


def test_openai_stream_and_error_chunk():
    data = (
        b'data: {"model":"g","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        b'data: {"model":"g","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
        b'"id":"c1","function":{"name":"f","arguments":"{}"}}]}}]}\n\n'
        b'data: {"model":"g","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    reader = OpenAIStreamReader()
    events = [e for f in SSESplitter().feed(data) for e in reader.read(f)]
    assert isinstance(events[0], TextDelta) and isinstance(events[1], ToolStart)
    assert isinstance(events[-1], StreamEnd) and events[-1].stop_reason == "tool_use"
    failing = OpenAIStreamReader()
    list(failing.read(b'data: {"error": {"message": "boom"}}\n\n'))
    assert failing.error == {"error": {"message": "boom"}}
