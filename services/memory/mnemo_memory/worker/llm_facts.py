"""What the LLM extractor asks for and how its reply is checked, item by item.

The prompt asks for atomic, self-contained facts about the user, each with a kind and an
importance, with relative dates resolved against the time of the message they come from
(every transcript line carries its date: "tomorrow" said on 2 May 2026 is "3 May 2026").

A reply that is not JSON at all is ``INVALID_OUTPUT`` (retried, then dead-lettered). Inside
a JSON reply every fact is checked on its own: a wrong kind or importance is repaired, a
fact without usable text, over-long, or not an object is dropped, and the rest are kept.
Each repair or drop is counted in ``mnemo_worker_extracted_facts_fixed_total{reason}``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from mnemo_common import metrics

log = logging.getLogger(__name__)

FIXED = metrics.counter(
    "mnemo_worker_extracted_facts_fixed",
    "LLM-extracted facts repaired or dropped by validation",
    ("reason",),
)

KINDS = ("fact", "preference", "event")
MAX_FACTS = 20
MAX_FACT_CHARS = 300

#: shown to the model (with the system prompt); replies are checked by :func:`clean_facts`
EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "facts": {
            "type": "array",
            "maxItems": MAX_FACTS,
            "items": {
                "type": "object",
                "properties": {
                    "text": {"type": "string", "minLength": 3, "maxLength": MAX_FACT_CHARS},
                    "kind": {"enum": list(KINDS)},
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

#: what the reply is parsed against: any JSON object or array (items are checked one by one)
REPLY_SCHEMA: dict[str, Any] = {"type": ["object", "array"]}

EXTRACTION_SYSTEM = (
    "You extract durable facts about the USER from a chat transcript, for a long-term "
    "memory. Return JSON only.\n"
    "Rules for each fact:\n"
    "- Atomic: one piece of information per fact. 'I live in Kyoto with my dog Rex' is two "
    "facts: 'User lives in Kyoto' and 'User has a dog named Rex'.\n"
    "- Self-contained: a short third-person sentence starting with 'User', understandable "
    "without the conversation. No pronouns that point into the chat (he, she, it, they, "
    "this, that): name the person, pet, place or thing.\n"
    "- Grounded in time: every transcript line starts with the date and time it was said. "
    "Resolve relative dates against THAT line's date and write absolute dates: 'tomorrow' "
    "said on 2 May 2026 is '3 May 2026', 'next Friday', 'last week', 'in two days' "
    "likewise. Never write 'today', 'tomorrow', 'yesterday' or 'next week' in a fact.\n"
    "- kind: 'preference' (likes, dislikes, how the user wants answers), 'event' (something "
    "that happened or is planned at a time), else 'fact'.\n"
    "- importance: 1 trivial .. 10 critical (health, allergies, safety, credentials); "
    "names, family, home and work are 6-8.\n"
    "- source_message_ids: the ids of the messages the fact comes from.\n"
    "- replaces: if the fact updates or contradicts one of the EXISTING facts listed "
    "(a new date, number, place, name, or the opposite), that fact's id, else null.\n"
    "Skip small talk, questions, requests to the assistant, and anything the assistant said "
    'unless the user confirmed it. No facts: {"facts": []}.'
)


def line_date(ms: int) -> str:
    """``2026-05-02 Sat 14:03 UTC`` for a message's epoch-ms time ('unknown date' for 0)."""
    if ms <= 0:
        return "unknown date"
    return time.strftime("%Y-%m-%d %a %H:%M UTC", time.gmtime(ms / 1000))


def transcript(messages: Sequence[Any]) -> str:
    """One line per message: id, date, role, text (the dates ground relative times)."""
    return "\n".join(
        f"[{m.id}] ({line_date(int(getattr(m, 'created_at_ms', 0) or 0))}) {m.role}: {m.content}"
        for m in messages
    )


def _importance(raw: Any) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return max(1, min(10, round(raw)))
    if isinstance(raw, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", raw):
        return max(1, min(10, round(float(raw))))
    return None


def clean_facts(value: Any) -> list[dict[str, Any]]:
    """The usable facts of a parsed reply: ``{"text", "kind", "importance",
    "source_message_ids", "replaces"}`` each, repaired where that is safe, else dropped."""
    items = value.get("facts") if isinstance(value, dict) else value
    if not isinstance(items, list):
        FIXED.labels("no_facts_list").inc()
        return []
    if len(items) > MAX_FACTS:
        FIXED.labels("too_many").inc(len(items) - MAX_FACTS)
        items = items[:MAX_FACTS]
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):  # a bare sentence: a fact without its fields
            item = {"text": item}
            FIXED.labels("bare_text").inc()
        if not isinstance(item, dict):
            FIXED.labels("not_an_object").inc()
            continue
        text = item.get("text")
        if not isinstance(text, str) or len(" ".join(text.split())) < 3:
            FIXED.labels("no_text").inc()
            continue
        text = " ".join(text.split())
        if len(text) > MAX_FACT_CHARS:
            FIXED.labels("too_long").inc()
            continue
        if text.casefold() in seen:
            FIXED.labels("duplicate").inc()
            continue
        seen.add(text.casefold())
        kind = item.get("kind")
        if kind not in KINDS:
            kind = kind.strip().lower() if isinstance(kind, str) else ""
            kind = kind if kind in KINDS else "fact"
            FIXED.labels("kind").inc()
        importance = _importance(item.get("importance"))
        if importance is None or importance != item.get("importance"):
            FIXED.labels("importance").inc()
        src = item.get("source_message_ids")
        if isinstance(src, str):
            src = [src]
        if not isinstance(src, list):
            src = []
        replaces = item.get("replaces")
        out.append(
            {
                "text": text,
                "kind": kind,
                "importance": importance if importance is not None else 5,
                "source_message_ids": [s for s in src if isinstance(s, str)],
                "replaces": replaces if isinstance(replaces, str) else "",
            }
        )
    return out
