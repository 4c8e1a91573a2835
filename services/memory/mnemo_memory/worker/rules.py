"""The offline extractor's rules: everyday first-person statements → third-person facts.

Deterministic, no model. A message is cut into sentences, questions are dropped, and each
sentence is cut into clauses wherever a new first-person statement starts ("I live in Kyoto
with my dog Rex" → "I live in Kyoto" + "my dog Rex"), so a fact never mixes two clauses.
Each clause is matched against ordered rules; the value keeps the user's words with the
first person turned into the third ("my" → "their"). Anything addressed to the assistant
("you", "your") or small talk ("I'm fine", "I have a question") gives no fact. The tested
corpus is ``services/memory/tests/test_rules.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Fact = tuple[str, str, int]  # (text, kind, importance)

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")
_FIRST = r"(?:I|I'm|I've|I'd|I am|my|My)\b"
# a new first-person statement inside a sentence: split there ("..., and I work as ...")
_CLAUSE = re.compile(
    r"(?:\s*[,;:]\s*(?:and|but|so|while|because|although|though|since|plus)?\s*"
    r"|\s+-\s+|\s+(?:and|but|so|while|because|although|though|since|plus)\s+)"
    rf"(?={_FIRST})"
)
# "with my dog Rex": a second statement hidden in a prepositional phrase
_WITH_MY_SPLIT = r"\s+with\s+(?=my\s+(?:[a-z]+\s+)?(?:{family})\b)"
# the value ends where another subject takes over ("... and he is 3", "... but she ...")
_VALUE_END = re.compile(
    r"\s*(?:,|;|\s)\s*(?:and|but|so|because|while|who is|which is)?\s*"
    r"\b(?:he|she|they|it|we|you|he's|she's|they're|it's|we're)\b.*$",
    re.I,
)
_QUESTION_START = re.compile(
    r"^(?:what|when|where|who|whom|whose|which|why|how|do|does|did|can|could|would|will|"
    r"should|shall|is|are|am|was|were|have|has|may|might)\b",
    re.I,
)
_ADVERBS = r"(?:(?:also|really|actually|currently|still|now|just|usually|always|totally|truly)\s+)*"
_TRAILING = re.compile(
    r"(?:\s*,?\s*(?:too|as well|actually|though|by the way|btw|now|anyway|lol|haha|"
    r"I think|I guess))+$",
    re.I,
)
_PRONOUNS = [
    (re.compile(r"\bmy\b", re.I), "their"),
    (re.compile(r"\bmine\b", re.I), "theirs"),
    (re.compile(r"\bmyself\b", re.I), "themselves"),
    (re.compile(r"\bme\b", re.I), "them"),
]
_NOT_ABOUT_USER = re.compile(r"\b(?:you|your|yours|you're|u)\b", re.I)
# "I'm fine", "I'm sorry", "I'm not sure": how the user feels right now, not a fact
_SMALL_TALK = re.compile(
    r"^(?:fine|good|great|ok|okay|alright|well|sorry|tired|bored|sure|not sure|glad|"
    r"happy to|back|here|ready|curious|wondering|trying|looking|thinking|going|doing|"
    r"just|so|very|really|hungry|confused|afraid so|kidding|joking|done|"
    r"interested in (?:a|an|the|some|your)|listening|asking|writing to|"
    r"happy|sad|excited|stressed|busy|new here)\b",
    re.I,
)
_IDENTITY = re.compile(
    r"^(?:not\s+)?(?:vegetarian|vegan|pescatarian|married|single|divorced|engaged|"
    r"widowed|pregnant|retired|unemployed|self-employed|diabetic|epileptic|asthmatic|"
    r"coeliac|celiac|lactose intolerant|gluten intolerant|left-handed|right-handed|"
    r"colou?r ?blind|deaf|blind|an only child|a twin|sober|teetotal|\d{1,3}(?: years old)?|"
    r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty)[- ]?\w*(?: years old)?)\b",
    re.I,
)
_ING = (
    "learning|studying|training|planning|moving|getting|starting|saving|building|taking|"
    "working on|expecting|renovating|organi[sz]ing|preparing|visiting|travell?ing|flying|"
    "leaving|retiring|recovering|trying to|hoping to|teaching|raising|running|writing|"
    "practi[sc]ing|volunteering|applying|changing|quitting|switching|dating|seeing"
)
_PRESENT = (
    "speak|play|drive|own|use|study|teach|read|watch|cook|swim|eat|drink|take|go|visit|"
    "volunteer|practice|practise|collect|support|follow|wear|ride|attend|write|listen|"
    "need|want|plan|hope|run|walk|bike|cycle|knit|paint|sing|dance|grow|keep|rent|"
    "commute|meditate|surf|ski|hike|climb|bake|sew|draw|suffer|struggle|miss|believe|"
    "celebrate|mentor|coach|manage|lead|design|develop|fix|train|stream|"
    "subscribe|belong|care for|look after|take care of"
)
_PAST = (
    "moved|started|got|adopted|graduated|quit|bought|sold|married|broke|lost|won|"
    "finished|began|left|joined|retired|visited|travell?ed|flew|met|had|was born|grew up|"
    "studied|lived|worked|used to|switched|changed|became|completed|passed|failed|"
    "signed up|enrolled|booked|ran|climbed|hiked|learned|learnt|built|wrote|published|"
    "opened|closed|launched|founded|divorced|gave up|stopped|picked up|took up"
)
_FAMILY = (
    "wife|husband|partner|girlfriend|boyfriend|fianc[eé]e?|son|daughter|kid|child|baby|"
    "mother|mom|mum|father|dad|brother|sister|sibling|twin|grandmother|grandma|"
    "grandfather|grandpa|aunt|uncle|cousin|niece|nephew|friend|best friend|roommate|"
    "flatmate|boss|manager|colleague|neighbou?r|dog|cat|puppy|kitten|parrot|bird|rabbit|"
    "hamster|horse|fish|turtle|snake|pet|son-in-law|daughter-in-law|stepson|stepdaughter"
)
_WITH_MY = re.compile(_WITH_MY_SPLIT.format(family=_FAMILY), re.I)
_HEALTH = re.compile(
    r"\b(?:allerg|asthma|diabet|epilep|migraine|blood pressure|heart|cancer|pregnan|"
    r"medication|insulin|surgery|disab|intoleran|coeliac|celiac|injur|pain|illness|"
    r"condition|therapy|depress|anxiety|adhd|autis|pin\b|password)",
    re.I,
)


def _third(verb: str) -> str:
    """Present tense, third person singular ("go" → "goes", "study" → "studies")."""
    first, _, rest = verb.partition(" ")
    if first in ("have",):
        first = "has"
    elif re.search(r"(?:s|sh|ch|x|z|o)$", first):
        first += "es"
    elif re.search(r"[^aeiou]y$", first):
        first = first[:-1] + "ies"
    else:
        first += "s"
    return f"{first} {rest}".strip()


class _Rebuilt:
    """A match whose ``v`` group is the cleaned value (templates read groups by name)."""

    def __init__(self, m: re.Match[str], value: str) -> None:
        self._m = m
        self._v = value

    def group(self, name: str) -> str:
        return self._v if name == "v" else (self._m.groupdict().get(name) or "")


Rule = tuple[re.Pattern[str], Callable[[_Rebuilt], str], str, int]


def _say(template: str) -> Callable[[_Rebuilt], str]:
    """A rule's text from ``template``: ``{v}`` the cleaned value, ``{a}`` as matched,
    ``{p}`` and ``{verb}`` lower-cased, ``{verbs}`` the verb in the third person."""

    def build(m: _Rebuilt) -> str:
        verb = m.group("verb").lower()
        return template.format(
            v=m.group("v"), a=m.group("a"), p=m.group("p").lower(), verb=verb, verbs=_third(verb)
        )

    return build


def _r(pattern: str, build: str, kind: str, importance: int) -> Rule:
    return (re.compile(pattern, re.I), _say(build), kind, importance)


def _fact(pattern: str, build: str, importance: int) -> Rule:
    return _r(pattern, build, "fact", importance)


def _pref(pattern: str, build: str, importance: int = 6) -> Rule:
    return _r(pattern, build, "preference", importance)


_I = r"^I\s+" + _ADVERBS
_IM = r"^(?:I'm|I am)\s+" + _ADVERBS
_RULES: list[Rule] = [
    # names and possessives
    _fact(r"^my name is (?P<v>.+)", "User's name is {v}", 8),
    _fact(r"^(?:call me|I go by) (?P<v>.+)", "User's name is {v}", 8),
    _fact(r"^my (?P<a>[a-z][a-z -]{0,30}?)'s name is (?P<v>.+)", "User's {a}'s name is {v}", 7),
    _fact(
        rf"^my (?P<a>(?:[a-z]+ )?(?:{_FAMILY})s?) (?:is|are) (?:called|named) (?P<v>.+)",
        "User's {a} is called {v}",
        7,
    ),
    _r(
        rf"^my (?P<a>(?:[a-z]+ )?(?:{_FAMILY})) (?P<v>(?-i:[A-Z])[\w'-]+(?: (?-i:[A-Z])[\w'-]+)?)$",
        "User has a {a} named {v}",
        "fact",
        7,
    ),
    _fact(rf"^my (?P<v>(?:[a-z]+ )?(?:{_FAMILY}))$", "User has a {v}", 6),
    _pref(
        r"^my (?P<a>favou?rite [a-z][a-z ]{0,30}?) (?P<verb>is|are) (?P<v>.+)",
        "User's {a} {verb} {v}",
    ),
    _fact(
        r"^my (?P<a>[a-z][a-z -]{0,40}?) (?P<verb>is|are|was|were) (?P<v>.+)",
        "User's {a} {verb} {v}",
        6,
    ),
    # health first: "I'm allergic to ...", "I have asthma"
    _fact(_IM + r"(?P<v>(?:severely |very )?allergic to .+)", "User is {v}", 9),
    _fact(_IM + r"(?P<v>(?:lactose |gluten )?intolerant .+)", "User is {v}", 9),
    # where and what
    _fact(
        _I + r"(?:live|am living|'m living|reside) (?P<p>in|on|near) (?P<v>.+)",
        "User lives {p} {v}",
        7,
    ),
    _fact(_IM + r"(?:living|based|staying) in (?P<v>.+)", "User lives in {v}", 7),
    _fact(_I + r"no longer (?P<verb>[a-z]+) (?P<v>.+)", "User no longer {verbs} {v}", 7),
    _fact(_IM + r"no longer (?P<v>.+)", "User is no longer {v}", 7),
    _fact(
        _I + r"(?:work|am working|'m working) (?P<p>at|for|as|in|from) (?P<v>.+)",
        "User works {p} {v}",
        7,
    ),
    _fact(_IM + r"from (?P<v>.+)", "User is from {v}", 7),
    _fact(_I + r"come from (?P<v>.+)", "User is from {v}", 7),
    _fact(_IM + r"married to (?P<v>.+)", "User is married to {v}", 7),
    _fact(_IM + rf"(?P<v>(?:{_ING})\b.+)", "User is {v}", 6),
    # preferences
    _pref(_I + r"(?:prefer|'d prefer|would prefer) (?P<v>.+)", "User prefers {v}"),
    _pref(_I + r"(?:don't|do not|can't|cannot) (?:like|stand|bear) (?P<v>.+)", "User dislikes {v}"),
    _pref(_I + r"(?:hate|dislike|detest) (?P<v>.+)", "User dislikes {v}"),
    _pref(_I + r"(?P<verb>like|love|enjoy|adore) (?P<v>.+)", "User {verbs} {v}"),
    _pref(_IM + r"(?:a (?:big |huge )?fan of|into) (?P<v>.+)", "User likes {v}"),
    # negations of actions and possessions
    _fact(
        _I + r"(?:don't|do not|never) (?P<verb>[a-z]+(?: [a-z]+)?) (?P<v>.+)",
        "User does not {verb} {v}",
        6,
    ),
    _fact(_I + r"(?:can't|cannot) (?P<verb>[a-z]+) (?P<v>.+)", "User cannot {verb} {v}", 6),
    _fact(_IM + r"not (?P<v>(?:a|an) .+)", "User is not {v}", 5),
    # having: family, pets, health, plans ("I have two kids", "I've got a dentist appointment")
    _r(
        r"^I(?:\s+" + _ADVERBS + r"(?:have got|have)|'ve got|'ve|\s+got) "
        r"(?P<v>(?:no|a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d+|some|"
        r"several|many|lots of|a few|twins|asthma|diabetes|epilepsy|migraines|arthritis|"
        r"celiac|coeliac|anxiety|adhd|[a-z]+ (?:allergy|allergies))\b.*)",
        "User has {v}",
        "fact",
        7,
    ),
    _fact(_IM + r"(?P<v>(?:a|an) .+)", "User is {v}", 6),
    _fact(r"^(?:I'm|I am)\s+(?P<v>.+)", "User is {v}", 6),  # identity only
    _fact(_I + rf"(?P<verb>{_PRESENT}) (?P<v>.+)", "User {verbs} {v}", 5),
    _fact(_I + rf"(?P<verb>{_PAST}) (?P<v>.+)", "User {verb} {v}", 5),
    _fact(r"^I(?:'ve| have) (?P<verb>been|lived|worked|had) (?P<v>.+)", "User has {verb} {v}", 5),
]
_IDENTITY_ONLY = len(_RULES) - 4  # index of the bare "I'm ..." rule


def _clean_value(value: str) -> str:
    v = _VALUE_END.sub("", value.strip())
    v = _TRAILING.sub("", v.strip()).strip().rstrip(".!?,;:").strip()
    for pattern, repl in _PRONOUNS:
        v = pattern.sub(repl, v)
    return v


def _clauses(sentence: str) -> list[str]:
    out = []
    for part in _CLAUSE.split(sentence):
        for piece in _WITH_MY.split(part):
            piece = piece.strip().strip(",;:-").strip()
            if piece:
                out.append(piece)
    return out


def _is_question(sentence: str) -> bool:
    s = sentence.strip()
    return s.endswith("?") or bool(_QUESTION_START.match(s))


def clause_fact(clause: str) -> Fact | None:
    """The fact one first-person clause states, or ``None``."""
    c = re.sub(
        r"^(?:and|but|so|also|well|oh|btw|actually|honestly|anyway)\b[,\s]*",
        "",
        clause.strip(),
        flags=re.I,
    )
    c = c.replace("\u2019", "'").strip().rstrip(".!,;:").strip()
    c = re.sub(r"^my\b", "my", c, flags=re.I)
    for index, (pattern, build, kind, importance) in enumerate(_RULES):
        m = pattern.search(c)
        if not m:
            continue
        raw = m.groupdict().get("v") or ""
        value = _clean_value(raw)
        if not value or len(value) > 200 or _NOT_ABOUT_USER.search(value):
            return None
        if index == _IDENTITY_ONLY and not _IDENTITY.match(value):
            return None  # "I'm tired", "I'm sure": not who the user is
        if _SMALL_TALK.match(value) and not _IDENTITY.match(value):
            return None
        if re.search(r"\b(?:question|idea|clue|time|moment|minute|second)\b", value, re.I) and (
            "has" in build(_Rebuilt(m, value)).split()[:2]
        ):
            return None  # "I have a question", "I have no idea", "I have a minute"
        text = build(_Rebuilt(m, value))
        if _HEALTH.search(text):
            importance = max(importance, 9)
        return text, kind, importance
    return None


def rule_facts(text: str) -> list[Fact]:
    """(fact text, kind, importance) for each first-person statement in ``text``."""
    out: list[Fact] = []
    for sentence in _SENTENCE.findall(text):
        if _is_question(sentence):
            continue
        for clause in _clauses(sentence):
            fact = clause_fact(clause)
            if fact and fact[0] not in (f[0] for f in out):
                out.append(fact)
    return out
