"""Loading any LoCoMo-format file: sessions with dates, turns, observations, questions;
evidence ids normalised (``D:11:26`` → ``D11:26``, ``D30:05`` → ``D30:5``) or dropped."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_DIA = re.compile(r"^\s*D\s*:?\s*(\d+)\s*:\s*0*(\d+)\s*$", re.I)


@dataclass
class Turn:
    dia_id: str
    speaker: str
    text: str


@dataclass
class Session:
    index: int
    date_ms: int
    turns: list[Turn]
    observations: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass
class Question:
    text: str
    category: int
    evidence: list[str]


@dataclass
class Sample:
    sample_id: str
    sessions: list[Session]
    questions: list[Question]
    evidence_fixed: int = 0
    evidence_dropped: int = 0


def normalize_dia_id(raw: Any) -> str | None:
    m = _DIA.match(str(raw))
    return f"D{int(m.group(1))}:{int(m.group(2))}" if m else None


def parse_date_ms(text: str) -> int:
    """``1:56 pm on 8 May, 2023`` → epoch ms (UTC); 0 when unparseable."""
    for fmt in ("%I:%M %p on %d %B, %Y", "%I:%M %p on %d %b, %Y", "%d %B, %Y", "%d %B %Y"):
        try:
            return int(datetime.strptime(text.strip(), fmt).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            continue
    m = re.search(r"(\d{1,2}) (\w+),? (\d{4})", text)
    if m:
        try:
            d = datetime.strptime(f"{m.group(1)} {m.group(2)} {m.group(3)}", "%d %B %Y")
            return int(d.replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError:
            return 0
    return 0


def turn_text(t: dict[str, Any]) -> str:
    text = f"{t.get('speaker', '')}: {t.get('text', '')}"
    if t.get("blip_caption"):
        text += f" [shares a photo: {t['blip_caption']}]"
    return text


def load(path: Path) -> list[Sample]:
    data = json.loads(Path(path).read_text())
    samples = []
    for raw in data:
        conv = raw["conversation"]
        obs = raw.get("observation") or {}
        numbers = sorted(int(k.split("_")[1]) for k in conv if re.fullmatch(r"session_\d+", k))
        sessions, known = [], set()
        for n in numbers:
            turns = [
                Turn(str(t["dia_id"]), str(t.get("speaker", "")), turn_text(t))
                for t in conv[f"session_{n}"]
                if t.get("dia_id")
            ]
            known |= {t.dia_id for t in turns}
            observations = []
            for facts in (obs.get(f"session_{n}_observation") or {}).values():
                for item in facts:
                    if not isinstance(item, list | tuple) or len(item) < 2:
                        continue
                    ids = item[1] if isinstance(item[1], list) else [item[1]]
                    norm = [d for d in (normalize_dia_id(x) for x in ids) if d]
                    observations.append((str(item[0]), norm))
            sessions.append(
                Session(
                    n, parse_date_ms(conv.get(f"session_{n}_date_time", "")), turns, observations
                )
            )
        sample = Sample(str(raw.get("sample_id", f"sample-{len(samples)}")), sessions, [])
        for q in raw.get("qa") or []:
            evidence = []
            for e in q.get("evidence") or []:
                norm = normalize_dia_id(e)
                if norm is None or norm not in known:
                    sample.evidence_dropped += 1
                    continue
                if norm != e:
                    sample.evidence_fixed += 1
                evidence.append(norm)
            sample.questions.append(
                Question(
                    str(q.get("question", "")), int(q.get("category", 0)), sorted(set(evidence))
                )
            )
        samples.append(sample)
    return samples
