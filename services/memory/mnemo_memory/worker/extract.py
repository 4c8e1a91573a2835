"""Fact extraction and thread summaries: LLM-backed (strict JSON, schema-validated) and
the deterministic offline versions used when the provider is ``offline``."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Protocol

import jsonschema
from mnemo_common.llm import ChatMessage, ChatRequest, LLMError, LLMErrorKind, Usage

from mnemo_memory.longterm.facts import CandidateFact
from mnemo_memory.stores.vector import MemoryRecord

from .rules import rule_facts

#: what the LLM must return for extract_facts
EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": 20,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 3, "maxLength": 500},
                    "kind": {"enum": ["fact", "preference", "event"]},
                    "importance": {"type": "integer", "minimum": 1, "maximum": 10},
                    "source_message_ids": {"type": "array", "items": {"type": "string"}},
                    "replaces": {"type": ["string", "null"]},
                },
                "required": ["text", "kind", "importance"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["facts"],
    "additionalProperties": False,
}

SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"summary": {"type": "string", "minLength": 1, "maxLength": 8000}},
    "required": ["summary"],
    "additionalProperties": False,
}

EXTRACTION_SYSTEM = (
    "You extract durable facts about the USER from a chat transcript, for a long-term memory. "
    "Return JSON only. Each fact is one short third-person sentence about the user "
    "(preferences, personal details, plans, events with dates). Skip small talk, questions "
    "and anything the assistant said unless the user confirmed it. importance: 1 trivial .. "
    "10 critical (health, safety). source_message_ids: ids of the messages the fact comes "
    "from. If a fact updates or contradicts one of the EXISTING facts listed, set replaces "
    "to that fact's id, else null."
)

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
    """Facts through ``provider.complete_json`` (purpose "extraction")."""

    #: the handler passes the user's nearest existing facts (for ``replaces``)
    wants_existing = True

    def __init__(self, provider: Any, max_tokens: int | None = None) -> None:
        self.provider = provider
        self.max_tokens = max_tokens

    async def extract(
        self, messages: Sequence[Any], existing: Sequence[MemoryRecord]
    ) -> tuple[list[CandidateFact], Usage]:
        known = "\n".join(f"- id={r.id}: {r.text}" for r in existing) or "(none)"
        prompt = f"EXISTING facts:\n{known}\n\nTRANSCRIPT:\n{_transcript(messages)}"
        value, usage = await self.provider.complete_json(
            ChatRequest(
                system=EXTRACTION_SYSTEM,
                messages=[ChatMessage("user", prompt)],
                purpose="extraction",
                max_tokens=self.max_tokens,
            ),
            EXTRACTION_SCHEMA,
        )
        validate(value, EXTRACTION_SCHEMA, self.provider.name)
        ids = [m.id for m in messages]
        known_ids = {r.id for r in existing}
        by_id = {m.id: m for m in messages}
        out = []
        for f in value["facts"]:
            src = tuple(i for i in f.get("source_message_ids") or [] if i in by_id) or tuple(ids)
            out.append(
                CandidateFact(
                    text=f["text"],
                    kind=f["kind"],
                    importance=f["importance"],
                    source_message_ids=src,
                    valid_from_ms=max(by_id[i].created_at_ms for i in src),
                    replaces=f.get("replaces") if f.get("replaces") in known_ids else "",
                )
            )
        return out, usage


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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
