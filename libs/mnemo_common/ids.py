"""Identifier validation shared by every service.

Ids become parts of Redis keys and vector-store filters, so anything that could escape
its namespace (``:``, ``*``, ``{``, whitespace, control characters, over-long) is refused.
``@`` and ``+`` are allowed: apps commonly identify users by e-mail address (OpenAI's
``user`` field, a JWT ``sub``).
"""

from __future__ import annotations

import re
import uuid

ID_PATTERN = r"^[A-Za-z0-9._@+-]{1,128}$"
_ID_RE = re.compile(ID_PATTERN)


class InvalidIdError(ValueError):
    """An id failed validation; ``field`` names the offending request field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def validate_id(value: str | None, field: str) -> str:
    """Return ``value`` when it is a safe id, else raise :class:`InvalidIdError`."""
    if value is None or value == "":
        raise InvalidIdError(field, "is required")
    if not _ID_RE.fullmatch(value):
        if len(value) > 128:
            raise InvalidIdError(field, "is longer than 128 characters")
        raise InvalidIdError(
            field, "may contain only letters, digits, '.', '_', '-', '@' and '+' (1-128 characters)"
        )
    return value


def is_valid_id(value: str | None) -> bool:
    return bool(value) and _ID_RE.fullmatch(value or "") is not None


def new_id(prefix: str = "") -> str:
    """A fresh random id that passes :func:`validate_id`."""
    return f"{prefix}{uuid.uuid4().hex}"
