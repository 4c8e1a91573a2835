"""Validation of free text (message content, preference values) before it is stored."""

from __future__ import annotations

from mnemo_memory.errors import InvalidArgumentError


def checked_text(value: str, field: str, max_bytes: int, *, required: bool = False) -> str:
    """``value`` when it is valid UTF-8 text of at most ``max_bytes`` bytes without NUL;
    else InvalidArgumentError naming ``field``."""
    if required and not value:
        raise InvalidArgumentError(field, "is required")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8
        raise InvalidArgumentError(field, "is not valid UTF-8") from None
    if size > max_bytes:
        raise InvalidArgumentError(field, f"is {size} bytes; the limit is {max_bytes}")
    if "\x00" in value:
        raise InvalidArgumentError(field, "contains a NUL character")
    return value
