"""The OpenAI Responses API on the wire: request fields Mnemo honours, the ``input`` items
read as a conversation, and the response object and stream events written back.

Mnemo answers a Responses call like a Chat Completions one (text turns, the user's memory
in the instructions, the turn committed to the conversation's thread). What it cannot honour
is refused with 422 naming the field, never dropped: the server-side state of the API
(``previous_response_id``, ``conversation``, ``store: false``...), tools, non-text input and
output formats.
"""

from __future__ import annotations

from typing import Any

from mnemo_common.llm.base import ChatMessage, Usage

from ..core.config import GatewaySettings
from ..core.errors import ApiError
from .turns import check_prompt_size, check_text

#: fields read by the endpoint; everything else must be absent or ask for nothing
HONOURED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "stream",
        "max_output_tokens",
        "temperature",
        "user",
        "safety_identifier",
    }
)
#: fields whose default-like values ask for nothing Mnemo would ignore
NOTHING_ASKED: dict[str, Any] = {
    "store": lambda v: v in (None, True),
    "tool_choice": lambda v: v in (None, "auto", "none"),
    "parallel_tool_calls": lambda v: True,  # only meaningful with tools, which are refused
    "text": lambda v: v in (None, {}, {"format": {"type": "text"}}),
    "truncation": lambda v: v in (None, "disabled"),
    "stream_options": lambda v: v in (None, {}),
}
TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
SYSTEM_ROLES = frozenset({"system", "developer"})


def refuse_unhonoured(body: dict[str, Any]) -> None:
    """422 ``unsupported_feature`` naming the first field Mnemo would otherwise ignore."""
    for name, value in body.items():
        if name in HONOURED or value is None:
            continue
        check = NOTHING_ASKED.get(name)
        if check is not None and check(value):
            continue
        if check is None and value in ([], {}, False, 0, ""):
            continue
        why = {
            "previous_response_id": "Mnemo keeps no responses: send the conversation in input",
            "conversation": "Mnemo keeps no responses: send the conversation in input",
            "store": "Mnemo stores every turn in the user's memory",
        }.get(name, "it would be ignored")
        raise ApiError(
            422,
            "unsupported_feature",
            f"{name} is not supported through Mnemo's Responses API ({why})",
            field=name,
        )


def _part_text(content: Any, field: str) -> str:
    if isinstance(content, str):
        return check_text(content, field)
    if not isinstance(content, list):
        raise ApiError(422, "invalid_request", f"{field} must be a string or a list", field=field)
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS:
            raise ApiError(
                422,
                "unsupported_content",
                f"content of type {kind!r} is not supported; send input_text",
                field=field,
            )
        texts.append(str(part.get("text", "")))
    return check_text("\n".join(texts), field)


def read_input(
    instructions: str | None, items: Any
) -> tuple[str, list[ChatMessage], list[dict[str, Any]]]:
    """(instructions with the system/developer items, the conversation, the messages in
    Chat Completions form for the conversation fingerprint)."""
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise ApiError(
            422, "invalid_request", "input must be a string or a list of messages", field="input"
        )
    system = [check_text(instructions, "instructions")] if instructions else []
    convo: list[ChatMessage] = []
    flat: list[dict[str, Any]] = [{"role": "system", "content": system[0]}] if system else []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            kind = item.get("type") if isinstance(item, dict) else type(item).__name__
            raise ApiError(
                422,
                "unsupported_feature",
                f"input items of type {kind!r} are not supported through Mnemo",
                field=f"input.{i}.type",
            )
        role = item.get("role")
        text = _part_text(item.get("content"), f"input.{i}.content")
        if role in SYSTEM_ROLES:
            system.append(text)
        elif role in ("user", "assistant"):
            convo.append(ChatMessage(role, text))
        else:
            raise ApiError(
                422, "invalid_request", f"role {role!r} is not supported", field=f"input.{i}.role"
            )
        flat.append({"role": role, "content": text})
    return "\n\n".join(system), convo, flat


def message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [output_part(text)]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def usage_doc(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def response_doc(
    body: dict[str, Any],
    *,
    response_id: str,
    created: int,
    model: str,
    output: list[dict[str, Any]],
    stop_reason: str | None = None,
    usage: Usage | None = None,
) -> dict[str, Any]:
    """The Response object; ``usage`` None = still in progress."""
    cut = stop_reason in ("max_tokens", "length")
    status = "in_progress" if usage is None else ("incomplete" if cut else "completed")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut and usage else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": {},
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "store": True,
        "temperature": body.get("temperature"),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": usage_doc(usage) if usage else None,
        "user": body.get("user"),
    }


def check_conversation(convo: list[ChatMessage], settings: GatewaySettings) -> str:
    """The user's new message, size-checked: the conversation must end with a user message
    that has text (the LLM would refuse it after memory was fetched)."""
    if not convo or convo[-1].role != "user":
        raise ApiError(
            422, "invalid_request", "the last message must come from the user", field="input"
        )
    if not convo[-1].content.strip():
        raise ApiError(422, "invalid_request", "the last user message has no text", field="input")
    check_prompt_size(convo[-1].content, settings, "input")
    return convo[-1].content
