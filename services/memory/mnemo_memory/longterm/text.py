"""Text helpers of long-term memory: normalisation, deterministic ids, fact slots,
tokenising for BM25, and the date prefix of indexed text."""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata

_WS = re.compile(r"\s+")
_PUNCT_END = re.compile(r"[\s.!?;,]+$")
_TOKEN = re.compile(r"[a-z0-9]+")
#: words too common to say anything in a keyword match
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "and",
        "or",
        "but",
        "with",
        "what",
        "when",
        "where",
        "who",
        "whom",
        "how",
        "did",
        "do",
        "does",
        "i",
        "you",
        "he",
        "she",
        "it",
        "they",
        "we",
        "me",
        "my",
        "your",
        "his",
        "her",
        "their",
        "our",
        "that",
        "this",
        "these",
        "those",
        "which",
        "as",
        "from",
        "by",
        "about",
        "into",
        "than",
        "then",
        "so",
        "if",
        "not",
        "no",
        "yes",
        "can",
        "could",
        "would",
        "should",
        "will",
        "just",
        "have",
        "has",
        "had",
        "there",
        "here",
        "its",
        "it's",
        "im",
        "i'm",
    ]
)


def normalize(text: str) -> str:
    """Case-, space- and trailing-punctuation-insensitive form used for ids and equality."""
    t = unicodedata.normalize("NFKC", text).casefold().strip()
    return _PUNCT_END.sub("", _WS.sub(" ", t))


def stable_id(prefix: str, *parts: str) -> str:
    """A deterministic id (``prefix`` + 24 hex chars of SHA-256 over the parts)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    return f"{prefix}{digest}"


def fact_id(user_id: str, text: str, source_thread_id: str, source_ids: tuple[str, ...]) -> str:
    """Id of a fact: same user + same normalised text + same source → same id, so a
    replayed extraction job upserts onto itself instead of adding a copy."""
    return stable_id("f", user_id, normalize(text), source_thread_id, ",".join(sorted(source_ids)))


def tokenize(text: str) -> list[str]:
    """Lower-case alphanumeric tokens without stopwords (BM25)."""
    return [t for t in _TOKEN.findall(text.casefold()) if t not in STOPWORDS]


# --- slots: "what a fact is about", for contradiction detection ---
_SLOT_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # possessives inside the attribute: "User's dog's name is ..." → user|dog_name
    (re.compile(r"^(?:the )?user(?:'s)? (?P<attr>[a-z][a-z' ]{0,40}?) (?:is|are) ", re.I), "attr"),
    (re.compile(r"^my (?P<attr>[a-z][a-z' ]{0,40}?) (?:is|are) ", re.I), "attr"),
    (re.compile(r"\b(?:lives?|living|moved) (?:in|to) ", re.I), "lives_in"),
    (re.compile(r"\b(?:works?|working) (?:at|for) ", re.I), "works_at"),
    (re.compile(r"\b(?:works?|working) as ", re.I), "works_as"),
    (re.compile(r"\b(?:name is|called) ", re.I), "name"),
]


def slot_of(text: str) -> str:
    """``"user|<attribute>"`` when the fact states a single-valued attribute of the user
    ("my favourite colour is ...", "... lives in ...", "... works at ..."), else ``""``.

    Two valid facts with the same slot and different values contradict each other: the
    newer one supersedes the older (see ``docs/long-term-memory.md``).
    """
    t = text.strip()
    for pattern, name in _SLOT_PATTERNS:
        m = pattern.search(t)
        if m:
            attr = m.groupdict().get("attr") if name == "attr" else name
            attr = (
                (attr or "").strip().casefold().replace("'s ", " ").replace("favourite", "favorite")
            )
            attr = _WS.sub("_", attr)
            return f"user|{attr}" if attr else ""
    return ""


def date_label(ms: int) -> str:
    """``8 May 2023`` for an epoch-ms timestamp (UTC); empty for 0."""
    if ms <= 0:
        return ""
    t = time.gmtime(ms / 1000)
    return f"{t.tm_mday} {time.strftime('%B %Y', t)}"


def indexed_text(text: str, valid_from_ms: int, date_prefix: bool) -> str:
    """What is embedded and keyword-indexed: the text, with its date when enabled."""
    label = date_label(valid_from_ms) if date_prefix else ""
    return f"[{label}] {text}" if label else text
