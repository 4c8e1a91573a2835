"""What Mnemo reads from, and adds to, a drop-in request body (either protocol).

* :func:`read_exchange` — the user's text of this exchange (the memory query and the stored
  user message) and the tool steps the client's transcript carries since it (ADR 0010).
* :func:`add_memory` — the memory context appended to the system prompt, the one change
  besides the model name that a forwarded body gets.
* :func:`tool_record` / :func:`split_stored_answer` — the compact record of a tool-using
  turn stored after the assistant's final text.
* :func:`offline_request` — a body flattened for the offline provider.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mnemo_common.llm.base import ChatMessage

from ..core.errors import ApiError
from .answer import ToolCall

Protocol = Literal["anthropic", "openai"]

#: the record's first line; everything from it on is the record, not the answer
TOOL_RECORD_HEAD = "\n\n[tool calls]\n"
MAX_RECORDED_CALLS = 8
MAX_NAME_CHARS = 64
MAX_ARGS_CHARS = 160
MAX_RESULT_CHARS = 240


@dataclass
class ToolStep:
    name: str
    arguments: str
    result: str | None = None


@dataclass
class Exchange:
    """The exchange a drop-in request continues: since the last user message with text."""

    user_text: str
    steps: list[ToolStep] = field(default_factory=list)
    prefill: str = ""  # a trailing assistant message the answer continues


def invalid(message: str, field: str) -> ApiError:
    return ApiError(422, "invalid_request", message, field=field)


def check_strings(value: Any, path: str = "") -> None:
    """422 naming the first string of ``value`` that is not valid Unicode (a lone UTF-16
    surrogate, which JSON can escape): it can be neither stored nor sent upstream."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise invalid(
                    f"{path} is not valid Unicode text: a lone surrogate "
                    f"(U+{ord(value[exc.start]):04X}) at character {exc.start}",
                    path,
                ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, f"{path}.{i}")


def _text_of(content: Any) -> str:
    """The text parts of a message's content (tool results, images... are not text)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text" and b.get("text")
        )
    return ""


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                parts.append(
                    str(block.get("text", ""))
                    if block.get("type") == "text"
                    else f"[{block.get('type')}]"
                )
        return " ".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def check_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The body's messages, each an object with a role (422 naming the field otherwise); the
    last one must have content (the upstream would refuse it after memory was fetched)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("messages must be a non-empty list", "messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise invalid(f"messages.{i} must be an object with a role", f"messages.{i}")
    last = messages[-1]
    content = last.get("content")
    empty = content is None or content == [] or (isinstance(content, str) and not content.strip())
    if empty and not last.get("tool_calls"):
        raise invalid("the last message has no content", "messages")
    return messages


def read_exchange(protocol: Protocol, messages: list[dict[str, Any]]) -> Exchange:
    """The user's text and the tool steps since it (see ADR 0010)."""
    start = next(
        (
            i
            for i in range(len(messages) - 1, -1, -1)
            if messages[i]["role"] == "user" and _text_of(messages[i].get("content")).strip()
        ),
        None,
    )
    user_text = _text_of(messages[start].get("content")) if start is not None else ""
    calls: dict[str, ToolStep] = {}
    order: list[ToolStep] = []
    for msg in messages[start or 0 :]:
        content = msg.get("content")
        if protocol == "openai":
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                step = ToolStep(str(fn.get("name", "")), str(fn.get("arguments", "")))
                calls[str(call.get("id"))] = step
                order.append(step)
            if msg["role"] == "tool" and str(msg.get("tool_call_id")) in calls:
                calls[str(msg.get("tool_call_id"))].result = _result_text(content)
            continue
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "tool_use":
                args = json.dumps(block.get("input", {}), ensure_ascii=False)
                step = ToolStep(str(block.get("name", "")), args)
                calls[str(block.get("id"))] = step
                order.append(step)
            elif block.get("type") == "tool_result" and str(block.get("tool_use_id")) in calls:
                calls[str(block.get("tool_use_id"))].result = _result_text(block.get("content"))
    last = messages[-1]
    prefill = _text_of(last.get("content")) if last["role"] == "assistant" else ""
    return Exchange(user_text, order, prefill)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_record(steps: Sequence[ToolStep], pending: Sequence[ToolCall] = ()) -> str:
    """One line per tool call: ``name(args) → result`` (shortened), at most
    :data:`MAX_RECORDED_CALLS`; empty when no tool was used."""
    every = list(steps) + [ToolStep(c.name, c.arguments) for c in pending]
    if not every:
        return ""
    lines = []
    for step in every[:MAX_RECORDED_CALLS]:
        line = f"- {_clip(step.name, MAX_NAME_CHARS)}({_clip(step.arguments, MAX_ARGS_CHARS)})"
        if step.result is not None:
            line += f" → {_clip(step.result, MAX_RESULT_CHARS)}"
        lines.append(line)
    if len(every) > MAX_RECORDED_CALLS:
        lines.append(f"- … and {len(every) - MAX_RECORDED_CALLS} more")
    return "\n".join(lines)


