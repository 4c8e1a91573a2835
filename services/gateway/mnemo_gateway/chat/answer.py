"""A model's answer in neutral form, read from either vendor's wire format.

The drop-in endpoints need the answer's text and tool calls (to remember the turn) whatever
the upstream spoke, and to re-render it when client and upstream speak different protocols.
Readers turn a vendor's JSON document or SSE frames into :class:`Answer` /
:data:`AnswerEvent`; :class:`AnswerBuilder` folds events into an :class:`Answer`.

Stop reasons use Anthropic's names (``end_turn``, ``max_tokens``, ``stop_sequence``,
``tool_use``, ``refusal``); OpenAI's ``finish_reason`` is mapped to and from them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mnemo_common.llm.base import StreamEnd, TextDelta, Usage

_FROM_OPENAI = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_TO_OPENAI = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def stop_from_openai(reason: str | None) -> str:
    return _FROM_OPENAI.get(reason or "stop", "end_turn")


def stop_to_openai(reason: str | None) -> str:
    return _TO_OPENAI.get(reason or "end_turn", "stop")


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str = ""  # JSON text, as streamed

    def input(self) -> Any:
        """The arguments as a JSON value (``{}`` when empty; the raw text when not JSON)."""
        if not self.arguments.strip():
            return {}
        try:
            return json.loads(self.arguments)
        except ValueError:
            return self.arguments


@dataclass(frozen=True)
class ToolStart:
    """A tool call begins (``index`` counts tool calls of the answer from 0)."""

    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ToolArgs:
    index: int
    partial_json: str


AnswerEvent = TextDelta | ToolStart | ToolArgs | StreamEnd


@dataclass
class Answer:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    model: str = ""
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)

    @property
    def is_final(self) -> bool:
        """True unless the model asked for tools or paused its turn (an agent loop's
        intermediate step: the client calls again to continue)."""
        return not self.tool_calls and self.stop_reason not in ("tool_use", "pause_turn")


class AnswerBuilder:
    """Folds :data:`AnswerEvent`s into an :class:`Answer`."""

    def __init__(self, model: str = "") -> None:
        self.answer = Answer(model=model)
        self._text: list[str] = []
        self.ended = False

    def add(self, event: AnswerEvent) -> None:
        if isinstance(event, TextDelta):
            self._text.append(event.text)
        elif isinstance(event, ToolStart):
            self.answer.tool_calls.append(ToolCall(event.id, event.name))
        elif isinstance(event, ToolArgs):
            if 0 <= event.index < len(self.answer.tool_calls):
                self.answer.tool_calls[event.index].arguments += event.partial_json
        else:
            self.ended = True
            a = self.answer
            a.model = event.model or a.model
            a.usage, a.stop_reason, a.stop_sequence = (
                event.usage,
                event.stop_reason,
                event.stop_sequence,
            )

    def result(self) -> Answer:
        self.answer.text = "".join(self._text)
        return self.answer


# --- non-streamed documents --------------------------------------------------------------


def answer_from_anthropic(doc: Any) -> Answer:
    doc = doc if isinstance(doc, dict) else {}
    texts, calls = [], []
    for block in doc.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            args = json.dumps(block.get("input", {}), ensure_ascii=False)
            calls.append(ToolCall(str(block.get("id", "")), str(block.get("name", "")), args))
    usage = doc.get("usage") or {}
    return Answer(
        "".join(texts),
        calls,
        str(doc.get("model", "")),
        doc.get("stop_reason"),
        doc.get("stop_sequence"),
        Usage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)),
    )


def answer_from_openai(doc: Any) -> Answer:
    doc = doc if isinstance(doc, dict) else {}
    choices = doc.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    calls = [
        ToolCall(
            str(c.get("id", "")),
            str((c.get("function") or {}).get("name", "")),
            str((c.get("function") or {}).get("arguments", "")),
        )
        for c in message.get("tool_calls") or []
        if isinstance(c, dict)
    ]
    usage = doc.get("usage") or {}
    return Answer(
        text,
        calls,
        str(doc.get("model", "")),
        stop_from_openai(choice.get("finish_reason")),
        None,
        Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
    )


# --- SSE ---------------------------------------------------------------------------------


class SSESplitter:
    """Cuts a byte stream into whole SSE frames (each ending with a blank line; CRLF line
    ends become LF, which SSE treats alike)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._buffer += chunk
        if b"\r" in self._buffer:  # CRLF line ends (a CR may end this chunk, its LF the next)
            held = self._buffer.endswith(b"\r")
            body = self._buffer[:-1] if held else self._buffer
            self._buffer = body.replace(b"\r\n", b"\n") + (b"\r" if held else b"")
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                return
            frame, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
            yield frame

    def rest(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        return rest


def parse_frame(frame: bytes) -> tuple[str, str]:
    """(event name, data) of one SSE frame."""
    event, data = "", []
    for line in frame.decode("utf-8", "replace").split("\n"):
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    return event, "\n".join(data)


def _json(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class AnthropicStreamReader:
    """Anthropic Messages SSE → :data:`AnswerEvent`s (``error`` frames → ``error``)."""

    def __init__(self) -> None:
        self.model = ""
        self.error: dict[str, Any] | None = None
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._usage = Usage()
        self._stop: tuple[str | None, str | None] = (None, None)
        self._last: tuple[bytes, bool] = (b"", False)  # the frame just read: is it the end?

    def terminal(self, frame: bytes) -> bool:
        if frame is self._last[0]:
            return self._last[1]  # read() parsed it already
        return parse_frame(frame)[0] == "message_stop"

    def read(self, frame: bytes) -> Iterator[AnswerEvent]:
        event, data = parse_frame(frame)
        self._last = (frame, event == "message_stop")
        doc = _json(data)
        kind = doc.get("type") or event
        if kind == "message_start":
            message = doc.get("message") or {}
            self.model = str(message.get("model", ""))
            usage = message.get("usage") or {}
            self._usage = Usage(
                int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
            )
        elif kind == "content_block_start":
            block = doc.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = len(self._tools)
                self._tools[int(doc.get("index", 0))] = index
                yield ToolStart(index, str(block.get("id", "")), str(block.get("name", "")))
        elif kind == "content_block_delta":
            delta = doc.get("delta") or {}
            if delta.get("type") == "text_delta":
                yield TextDelta(str(delta.get("text", "")))
            elif delta.get("type") == "input_json_delta":
                tool = self._tools.get(int(doc.get("index", 0)))
                if tool is not None:
                    yield ToolArgs(tool, str(delta.get("partial_json", "")))
        elif kind == "message_delta":
            delta, usage = doc.get("delta") or {}, doc.get("usage") or {}
            self._stop = (delta.get("stop_reason"), delta.get("stop_sequence"))
            self._usage = Usage(
                int(usage.get("input_tokens") or self._usage.input_tokens),
                int(usage.get("output_tokens") or self._usage.output_tokens),
            )
        elif kind == "message_stop":
            yield StreamEnd(self.model, self._usage, *self._stop)
        elif kind == "error":
            self.error = doc


class OpenAIStreamReader:
    """Chat Completions SSE → :data:`AnswerEvent`s (choice 0; an error chunk → ``error``)."""

    def __init__(self) -> None:
        self.model = ""
        self.error: dict[str, Any] | None = None
        self._tools: dict[int, int] = {}
        self._usage = Usage()
        self._finish: str | None = None
        self._last: tuple[bytes, bool] = (b"", False)  # the frame just read: is it the end?

    def terminal(self, frame: bytes) -> bool:
        if frame is self._last[0]:
            return self._last[1]  # read() parsed it already
        return parse_frame(frame)[1].strip() == "[DONE]"

    def read(self, frame: bytes) -> Iterator[AnswerEvent]:
        _, data = parse_frame(frame)
        done = data.strip() == "[DONE]"
        self._last = (frame, done)
        if done:
            yield StreamEnd(self.model, self._usage, stop_from_openai(self._finish))
            return
        doc = _json(data)
        if "error" in doc:
            self.error = doc
            return
        self.model = str(doc.get("model") or self.model)
        usage = doc.get("usage")
        if isinstance(usage, dict):
            self._usage = Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            )
        for choice in doc.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if delta.get("content"):
                yield TextDelta(str(delta["content"]))
            for call in delta.get("tool_calls") or []:
                position = int(call.get("index", 0))
                fn = call.get("function") or {}
                if position not in self._tools:
                    self._tools[position] = len(self._tools)
                    yield ToolStart(
                        self._tools[position], str(call.get("id", "")), str(fn.get("name", ""))
                    )
                if fn.get("arguments"):
                    yield ToolArgs(self._tools[position], str(fn["arguments"]))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
