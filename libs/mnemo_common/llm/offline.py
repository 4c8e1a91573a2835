"""The ``offline`` provider: no network, no model, deterministic, clearly labelled.

It lets the whole platform run and be demonstrated without a key: every reply starts with
:data:`OFFLINE_LABEL`, says that no language model is connected, and then shows what Mnemo
remembered for this turn (preferences, running summary, long-term memories), so a user can
watch memory work. It honours ``max_tokens`` (estimated tokens, after the label, which is
never cut) and stop sequences (the reply ends before the first one), like a model would.
Structured output is refused: the worker uses its rule-based extractor
when the offline provider is configured.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any, Literal

from ..tokens import CHARS_PER_TOKEN, estimate_message_tokens, estimate_tokens
from .base import (
    ChatRequest,
    ChatResult,
    LLMError,
    LLMErrorKind,
    MemoryContext,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)

#: first words of every offline reply (the web page and tests look for it)
OFFLINE_LABEL = "[offline model]"
OFFLINE_MODEL = "offline"
#: longest echo of the user's message, in characters
ECHO_LIMIT = 300


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_offline_reply(request: ChatRequest) -> str:
    """The offline answer to ``request`` (a pure function of the request)."""
    lines = [
        f"{OFFLINE_LABEL} No language model is connected, so this is not a real answer: "
        "Mnemo's offline stand-in is replying with what it remembers."
    ]
    users = [m for m in request.messages if m.role == "user"]
    if users:
        lines.append(f'You said: "{_clip(users[-1].content, ECHO_LIMIT)}"')
    earlier = len(request.messages) - 1 if request.messages else 0
    if earlier > 0:
        lines.append(f"This thread has {earlier} earlier message{'s' if earlier != 1 else ''}.")
    lines += _memory_lines(request.memory)
    return "\n".join(lines)


def _memory_lines(memory: MemoryContext | None) -> list[str]:
    if memory is None:
        return ["No memory context was given for this turn."]
    lines: list[str] = []
    if memory.preferences:
        prefs = "; ".join(f"{k}: {memory.preferences[k]}" for k in sorted(memory.preferences))
        lines.append(f"- Your preferences: {prefs}")
    if memory.summary:
        lines.append(f"- Summary of our earlier conversation: {_clip(memory.summary, 600)}")
    if memory.memories:
        lines.append("- Things I remember from before:")
        # a thread excerpt holds several memories, one per line: each keeps its own line
        for item in memory.memories:
            parts = [part for part in item.splitlines() if part.strip()] or [item]
            lines.append(f"  - {_clip(parts[0], 300)}")
            lines += [f"    {_clip(part, 300)}" for part in parts[1:]]
    if not lines:
        return ["I don't remember anything about you yet."]
    return ["What I remember about you:", *lines]


def limit_reply(text: str, request: ChatRequest) -> tuple[str, str, str | None]:
    """``text`` cut at the first stop sequence and at ``max_tokens`` (estimated), with the
    stop reason (``end_turn``, ``stop_sequence``, ``max_tokens``) and the sequence met.

    The label is never cut or searched: an offline reply always says what it is.
    """
    head, body = text[: len(OFFLINE_LABEL)], text[len(OFFLINE_LABEL) :]
    reason, sequence = "end_turn", None
    hits = [(body.find(s), s) for s in request.stop if s and s in body]
    if hits:
        at, sequence = min(hits)
        body, reason = body[:at], "stop_sequence"
    if request.max_tokens is not None:
        budget = max(0, request.max_tokens - estimate_tokens(head)) * CHARS_PER_TOKEN
        if len(body) > budget:
            body, reason, sequence = body[:budget], "max_tokens", None
    return head + body, reason, sequence


class OfflineProvider:
    """Answers from the memory context alone; never touches the network."""

    name = "offline"

    def model_for(self, purpose: Literal["chat", "extraction"]) -> str:
        """Always ``"offline"``."""
        return OFFLINE_MODEL

    @staticmethod
    def _usage(request: ChatRequest, text: str) -> Usage:
        prompt = estimate_tokens(request.system) + sum(
            estimate_message_tokens(m.content) for m in request.messages
        )
        return Usage(prompt, estimate_tokens(text))

    async def complete(self, request: ChatRequest) -> ChatResult:
        """The labelled offline reply."""
        text, reason, sequence = limit_reply(render_offline_reply(request), request)
        return ChatResult(text, OFFLINE_MODEL, self._usage(request, text), reason, sequence)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """The same reply as :meth:`complete`, one word at a time."""
        text, reason, sequence = limit_reply(render_offline_reply(request), request)
        for piece in re.findall(r"\s*\S+\s*", text):
            yield TextDelta(piece)
            await asyncio.sleep(0)  # let the caller's other tasks run, as a network stream would
        yield StreamEnd(OFFLINE_MODEL, self._usage(request, text), reason, sequence)

    async def complete_json(
        self, request: ChatRequest, schema: dict[str, Any]
    ) -> tuple[Any, Usage]:
        """Refused: there is no model to produce structured output."""
        raise LLMError(
            LLMErrorKind.BAD_REQUEST,
            "offline provider cannot produce structured output (no language model is "
            "connected); use a rule-based fallback or configure a real provider",
            provider=self.name,
        )

    async def aclose(self) -> None:
        """Nothing to close."""
