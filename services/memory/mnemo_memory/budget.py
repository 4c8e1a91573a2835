"""Fit a turn's context into a token budget (PrepareTurn).

Token counts are :mod:`mnemo_common.tokens` estimates (~4 characters per token plus a
per-message overhead). Order of priority, each step taking only what still fits:

1. recent messages, newest first and contiguous (a gap would garble the conversation),
   up to ``MESSAGE_SHARE`` of the budget;
2. the running summary (all or nothing);
3. preferences, in key order, one by one;
4. recalled long-term memories, best first — one that does not fit is skipped and
   smaller ones after it may still fit;
5. whatever is left goes to more (older) messages, still contiguous.

Everything left out is counted in ``DroppedContext``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mnemo_common.tokens import MESSAGE_OVERHEAD_TOKENS, estimate_message_tokens, estimate_tokens

if TYPE_CHECKING:
    from mnemo_memory.longterm.ranking import Ranked
    from mnemo_memory.stores.threads import StoredMessage

#: share of the budget recent messages may take before summary/preferences/memories
MESSAGE_SHARE = 0.6


def preference_tokens(key: str, value: str) -> int:
    return estimate_tokens(f"{key}: {value}") + 1


def memory_tokens(text: str) -> int:
    return estimate_tokens(text) + 2


@dataclass
class FittedContext:
    messages: list[StoredMessage] = field(default_factory=list)  # oldest first
    summary: str = ""
    preferences: dict[str, str] = field(default_factory=dict)
    memories: list[Ranked] = field(default_factory=list)  # best first
    tokens: int = 0
    dropped_messages: int = 0
    dropped_summary: bool = False
    dropped_preferences: int = 0
    dropped_memories: int = 0


def fit_context(
    budget: int,
    messages: Sequence[StoredMessage],
    summary: str,
    preferences: dict[str, str],
    memories: Sequence[Ranked],
) -> FittedContext:
    """Choose what fits in ``budget`` tokens. ``messages`` oldest first; ``memories`` best
    first."""
    out = FittedContext()
    used = 0
    newest_first = list(reversed(messages))
    taken = 0
    cap = int(budget * MESSAGE_SHARE)
    while taken < len(newest_first):
        cost = estimate_message_tokens(newest_first[taken].content)
        if used + cost > cap:
            break
        used += cost
        taken += 1
    if summary:
        cost = estimate_tokens(summary) + MESSAGE_OVERHEAD_TOKENS
        if used + cost <= budget:
            used += cost
            out.summary = summary
        else:
            out.dropped_summary = True
    for key in sorted(preferences):
        cost = preference_tokens(key, preferences[key])
        if used + cost <= budget:
            used += cost
            out.preferences[key] = preferences[key]
        else:
            out.dropped_preferences += 1
    for memory in memories:
        cost = memory_tokens(memory.record.text)
        if used + cost <= budget:
            used += cost
            out.memories.append(memory)
        else:
            out.dropped_memories += 1
    while taken < len(newest_first):
        cost = estimate_message_tokens(newest_first[taken].content)
        if used + cost > budget:
            break
        used += cost
        taken += 1
    out.messages = list(reversed(newest_first[:taken]))
    out.dropped_messages = len(messages) - taken
    out.tokens = used
    return out
