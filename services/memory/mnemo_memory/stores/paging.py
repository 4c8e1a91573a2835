"""Opaque page tokens for score-ordered listings (threads by last activity).

A token is ``"<score>:<skip>"`` base64-encoded: continue at scores <= ``score``, skipping
the first ``skip`` entries that have exactly that score (ties already returned).
"""

from __future__ import annotations

import base64
import binascii
import math

from mnemo_memory.errors import InvalidArgumentError

_MAX_SKIP = 1_000_000


def decode_cursor(token: str) -> tuple[str, int]:
    """(max score for ZREVRANGEBYSCORE, entries to skip); ``("+inf", 0)`` for no token."""
    if not token:
        return "+inf", 0
    try:
        raw = base64.urlsafe_b64decode(token.encode()).decode()
        score_s, skip_s = raw.split(":")
        score, skip = float(score_s), int(skip_s)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgumentError("page_token", "is not a token this service issued") from None
    # scores are millisecond timestamps; skip counts ties already returned (bounded)
    if not math.isfinite(score) or abs(score) > 2**53 or not 0 <= skip <= _MAX_SKIP:
        raise InvalidArgumentError("page_token", "is not a token this service issued")
    return repr(score) if score != int(score) else str(int(score)), skip


def encode_cursor(page: list[tuple[str, float]], max_score: str, skip: int) -> str:
    """Token continuing after the last row of ``page`` (rows are (member, score))."""
    last = page[-1][1]
    ties = sum(1 for _, s in page if s == last)
    if max_score != "+inf" and float(max_score) == last:
        ties += skip
    score = str(int(last)) if last == int(last) else repr(last)
    return base64.urlsafe_b64encode(f"{score}:{ties}".encode()).decode()
