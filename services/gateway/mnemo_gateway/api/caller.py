"""Who a drop-in request is for and which thread it continues, from its raw fields.

Kept apart from the endpoint bodies so every drop-in route (messages, chat completions,
count_tokens) names its user and thread by the same rules: a malformed id field is a 422
naming it, never a 500.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request

from ..chat.fingerprint import conversation_thread_id
from ..core.auth import Identity
from ..core.errors import ApiError
from .turns import THREAD_HEADER, USER_HEADER, checked_id


def requested_user(request: Request, *fields: tuple[str, Any]) -> tuple[str | None, str]:
    """The first user id given among the body ``fields`` (``(name, value)`` in precedence
    order), else the ``X-Mnemo-User-Id`` header: ``(value, field name)``.

    A value that is not a string (an integer database id, ``null`` aside) is a 422 naming
    its field; an empty string counts as absent.
    """
    for name, value in fields:
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            hint = f' (send it as text: "{value}")' if type(value) in (int, float) else ""
            raise ApiError(
                422,
                "invalid_id",
                f"{name} must be a string, not {type(value).__name__}{hint}",
                field=name,
            )
        return value, name
    return request.headers.get(USER_HEADER) or None, USER_HEADER


def memory_user(identity: Identity, request: Request, *fields: tuple[str, Any]) -> str:
    """The memory-service user of a drop-in request (see :func:`requested_user`)."""
    value, field = requested_user(request, *fields)
    return identity.memory_user_id(value, field)


def conversation_thread(request: Request, user_id: str, opening: Mapping[str, Any]) -> str:
    """``X-Mnemo-Thread-Id`` when sent (validated), else the conversation's thread: the
    fingerprint of its opening for this user (:mod:`mnemo_gateway.chat.fingerprint`)."""
    return checked_id(request.headers.get(THREAD_HEADER), THREAD_HEADER) or conversation_thread_id(
        user_id, opening
    )
