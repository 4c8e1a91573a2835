"""The offline extractor's corpus: everyday statements and the facts they must give
(possessives, family, diet, health, work, places, dates, preferences, negations), clauses
that must be split instead of mixed, and messages that must give no fact at all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from mnemo_memory.longterm.text import slot_of
from mnemo_memory.worker.rules import rule_facts

CORPUS: list[tuple[str, list[str]]] = [
    # names and possessives
    ("My dog's name is Biscuit.", ["User's dog's name is Biscuit"]),
    ("My cat's name is Miso", ["User's cat's name is Miso"]),
    ("My name is Ada.", ["User's name is Ada"]),
    ("Call me Sam.", ["User's name is Sam"]),
    ("My sister is called Ana.", ["User's sister is called Ana"]),
    ("My brother is named Tom", ["User's brother is called Tom"]),
    ("My wife Maria is a teacher.", ["User's wife Maria is a teacher"]),
    ("My husband is a chef.", ["User's husband is a chef"]),
    ("My kids are 5 and 7.", ["User's kids are 5 and 7"]),
    ("My dog is Rex, but I'm a cat person.", ["User's dog is Rex", "User is a cat person"]),
    # family
    ("I have two kids.", ["User has two kids"]),
    ("I have a sister who lives in Porto.", ["User has a sister who lives in Porto"]),
    ("I've got three brothers.", ["User has three brothers"]),
    ("I'm married.", ["User is married"]),
    ("I am divorced", ["User is divorced"]),
    ("I'm married to Jonas.", ["User is married to Jonas"]),
    ("I'm expecting a baby in June.", ["User is expecting a baby in June"]),
    # diet
    ("I am vegetarian.", ["User is vegetarian"]),
    ("I'm vegan", ["User is vegan"]),
    ("I don't eat meat.", ["User does not eat meat"]),
    ("I do not drink alcohol", ["User does not drink alcohol"]),
    ("I can't eat gluten.", ["User cannot eat gluten"]),
    ("I drink coffee every morning.", ["User drinks coffee every morning"]),
    # health
    ("I'm allergic to penicillin.", ["User is allergic to penicillin"]),
    ("I am severely allergic to peanuts", ["User is severely allergic to peanuts"]),
    ("I'm lactose intolerant.", ["User is lactose intolerant"]),
    ("I have asthma.", ["User has asthma"]),
    ("I'm diabetic", ["User is diabetic"]),
    ("I suffer from migraines.", ["User suffers from migraines"]),
    # work and study
    ("I work as a nurse.", ["User works as a nurse"]),
    (
        "I work at a hospital and my husband is a chef.",
        [
            "User works at a hospital",
            "User's husband is a chef",
        ],
    ),
    ("I work for Siemens", ["User works for Siemens"]),
    ("I'm a software engineer at Google.", ["User is a software engineer at Google"]),
    ("I'm studying law.", ["User is studying law"]),
    ("I teach maths at a high school.", ["User teaches maths at a high school"]),
    # places
    ("I live in Lisbon.", ["User lives in Lisbon"]),
    ("I'm from Brazil.", ["User is from Brazil"]),
    ("I come from Ghana", ["User is from Ghana"]),
    ("I'm based in Toronto", ["User lives in Toronto"]),
    ("I moved to Porto last year.", ["User moved to Porto last year"]),
    ("I grew up in Manchester", ["User grew up in Manchester"]),
    ("I no longer live in Berlin.", ["User no longer lives in Berlin"]),
    ("I live in Kyoto with my dog Rex.", ["User lives in Kyoto", "User has a dog named Rex"]),
    ("I live in Porto with my wife.", ["User lives in Porto", "User has a wife"]),
    # dates and plans
    ("My birthday is on 3 March.", ["User's birthday is on 3 March"]),
    ("I have a dentist appointment on 5 May.", ["User has a dentist appointment on 5 May"]),
    ("I was born in 1990.", ["User was born in 1990"]),
    ("I'm 34 years old.", ["User is 34 years old"]),
    ("I'm moving to Madrid in September.", ["User is moving to Madrid in September"]),
    ("I go to the gym on Mondays.", ["User goes to the gym on Mondays"]),
    # preferences
    ("I prefer short answers.", ["User prefers short answers"]),
    ("My favourite food is ramen.", ["User's favourite food is ramen"]),
    ("My favorite band is Radiohead", ["User's favorite band is Radiohead"]),
    ("I really like jazz.", ["User likes jazz"]),
    ("I love hiking with my friends.", ["User loves hiking with their friends"]),
    ("I enjoy reading sci-fi.", ["User enjoys reading sci-fi"]),
    ("I hate mornings.", ["User dislikes mornings"]),
    ("I don't like horror movies.", ["User dislikes horror movies"]),
    ("I'm a big fan of Formula 1.", ["User likes Formula 1"]),
    ("I speak Portuguese and French.", ["User speaks Portuguese and French"]),
    ("I'm learning Japanese.", ["User is learning Japanese"]),
    ("I want to learn Spanish.", ["User wants to learn Spanish"]),
    ("I play the cello.", ["User plays the cello"]),
    # two statements in one message
    (
        "I live in Lisbon and I prefer short answers.",
        [
            "User lives in Lisbon",
            "User prefers short answers",
        ],
    ),
    (
        "Hi! I live in Berlin. My favourite food is ramen. What time is it?",
        [
            "User lives in Berlin",
            "User's favourite food is ramen",
        ],
    ),
    ("My dog's name is Biscuit and he is 3.", ["User's dog's name is Biscuit"]),
]

NOTHING = [
    "Hi!",
    "Hello there, how are you?",
    "Thanks, that's great.",
    "What is my dog's name?",
    "Where do I live?",
    "Do you remember my sister's name?",
    "Can you help me with my essay?",
    "I'm fine, thanks.",
    "I'm not sure.",
    "I'm sorry.",
    "I have a question.",
    "I have no idea.",
    "I think so.",
    "I'd like to know the weather in Paris.",
    "Ok",
    "lol",
    "I'm just wondering.",
    "I'm tired today.",
    "Tell me a joke",
    "I love you!",
    "I want you to be shorter.",
]


@pytest.mark.parametrize(("statement", "expected"), CORPUS, ids=[s for s, _ in CORPUS])
def test_everyday_statement_gives_its_facts(statement, expected):
    assert [text for text, _, _ in rule_facts(statement)] == expected


@pytest.mark.parametrize("message", NOTHING)
def test_questions_and_small_talk_give_no_fact(message):
    assert rule_facts(message) == []


def test_the_corpus_is_large_and_no_fact_mixes_two_clauses():
    assert len(CORPUS) >= 50
    for statement, _ in CORPUS:
        for text, kind, importance in rule_facts(statement):
            assert text.startswith("User")
            assert not any(w in text.split() for w in ("I", "I'm", "my", "My", "me")), text
            assert kind in ("fact", "preference") and 1 <= importance <= 10


def test_health_facts_are_important_and_preferences_are_kind_preference():
    [(_, kind, importance)] = rule_facts("I'm allergic to penicillin.")
    assert (kind, importance) == ("fact", 9)
    assert [i for _, _, i in rule_facts("I have asthma. I'm diabetic.")] == [9, 9]
    [(_, kind, _)] = rule_facts("I prefer short answers.")
    assert kind == "preference"


@pytest.mark.parametrize(
    ("statement", "slot"),
    [
        ("My dog's name is Biscuit.", "user|dog_name"),
        ("My name is Ada.", "user|name"),
        ("My sister is called Ana.", "user|sister"),
        ("I live in Lisbon.", "user|lives_in"),
        ("I work as a nurse.", "user|works_as"),
        ("My favourite food is ramen.", "user|favorite_food"),
    ],
)
def test_single_valued_facts_get_a_slot_of_their_own(statement, slot):
    # a pet's name must not take the user's own name slot (it would supersede it)
    [(text, _, _)] = rule_facts(statement)
    assert slot_of(text) == slot


SIX = [
    ("My dog's name is Biscuit.", "What is my dog called?", "Biscuit"),
    ("I live in Lisbon.", "Which city is my home?", "Lisbon"),
    ("I prefer short answers.", "How long should replies be?", "short answers"),
    ("My favourite food is ramen.", "What food do I like most?", "ramen"),
    ("I work as a nurse.", "What is my job?", "nurse"),
    ("My sister is called Ana.", "What is my sister's name?", "Ana"),
]


async def test_offline_facts_of_one_thread_are_recalled_by_other_words(embedder, chroma_path):
    """The six statements of the issue, extracted offline in one thread and written through
    the real rules into embedded Chroma: each is found by a question in other words, and
    never for another user."""
    import uuid

    from mnemo_memory.longterm.service import LongTermMemory
    from mnemo_memory.stores.vector import ChromaVectorStore, VectorFilter
    from mnemo_memory.worker.extract import RuleExtractor

    @dataclass
    class Msg:
        id: str
        role: str
        content: str
        created_at_ms: int = 1_777_000_000_000

    store = ChromaVectorStore(
        model=embedder.info, path=str(chroma_path), collection_prefix="r" + uuid.uuid4().hex[:8]
    )
    lt = LongTermMemory(embedder=embedder, store=store)
    await lt.open()
    try:
        messages = [Msg(f"m{i}", "user", s) for i, (s, _, _) in enumerate(SIX)]
        candidates, _ = await RuleExtractor().extract(messages, [])
        assert len(candidates) == 6
        await lt.write_facts("ada", "th-1", candidates)
        other, _ = await RuleExtractor().extract([Msg("o1", "user", "I live in Oslo.")], [])
        await lt.write_facts("bob", "th-9", other)
        for _, question, answer in SIX:
            ranked, _ = await lt.search("ada", question, VectorFilter(user_id="ada"), 3)
            assert any(answer in r.record.text for r in ranked), (question, ranked)
            theirs, _ = await lt.search("bob", question, VectorFilter(user_id="bob"), 3)
            assert all(answer not in r.record.text for r in theirs)
    finally:
        await lt.aclose()
