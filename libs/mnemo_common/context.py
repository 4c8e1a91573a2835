"""The memory sections of a system prompt: how they are rendered and what they cost.

One module for both halves of the contract (ADR 0027): the memory service's
``budget.fit_context`` charges each item what :func:`render_sections` will spend on it,
so the sections the gateway puts into the prompt (``chat/prompt.py``) never cost more
than the ``context_tokens`` PrepareTurn reported, nor than the turn's budget.

Costs are :mod:`mnemo_common.tokens` estimates. Each one is an upper bound of the
rendered text's estimate: a title costs its line (plus the blank line before it), an item
its line plus its newline; ``ceil`` of a sum never exceeds the sum of the ``ceil``\\ s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .tokens import MESSAGE_OVERHEAD_TOKENS, estimate_message_tokens, estimate_tokens

HISTORY_TITLE = "Previous conversation:"
SUMMARY_TITLE = "Summary of the earlier conversation:"
MEMORIES_TITLE = "What you remember about this user:"
PREFERENCES_TITLE = "User preferences:"


def title_tokens(title: str) -> int:
    """A section's title line and the blank line that separates it from the previous one."""
    return estimate_tokens(title) + 1


def memory_line(text: str) -> str:
    return f"- {text.strip()}"


def preference_line(key: str, value: str) -> str:
    return f"{key}: {value}"


def history_line(role: str, content: str) -> str:
    return f"{role}: {content}"


def memory_tokens(text: str) -> int:
    """One recalled memory's line (0 for an empty text, which is not rendered)."""
    return estimate_tokens(memory_line(text)) + 1 if text.strip() else 0


def preference_tokens(key: str, value: str) -> int:
    return estimate_tokens(preference_line(key, value)) + 1


def summary_tokens(summary: str) -> int:
    return estimate_tokens(summary.strip()) + MESSAGE_OVERHEAD_TOKENS


def message_tokens(content: str) -> int:
    """One history message, in the prompt (``history_line``: the longest role prefix,
    "assistant: " and its newline, fits in the per-message overhead) or as a chat message."""
    return estimate_message_tokens(content)


def render_sections(
    summary: str,
    history: Sequence[tuple[str, str]],
    memories: Sequence[str],
    preferences: Mapping[str, str],
) -> list[str]:
    """The titled sections, in prompt order; empty ones are left out. ``history`` as
    (role, content) oldest first; ``memories`` best first; preferences in key order."""
    sections = []
    if summary.strip():
        sections.append(f"{SUMMARY_TITLE}\n{summary.strip()}")
    if history:
        sections.append(HISTORY_TITLE + "\n" + "\n".join(history_line(r, c) for r, c in history))
    lines = [memory_line(t) for t in memories if t.strip()]
    if lines:
        sections.append(MEMORIES_TITLE + "\n" + "\n".join(lines))
    if preferences:
        prefs = "\n".join(preference_line(k, v) for k, v in sorted(preferences.items()))
        sections.append(f"{PREFERENCES_TITLE}\n{prefs}")
    return sections
