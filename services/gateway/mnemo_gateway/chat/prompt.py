"""System prompt building: memory goes into the instructions, never into fake messages.

This is the seeds' context-provider pattern (seed 002): the instructions, then one titled
section per kind of memory. Empty sections are left out, so a turn with no memory sends
the instructions unchanged. The sections' format and cost live in
:mod:`mnemo_common.context` (ADR 0027).
"""

from __future__ import annotations

from mnemo.memory.v1 import memory_pb2
from mnemo_common.context import (
    HISTORY_TITLE,
    MEMORIES_TITLE,
    PREFERENCES_TITLE,
    SUMMARY_TITLE,
    render_sections,
)
from mnemo_common.llm.base import MemoryContext

__all__ = [
    "HISTORY_TITLE",
    "MEMORIES_TITLE",
    "PREFERENCES_TITLE",
    "SUMMARY_TITLE",
    "build_system_prompt",
    "memory_context",
]

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
    """Instructions followed by the memory sections of ``prepared``, rendered by
    :func:`mnemo_common.context.render_sections` (which the memory service's budget
    costs: the gateway trusts PrepareTurn's fit and cuts nothing itself).

    ``include_history`` puts the thread's recent messages in the prompt (``/v1/chat``); the
    drop-in endpoints send the client's own messages instead.
    """
    sections = [instructions.strip()] if instructions.strip() else []
    if prepared is not None:
        history = (
            [(_ROLE_NAMES.get(m.role, "user"), m.content) for m in prepared.messages]
            if include_history
            else []
        )
        sections += render_sections(
            prepared.summary,
            history,
            [sm.memory.text for sm in prepared.memories],
            dict(prepared.preferences),
        )
    return "\n\n".join(sections)
