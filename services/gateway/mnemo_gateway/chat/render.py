"""An :class:`~.answer.Answer` written in a client's protocol, as a document or SSE frames.

Used when the gateway itself produces the answer the client reads: the offline provider,
a replayed turn, or an upstream that speaks the other vendor's protocol. (When client and
upstream speak the same protocol the upstream's own bytes are returned instead.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from mnemo_common.ids import new_id
from mnemo_common.llm.base import StreamEnd, TextDelta

from .answer import Answer, AnswerEvent, ToolArgs, ToolStart, stop_to_openai

#: response headers of every SSE stream: no caching, no proxy buffering
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Any, event: str | None = None) -> str:
    """One SSE frame; ``data`` is JSON-encoded unless it is already a string."""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def sse_comment(text: str) -> str:
    """An SSE comment frame (``: text``): every SSE parser skips it, the OpenAI SDK too."""
    return "".join(f": {line}\n" for line in text.splitlines() or [""]) + "\n"


def anthropic_doc(answer: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text or not answer.tool_calls:
        content.append({"type": "text", "text": answer.text})
    content += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": c.input()}
        for c in answer.tool_calls
    ]
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": answer.stop_reason or "end_turn",
        "stop_sequence": answer.stop_sequence,
        "usage": {
            "input_tokens": answer.usage.input_tokens,
            "output_tokens": answer.usage.output_tokens,
        },
    }


def _openai_usage(answer_usage: Any) -> dict[str, int]:
    return {
        "prompt_tokens": answer_usage.input_tokens,
        "completion_tokens": answer_usage.output_tokens,
        "total_tokens": answer_usage.input_tokens + answer_usage.output_tokens,
    }


def openai_doc(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.text if answer.text or not answer.tool_calls else None,
    }
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in answer.tool_calls
        ]
    return {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": answer.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": stop_to_openai(answer.stop_reason),
                "logprobs": None,
            }
        ],
        "usage": _openai_usage(answer.usage),
    }


class AnthropicStreamWriter:
    """Neutral events → Anthropic Messages SSE (``message_start`` ... ``message_stop``)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._block = -1  # index of the open content block
        self._open = False
        self._tool_blocks: dict[int, int] = {}

    def head(self) -> list[str]:
        start = {
            "type": "message_start",
            "message": {
                "id": new_id("msg_"),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        }
        return [sse(start, "message_start"), sse({"type": "ping"}, "ping")]

    def _start(self, block: dict[str, Any]) -> Iterator[str]:
        yield from self._close()
        self._block += 1
        self._open = True
        yield sse(
            {"type": "content_block_start", "index": self._block, "content_block": block},
            "content_block_start",
        )

    def _close(self) -> Iterator[str]:
        if self._open:
            self._open = False
            yield sse({"type": "content_block_stop", "index": self._block}, "content_block_stop")

    def write(self, event: AnswerEvent) -> Iterator[str]:
        if isinstance(event, TextDelta):
            if not self._open or self._block in self._tool_blocks.values():
                yield from self._start({"type": "text", "text": ""})
            delta = {"type": "text_delta", "text": event.text}
            yield sse(
                {"type": "content_block_delta", "index": self._block, "delta": delta},
                "content_block_delta",
            )
        elif isinstance(event, ToolStart):
            yield from self._start(
                {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            )
            self._tool_blocks[event.index] = self._block
        elif isinstance(event, ToolArgs):
            delta = {"type": "input_json_delta", "partial_json": event.partial_json}
            index = self._tool_blocks.get(event.index, self._block)
            yield sse(
                {"type": "content_block_delta", "index": index, "delta": delta},
                "content_block_delta",
            )
        else:
            yield from self._end(event)

    def _end(self, end: StreamEnd) -> Iterator[str]:
        if self._block < 0:  # an empty answer still has one (empty) text block
            yield from self._start({"type": "text", "text": ""})
        yield from self._close()
        delta = {"stop_reason": end.stop_reason or "end_turn", "stop_sequence": end.stop_sequence}
        usage = {"input_tokens": end.usage.input_tokens, "output_tokens": end.usage.output_tokens}
        yield sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
        yield sse({"type": "message_stop"}, "message_stop")

    @staticmethod
    def error(body: dict[str, Any]) -> str:
        return sse(body, "error")


class OpenAIStreamWriter:
    """Neutral events → ``chat.completion.chunk``s, the usage chunk when asked, ``[DONE]``."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self._id, self._created = new_id("chatcmpl-"), int(time.time())

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        return sse(
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self.model,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
                ],
            }
        )

    def head(self) -> list[str]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def write(self, event: AnswerEvent) -> Iterator[str]:
        if isinstance(event, TextDelta):
            yield self._chunk({"content": event.text})
        elif isinstance(event, ToolStart):
            call = {
                "index": event.index,
                "id": event.id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            yield self._chunk({"tool_calls": [call]})
        elif isinstance(event, ToolArgs):
            call = {"index": event.index, "function": {"arguments": event.partial_json}}
            yield self._chunk({"tool_calls": [call]})
        else:
            yield self._chunk({}, stop_to_openai(event.stop_reason))
            if self.include_usage:
                yield sse(
                    {
                        "id": self._id,
                        "object": "chat.completion.chunk",
                        "created": self._created,
                        "model": self.model,
                        "choices": [],
                        "usage": _openai_usage(event.usage),
                    }
                )
            yield sse("[DONE]")

    @staticmethod
    def error(body: dict[str, Any]) -> str:
        return sse(body)
