"""What a fact says, token by token, for telling a restatement from an update.

A restatement repeats the fact ("User likes rooibos tea." again): merged. An update says the
same thing about the same subject with another *value* ("... on 3 May" → "... on 5 May",
"PIN 4711" → "PIN 9999", "two kids" → "three kids", "eats meat" → "does not eat meat"):
the new fact supersedes the old one and the old value is never merged into the new text
(``facts.py``, ``docs/long-term-memory.md``).

* **value tokens**: numbers, number words, months, weekdays, relative days and times;
* **name tokens**: capitalised words that do not start the text (people, pets, places);
* **polarity**: whether the fact is negated ("not", "no longer", "never", "don't" ...);
* **frame**: the remaining content words, lower-cased and crudely stemmed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_WORD = re.compile("[A-Za-z][A-Za-z'\u2019-]*|\\d+(?:[.,:/]\\d+)*(?:st|nd|rd|th|am|pm)?", re.I)
_NUMBER_WORDS = _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand million dozen first second third fourth fifth sixth "
    "seventh eighth ninth tenth once twice"
)
_DATE_WORDS = _words(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday "
    "friday saturday sunday mondays tuesdays wednesdays thursdays fridays saturdays sundays "
    "today tomorrow yesterday tonight morning afternoon evening noon midnight weekend "
    "spring summer autumn fall winter"
)
_NEGATIONS = _words(
    "not no never none nobody nothing longer don't doesn't didn't isn't aren't wasn't "
    "weren't won't can't cannot dont doesnt didnt isnt arent"
)
#: words that carry no content for the frame (the subject, auxiliaries, articles)
_FILLER = _words(
    "user user's users i i'm i've my me the a an is are was were be been am has have had "
    "do does did of to in on at for and or with as by now currently still also"
)
_NOT_NAMES = frozenset({"user", "user's", "i", "i'm", "i've", "my"})


def _stem(word: str) -> str:
    w = word.casefold().replace("\u2019", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w


@dataclass(frozen=True)
class Shape:
    values: frozenset[str]
    names: frozenset[str]
    negated: bool
    frame: frozenset[str]


def shape(text: str) -> Shape:
    """The value/name/polarity/frame view of a fact's text."""
    values: set[str] = set()
    names: set[str] = set()
    frame: set[str] = set()
    negated = False
    for pos, m in enumerate(_WORD.finditer(text)):
        raw = m.group(0)
        low = raw.casefold().replace("\u2019", "'")
        if low[0].isdigit() or low in _NUMBER_WORDS or low in _DATE_WORDS:
            values.add(low.rstrip(".,"))
        elif low in _NEGATIONS or low.endswith("n't"):
            negated = True
        elif raw[0].isupper() and pos > 0 and low not in _NOT_NAMES:
            names.add(_stem(low))
        elif low not in _FILLER:
            frame.add(_stem(low))
    return Shape(frozenset(values), frozenset(names), negated, frozenset(frame))


def _overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Overlap coefficient |a ∩ b| / min(|a|, |b|) (1.0 when either is empty)."""
    if not a or not b:
        return 1.0
    return len(a & b) / min(len(a), len(b))


def _same_subject(a: frozenset[str], b: frozenset[str]) -> bool:
    """Frames about the same thing: the smaller is (nearly) inside the larger, and they
    share at least half their words ("dentist appointment" / "dentist appointment moved",
    not "kids" / "kids go to school")."""
    if not a or not b:
        return a == b
    return _overlap(a, b) >= 0.75 and len(a & b) / len(a | b) >= 0.5


def adds_detail(new: Shape, old: Shape) -> bool:
    """``new`` carries a value, a name or a polarity ``old`` does not: merging it into
    ``old`` would lose what it says."""
    return bool(new.values - old.values or new.names - old.names) or new.negated != old.negated


def is_update(new: Shape, old: Shape) -> bool:
    """``new`` says the same thing about the same subject as ``old`` with a changed value
    (number, date, time) or the opposite polarity: it supersedes ``old``. A new name alone
    is not an update ("a dog named Rex", "a dog named Biscuit" may be two dogs); single-valued
    attributes such as "my sister is called ..." are caught by their slot instead."""
    if not (new.names <= old.names or old.names <= new.names):
        return False  # other people or places: another subject
    if new.negated != old.negated:
        return _overlap(new.frame, old.frame) == 1.0
    return _same_subject(new.frame, old.frame) and bool(new.values - old.values)
