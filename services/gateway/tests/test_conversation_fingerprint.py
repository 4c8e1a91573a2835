"""The conversation fingerprint itself (ADR 0011): what is and is not the same opening."""

from __future__ import annotations

from mnemo_common.ids import is_valid_id
from mnemo_gateway.chat.fingerprint import (
    anthropic_opening,
    conversation_thread_id,
    openai_opening,
)


def anthropic(system, first, *rest, user="u"):
    messages = [{"role": "user", "content": first}, *rest]
    return conversation_thread_id(user, anthropic_opening(system, messages))


def test_the_same_opening_in_any_shape_is_one_thread():
    plain = anthropic("S", "hi")
    assert is_valid_id(plain) and plain.startswith("cv_")
    blocks = [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]
    system = [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert anthropic(system, blocks) == plain
    later = ({"role": "assistant", "content": "hello"}, {"role": "user", "content": "more"})
    assert anthropic("S", "hi", *later) == plain
    opening = openai_opening(
        [
            {"role": "developer", "content": [{"type": "text", "text": "S"}]},
            {"role": "user", "content": "hi"},
            {"role": "system", "content": "a system message after the opening"},
        ]
    )
    assert conversation_thread_id("u", opening) == plain


def test_any_difference_in_the_opening_or_the_user_is_another_thread():
    plain = anthropic("S", "hi")
    others = {
        anthropic("Sh", "i"),  # pieces are length-prefixed: no ambiguity
        anthropic("S", "hi", user="v"),
        anthropic("S", "hi", user="tenant.u"),
        anthropic(None, "hi"),
        anthropic("S", "hi!"),
        anthropic("S", [{"type": "text", "text": "hi"}, {"type": "text", "text": ""}]),
        anthropic(
            "S",
            [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AA"},
                }
            ],
        ),
    }
    assert plain not in others and len(others) == 7
