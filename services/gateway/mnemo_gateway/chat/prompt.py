"""System prompt building: memory goes into the instructions, never into fake messages.

This is the seeds' context-provider pattern (seed 002): the instructions, then one titled
section per kind of memory. Empty sections are left out, so a turn with no memory sends
the instructions unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from mnemo.memory.v1 import memory_pb2
from mnemo_common.llm.base import MemoryContext

HISTORY_TITLE = "Previous conversation:"
SUMMARY_TITLE = "Summary of the earlier conversation:"
MEMORIES_TITLE = "What you remember about this user:"
PREFERENCES_TITLE = "User preferences:"

_ROLE_NAMES = {
    memory_pb2.ROLE_USER: "user",
    memory_pb2.ROLE_ASSISTANT: "assistant",
    memory_pb2.ROLE_SYSTEM: "system",
}


def memory_context(prepared: memory_pb2.PrepareTurnResponse | None) -> MemoryContext:
    """The structured memory of a turn (the offline provider answers from it)."""
    if prepared is None:
        return MemoryContext()
    return MemoryContext(
        summary=prepared.summary,
        preferences=dict(sorted(prepared.preferences.items())),
        memories=[sm.memory.text for sm in prepared.memories if sm.memory.text],
    )


def build_system_prompt(
    instructions: str,
    prepared: memory_pb2.PrepareTurnResponse | None,
    *,
    include_history: bool,
) -> str:
    """Instructions followed by the memory sections of ``prepared``.

    ``include_history`` puts the thread's recent messages in the prompt (``/v1/chat``); the
    drop-in endpoints send the client's own messages instead.
    """
    sections = [instructions.strip()] if instructions.strip() else []
    if prepared is not None:
        if prepared.summary:
            sections.append(f"{SUMMARY_TITLE}\n{prepared.summary.strip()}")
        if include_history and prepared.messages:
            sections.append(HISTORY_TITLE + "\n" + _history(prepared.messages))
        facts = [sm.memory.text.strip() for sm in prepared.memories if sm.memory.text.strip()]
        if facts:
            sections.append(MEMORIES_TITLE + "\n" + "\n".join(f"- {f}" for f in facts))
        if prepared.preferences:
            prefs = "\n".join(f"{k}: {v}" for k, v in sorted(prepared.preferences.items()))
            sections.append(f"{PREFERENCES_TITLE}\n{prefs}")
    return "\n\n".join(sections)


def _history(messages: Sequence[memory_pb2.Message]) -> str:
    return "\n".join(f"{_ROLE_NAMES.get(msg.role, 'user')}: {msg.content}" for msg in messages)
