"""Helpers shared by the chat endpoints: ids, size checks and response headers."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from ..chat.service import PreparedTurn
from ..core.config import GatewaySettings
from ..core.errors import ApiError, valid_id
from .deps import new_idempotency_key, new_thread_id

THREAD_HEADER = "X-Mnemo-Thread-Id"
USER_HEADER = "X-Mnemo-User-Id"
MEMORY_HEADER = "X-Mnemo-Memory"
MISSING_HEADER = "X-Mnemo-Memory-Missing"
PROVIDER_HEADER = "X-Mnemo-Provider"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def checked_id(value: str | None, field: str) -> str | None:
    """``value`` when it is a valid id, None when absent; 422 naming ``field`` otherwise."""
    return None if value is None or value == "" else valid_id(value, field)


def thread_id_of(value: str | None, field: str) -> str:
    """The thread of a turn: the given one, or a new thread when none was given."""
    return checked_id(value, field) or new_thread_id()


def idempotency_key_of(request: Request, body_value: str | None = None) -> str:
    """A client-chosen key (header or body) makes retries safe; otherwise a fresh one."""
    value = body_value or request.headers.get(IDEMPOTENCY_HEADER)
    return checked_id(value, "idempotency_key") or new_idempotency_key()


def check_prompt_size(text: str, settings: GatewaySettings, field: str) -> None:
    """413 ``prompt_too_large`` past ``GATEWAY__MAX_PROMPT_CHARS`` characters, or past the
    ``MEMORY__MAX_MESSAGE_BYTES`` the memory service stores (multi-byte text reaches the
    byte limit long before the character one)."""
    limit = settings.gateway.max_prompt_chars
    if len(text) > limit:
        raise ApiError(
            413,
            "prompt_too_large",
            f"{field} is {len(text)} characters; the limit is {limit}",
            field=field,
        )
    size, max_bytes = len(text.encode("utf-8", "surrogatepass")), settings.memory.max_message_bytes
    if size > max_bytes:
        raise ApiError(
            413,
            "prompt_too_large",
            f"{field} is {size} bytes of UTF-8; the limit is {max_bytes}",
            field=field,
        )


def check_text(text: str, field: str) -> str:
    """``text`` when it can be encoded as UTF-8; 422 naming ``field`` otherwise.

    JSON may escape a lone UTF-16 surrogate (``"\\ud83d"``: JavaScript cutting an emoji in
    half). That is not text: protobuf (the memory service) and the LLM APIs refuse it.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(
            422,
            "invalid_request",
            f"{field} is not valid Unicode text: a lone surrogate "
            f"(U+{ord(text[exc.start]):04X}) at character {exc.start}",
            field=field,
        ) from None
    return text


def turn_headers(prepared: PreparedTurn, provider: str) -> dict[str, str]:
    """The turn's response headers. Call it *after* the commit for a non-streamed answer
    (``X-Mnemo-Memory`` then says ``degraded`` when the turn was not stored); a stream's
    headers leave before the commit, and :func:`memory_outcome` closes the stream."""
    headers = {
        THREAD_HEADER: prepared.turn.thread_id,
        MEMORY_HEADER: prepared.memory,
        PROVIDER_HEADER: provider,
    }
    if prepared.missing:
        headers[MISSING_HEADER] = ",".join(prepared.missing)
    return headers


def memory_outcome(prepared: PreparedTurn) -> dict[str, Any]:
    """The turn's final memory status (after the commit), sent at the end of a stream:
    the ``done`` event of /v1/chat, an ``event: mnemo`` of /v1/messages, an SSE comment
    of /v1/chat/completions (docs/api.md)."""
    return {
        "memory": prepared.memory,
        "committed": prepared.committed,
        "missing": list(prepared.missing),
        "thread_id": prepared.turn.thread_id,
    }
