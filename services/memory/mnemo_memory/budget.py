"""Fit a turn's context into a token budget (PrepareTurn) — the one place it is applied.

Each item costs what :mod:`mnemo_common.context` renders for it in the gateway's system
prompt, its section's title included once the section has an item (ADR 0027), so the
memory sections of the prompt never cost more than ``context_tokens`` ≤ the budget.
Order of priority, each step taking only what still fits:

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

from mnemo_common.context import (
    HISTORY_TITLE,
    MEMORIES_TITLE,
    PREFERENCES_TITLE,
    SUMMARY_TITLE,
    memory_tokens,
    message_tokens,
    preference_tokens,
    summary_tokens,
    title_tokens,
)

if TYPE_CHECKING:
    from mnemo_memory.longterm.ranking import Ranked
    from mnemo_memory.stores.threads import StoredMessage

#: share of the budget recent messages may take before summary/preferences/memories
MESSAGE_SHARE = 0.6


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


class _Meter:
    """Tokens spent so far; a section's title is charged with its first item."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self.titled: set[str] = set()

    def take(self, title: str, cost: int, cap: int | None = None) -> bool:
        if title not in self.titled:
            cost += title_tokens(title)
        if self.used + cost > (self.budget if cap is None else cap):
            return False
        self.used += cost
        self.titled.add(title)
        return True


def excerpt_budget(budget: int) -> int:
    """The most one recalled memory (a thread excerpt, ADR 0025) may cost by
    ``estimate_tokens`` for :func:`fit_context` to keep it alone in ``budget``: the
    section's title and the line's bullet and newline taken off."""
    return max(1, budget - title_tokens(MEMORIES_TITLE) - 2)


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
    meter = _Meter(budget)
    newest_first = list(reversed(messages))
    taken = 0
    cap = int(budget * MESSAGE_SHARE)
    while taken < len(newest_first):
        if not meter.take(HISTORY_TITLE, message_tokens(newest_first[taken].content), cap):
            break
        taken += 1
    if summary.strip():
        if meter.take(SUMMARY_TITLE, summary_tokens(summary)):
            out.summary = summary
        else:
            out.dropped_summary = True
    for key in sorted(preferences):
        if meter.take(PREFERENCES_TITLE, preference_tokens(key, preferences[key])):
            out.preferences[key] = preferences[key]
        else:
            out.dropped_preferences += 1
    for memory in memories:
        if meter.take(MEMORIES_TITLE, memory_tokens(memory.record.text)):
            out.memories.append(memory)
        else:
            out.dropped_memories += 1
    while taken < len(newest_first):
        if not meter.take(HISTORY_TITLE, message_tokens(newest_first[taken].content)):
            break
        taken += 1
    out.messages = list(reversed(newest_first[:taken]))
    out.dropped_messages = len(messages) - taken
    out.tokens = meter.used
    return out