def stored_answer(text: str, record: str) -> str:
    """The assistant message as stored: the final text, then the tool record."""
    return text + TOOL_RECORD_HEAD + record if record else text


def split_stored_answer(content: str) -> str:
    """The answer part of a stored assistant message (a replay returns only that)."""
    return content.split(TOOL_RECORD_HEAD, 1)[0]


# --- memory into the system prompt -------------------------------------------------------


def add_memory(protocol: Protocol, body: dict[str, Any], memory: str) -> dict[str, Any]:
    """``body`` with ``memory`` appended to its system prompt (the client's own system text
    and blocks, ``cache_control`` included, stay as sent, in front)."""
    if not memory:
        return body
    out = dict(body)
    if protocol == "anthropic":
        system = body.get("system")
        if isinstance(system, list):
            out["system"] = [*system, {"type": "text", "text": memory}]
        elif isinstance(system, str) and system.strip():
            out["system"] = f"{system}\n\n{memory}"
        else:
            out["system"] = memory
        return out
    messages = list(body["messages"])
    for i, msg in enumerate(messages):
        if msg.get("role") in ("system", "developer"):
            content = msg.get("content")
            if isinstance(content, list):
                content = [*content, {"type": "text", "text": memory}]
            else:
                content = f"{content}\n\n{memory}" if content else memory
            messages[i] = {**msg, "content": content}
            break
    else:
        messages.insert(0, {"role": "system", "content": memory})
    out["messages"] = messages
    return out


# --- the offline provider ----------------------------------------------------------------


def _flat(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_result":
            parts.append(f"[tool result: {_result_text(block.get('content'))}]")
        elif kind == "tool_use":
            parts.append(f"[tool call: {block.get('name')}]")
        else:
            parts.append(f"[{kind}]")
    return "\n".join(p for p in parts if p)


def offline_request(
    protocol: Protocol, body: dict[str, Any]
) -> tuple[str, list[ChatMessage], int | None, list[str]]:
    """(system, messages, max_tokens, stop sequences) of a body, as text for the offline
    provider (images and tool blocks become short bracketed notes)."""
    system, messages = "", []
    if protocol == "anthropic":
        system = _flat(body.get("system"))
        stop = body.get("stop_sequences") or []
        max_tokens = body.get("max_tokens")
    else:
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    for msg in body["messages"]:
        role, text = msg["role"], _flat(msg.get("content"))
        if role in ("system", "developer"):
            system = f"{system}\n\n{text}" if system else text
            continue
        if msg.get("tool_calls"):
            names = ", ".join(str((c.get("function") or {}).get("name")) for c in msg["tool_calls"])
            text = f"{text}\n[tool call: {names}]".strip()
        if role == "tool":
            role, text = "user", f"[tool result: {text}]"
        messages.append(ChatMessage("assistant" if role == "assistant" else "user", text))
    return system, messages, max_tokens, [str(s) for s in stop]
