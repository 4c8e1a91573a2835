"""Token estimates used to fit memory into a prompt budget.

A documented estimate, not a model tokenizer: Claude's and GPT's tokenizers average close
to 4 characters per token on English prose; we count ``ceil(chars / 4)`` plus one per
message for role framing. Budgets are therefore approximate by design; ``docs`` say so.
"""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text`` (0 for empty text)."""
    if not text:
        return 0
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_message_tokens(content: str) -> int:
    """Tokens of one chat message including its role framing."""
    return estimate_tokens(content) + MESSAGE_OVERHEAD_TOKENS
