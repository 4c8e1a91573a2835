"""Validation of free text (message content, preference values) before it is stored."""

from __future__ import annotations

from mnemo_common.text import control_char_problem

from mnemo_memory.errors import InvalidArgumentError


def checked_text(value: str, field: str, max_bytes: int, *, required: bool = False) -> str:
    """``value`` when it is valid UTF-8 text of at most ``max_bytes`` bytes without control
    characters (:mod:`mnemo_common.text`); else InvalidArgumentError naming ``field``."""
    if required and not value:
        raise InvalidArgumentError(field, "is required")
    problem = control_char_problem(value)
    if problem is not None:
        raise InvalidArgumentError(field, problem)
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise InvalidArgumentError(field, f"is {size} bytes; the limit is {max_bytes}")
    return value


def checked_clean(value: str, field: str) -> str:
    """``value`` when it holds no refused character; else InvalidArgumentError naming ``field``
    (for text with a limit of its own, e.g. a memory's characters)."""
    problem = control_char_problem(value)
    if problem is not None:
        raise InvalidArgumentError(field, problem)
    return value
