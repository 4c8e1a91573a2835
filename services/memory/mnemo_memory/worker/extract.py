"""Fact extraction and thread summaries: LLM-backed (JSON; facts checked one by one in
``llm_facts.py``) and the deterministic offline versions (``rules.py``) used when the
provider is ``offline``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import jsonschema
from mnemo_common.llm import ChatMessage, ChatRequest, LLMError, LLMErrorKind, Usage
from mnemo_common.llm._support import check_schema, join_system, json_instructions, structured_reply

from mnemo_memory.longterm.facts import CandidateFact
from mnemo_memory.stores.vector import MemoryRecord

from .llm_facts import EXTRACTION_SCHEMA, EXTRACTION_SYSTEM, REPLY_SCHEMA, clean_facts, transcript
from .rules import rule_facts

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": {"type": "string", "minLength": 1, "maxLength": 8000}},
    "required": ["summary"],
    "additionalProperties": False,
}

SUMMARY_SYSTEM = (
    "Summarise this conversation for the assistant's memory: key facts, decisions, open "
    "questions and context, in at most 150 words. Return JSON only."
)


class Extractor(Protocol):
    async def extract(
        self, messages: Sequence[Any], existing: Sequence[MemoryRecord]
    ) -> tuple[list[CandidateFact], Usage]: ...


class Summarizer(Protocol):
    async def summarize(self, messages: Sequence[Any], previous: str) -> tuple[str, Usage]: ...


def _transcript(messages: Sequence[Any]) -> str:
    return "\n".join(f"[{m.id}] {m.role}: {m.content}" for m in messages)


def validate(value: Any, schema: dict[str, Any], provider: str) -> Any:
    """Raise LLMError(INVALID_OUTPUT) unless ``value`` matches ``schema``."""
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        raise LLMError(
            LLMErrorKind.INVALID_OUTPUT, f"schema: {exc.message}", provider=provider
        ) from None
    return value


class LLMExtractor:
    """Facts through ``provider.complete`` (purpose "extraction") with the schema and the
    dated transcript of ``llm_facts``."""

    #: the handler passes the user's nearest existing facts (for ``replaces``)
    wants_existing = True

    def __init__(self, provider: Any, max_tokens: int | None = None) -> None:
        self.provider = provider
        self.max_tokens = max_tokens

    async def extract(
        self, messages: Sequence[Any], existing: Sequence[MemoryRecord]
    ) -> tuple[list[CandidateFact], Usage]:
        """Facts of ``messages``; a reply that is not JSON is INVALID_OUTPUT (retried), a
        bad fact inside one is repaired or dropped (``llm_facts.clean_facts``)."""
        known = "\n".join(f"- id={r.id}: {r.text}" for r in existing) or "(none)"
        prompt = f"EXISTING facts:\n{known}\n\nTRANSCRIPT:\n{transcript(messages)}"
        name = self.provider.name
        check_schema(EXTRACTION_SCHEMA, name)
        result = await self.provider.complete(
            ChatRequest(
                system=join_system(EXTRACTION_SYSTEM, json_instructions(EXTRACTION_SCHEMA)),
                messages=[ChatMessage("user", prompt)],
                purpose="extraction",
                max_tokens=self.max_tokens,
            )
        )
        value = structured_reply(result.text, result.stop_reason, REPLY_SCHEMA, name)
        ids = [m.id for m in messages]
        known_ids = {r.id for r in existing}
        by_id = {m.id: m for m in messages}
        out = []
        for f in clean_facts(value):
            src = tuple(i for i in f["source_message_ids"] if i in by_id) or tuple(ids)
            out.append(
                CandidateFact(
                    text=f["text"],
                    kind=f["kind"],
                    importance=f["importance"],
                    source_message_ids=src,
                    valid_from_ms=max(by_id[i].created_at_ms for i in src),
                    replaces=f["replaces"] if f["replaces"] in known_ids else "",
                )
            )
        return out, result.usage


# --- offline: first-person statements, deterministic (rules.py) ---
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


class RuleExtractor:
    """Offline extractor: the user's first-person statements ("I live in ...", "my dog's
    name is ...", "I don't eat meat" ...; ``rules.py``) rewritten as third-person facts, one
    per clause. Deterministic; no LLM."""

    async def extract(
        self, messages: Sequence[Any], existing: Sequence[MemoryRecord]
    ) -> tuple[list[CandidateFact], Usage]:
        out = []
        for m in messages:
            if m.role != "user":
                continue
            for text, kind, importance in rule_facts(m.content):
                out.append(
                    CandidateFact(
                        text=text,
                        kind=kind,
                        importance=importance,
                        source_message_ids=(m.id,),
                        valid_from_ms=m.created_at_ms,
                    )
                )
        return out, Usage()


class LLMSummarizer:
    def __init__(self, provider: Any, max_tokens: int | None = None) -> None:
        self.provider = provider
        self.max_tokens = max_tokens

    async def summarize(self, messages: Sequence[Any], previous: str) -> tuple[str, Usage]:
        prompt = (
            f"PREVIOUS SUMMARY:\n{previous or '(none)'}\n\nTRANSCRIPT:\n{_transcript(messages)}"
        )
        value, usage = await self.provider.complete_json(
            ChatRequest(
                system=SUMMARY_SYSTEM,
                messages=[ChatMessage("user", prompt)],
                purpose="extraction",
                max_tokens=self.max_tokens,
            ),
            SUMMARY_SCHEMA,
        )
        validate(value, SUMMARY_SCHEMA, self.provider.name)
        return str(value["summary"]).strip(), usage


class ExtractiveSummarizer:
    """Offline summary: the previous summary plus the first sentence of each message,
    cut to ``max_chars`` (oldest dropped first). Deterministic; no LLM."""

    def __init__(self, max_chars: int = 1200) -> None:
        self.max_chars = max_chars

    async def summarize(self, messages: Sequence[Any], previous: str) -> tuple[str, Usage]:
        lines = [previous.strip()] if previous.strip() else []
        for m in messages:
            first = (_SENTENCE.findall(m.content) or [m.content])[0].strip()
            if first:
                lines.append(f"{m.role}: {first[:200]}")
        text = "\n".join(lines)
        if len(text) > self.max_chars:
            text = "…" + text[-(self.max_chars - 1) :]
        return text, Usage()
