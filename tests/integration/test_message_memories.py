"""Remembering without an LLM: gateway + memory service + worker process + Redis + Chroma,
offline provider (no key), as ``make run`` runs them.

Every user message becomes a message memory, so a statement no rule understands is still
recalled in a new thread by a question phrased differently. The tests take the message
memories alone (every other memory of the user is deleted first, or results of other
kinds are ignored), whatever the offline fact extractor makes of the same statements.
"""

from __future__ import annotations

import httpx
from mnemo_common.testing.procs import wait_for
from mnemo_memory.longterm.text import tokenize

SIX = [
    "My dog's name is Biscuit.",
    "I live in Lisbon.",
    "I prefer short answers.",
    "My favourite food is ramen.",
    "I work as a nurse.",
    "My sister is called Ana.",
]

#: (statement, question, the one content word they share)
EVERYDAY = [
    ("My cat is called Miso.", "What name did I give the cat?", "cat"),
    ("I drive an old red Toyota car.", "Which car do I own?", "car"),
    ("My brother Tom lives in Berlin.", "Where is my brother based?", "brother"),
    ("I'm allergic to peanuts.", "Can I eat peanuts safely?", "peanuts"),
    ("I play the violin in a local orchestra.", "Tell me about my violin.", "violin"),
    ("My daughter Emma started school in September.", "How old is my daughter?", "daughter"),
    ("I'm vegetarian and never eat meat.", "Should you suggest meat dishes for me?", "meat"),
    ("My favourite colour is green.", "Which colour suits me best?", "colour"),
    ("I was born in Porto.", "Is Porto my hometown?", "porto"),
    ("I have two kids.", "How many kids are there in my family?", "kids"),
    ("My wife works as a teacher.", "What does my wife do for a living?", "wife"),
    ("I run five kilometres every morning.", "How many kilometres do I cover?", "kilometres"),
    ("I don't drink coffee.", "Would I like a coffee?", "coffee"),
    ("My birthday is on 12 March.", "When should you wish me a happy birthday?", "birthday"),
    ("I moved to Canada last year.", "How long have I been in Canada?", "canada"),
    ("I'm learning Japanese on weekends.", "How is my Japanese going?", "japanese"),
    ("My mother has diabetes.", "What health problem does my mother have?", "mother"),
    ("I work night shifts at the hospital.", "Which hospital is my job at?", "hospital"),
    ("My favourite band is Radiohead.", "Which band do I love?", "band"),
    ("I have a garden with tomatoes and herbs.", "What grows in my garden?", "garden"),
    ("I'm afraid of flying.", "Is flying a problem for me?", "flying"),
    ("My son plays football on Saturdays.", "Which sport does my son do?", "son"),
    ("I'm saving money for a house.", "Am I planning to buy a house?", "house"),
    ("I broke my leg skiing in 2019.", "Have I ever injured my leg?", "leg"),
    ("My grandmother turned ninety.", "How old is my grandmother?", "grandmother"),
    ("I speak French fluently.", "Can I read French?", "french"),
    ("My laptop is a MacBook.", "What kind of laptop do I use?", "laptop"),
    ("I hate horror movies.", "Which movies should you avoid suggesting?", "movies"),
    ("I'm lactose intolerant.", "Is lactose ok for me?", "lactose"),
    ("My husband is called Marco.", "What's my husband's name?", "husband"),
    ("I have a degree in chemistry.", "What subject is my degree in?", "degree"),
    ("My flat is on the fourth floor.", "Which level is my flat on?", "flat"),
    ("I cycle to the office.", "How do I get to the office?", "office"),
    ("I take insulin every day.", "Why do I need insulin?", "insulin"),
    ("My best friend is Priya.", "Who is my closest friend?", "friend"),
    ("I collect vintage stamps.", "Tell me about my stamps hobby.", "stamps"),
    ("My phone number ends in 42.", "What are the last digits of my phone?", "phone"),
    ("I'm training for a marathon in April.", "When is my marathon?", "marathon"),
    ("My parents live in Madrid.", "Where are my parents?", "parents"),
    ("My alarm goes off at six every morning.", "When does my alarm ring?", "alarm"),
    ("I'm a big fan of chess.", "Do I enjoy chess?", "chess"),
    ("My passport expires in 2027.", "When must I renew my passport?", "passport"),
    ("I support Benfica.", "Am I a Benfica fan?", "benfica"),
    ("I'm gluten free.", "Is gluten safe for me?", "gluten"),
    ("My dentist is Dr Silva.", "Who is my dentist?", "dentist"),
    ("I keep bees on the roof.", "Tell me about my bees.", "bees"),
    ("My favourite season is autumn.", "Do I like autumn?", "autumn"),
    ("I bake sourdough bread every Sunday.", "What kind of bread do I make?", "bread"),
    ("My boss is very strict.", "What is my boss like?", "boss"),
    ("I lost my wallet in Rome.", "Where did my wallet go missing?", "wallet"),
]


def words(text: str) -> set[str]:
    return {t for t in tokenize(text) if len(t) > 1}


def chat(gw, user: str, thread: str, prompt: str) -> str:
    r = httpx.post(
        gw.url + "/v1/chat",
        timeout=60,
        json={"prompt": prompt, "user_id": user, "thread_id": thread},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["response"])


def memories(gw, user: str, **params) -> list[dict]:
    r = httpx.get(f"{gw.url}/v1/users/{user}/memories", params=params, timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["memories"])


def wait_for_message_memories(gw, worker, user: str, n: int) -> list[dict]:
    try:
        wait_for(
            lambda: len(memories(gw, user, kind="message")) >= n,
            120,
            f"{n} message memories of {user}",
        )
    except TimeoutError:
        raise AssertionError("worker log:\n" + worker.log_tail()) from None
    return memories(gw, user, kind="message")


def test_the_corpus_shares_only_its_key_noun():
    assert len(EVERYDAY) == 50
    for statement, question, noun in EVERYDAY:
        assert words(statement) & words(question) == {noun}, (statement, question)


def test_a_statement_no_rule_knows_is_recalled_in_a_new_thread_offline(offline_platform):
    gw, worker = offline_platform
    for text in SIX:
        chat(gw, "uma", "th-six", text)
    held = wait_for_message_memories(gw, worker, "uma", len(SIX))
    assert {m["text"] for m in held} == set(SIX)  # offline replies are never context
    assert all(m["source_thread_id"] == "th-six" and m["valid_from_ms"] > 0 for m in held)
    # the offline model shows what it was given: the user's own words, the message memory,
    # whatever facts were extracted besides (deleting those would delete the message
    # memories quoting their source messages too: test_derived_forgetting)
    answer = chat(gw, "uma", "th-new", "What is my dog's name?")
    assert "My dog's name is Biscuit." in answer
    assert "Biscuit" not in chat(gw, "vic", "th-vic", "What is my dog's name?")

    # saying it again in the same thread is the same memory, dated anew
    chat(gw, "uma", "th-six", "My dog's name is Biscuit.")
    wait_for(
        lambda: any(
            m["text"] == SIX[0] and m["valid_from_ms"] > held[0]["valid_from_ms"]
            for m in memories(gw, "uma", kind="message")
        ),
        60,
        "the restated message to be re-dated",
    )
    assert [m["text"] for m in memories(gw, "uma", kind="message")].count(SIX[0]) == 1


def test_fifty_everyday_statements_are_recalled_by_questions_in_other_words(offline_platform):
    gw, worker = offline_platform
    # over ten conversations (fifty turns in one would be summarised while the worker is
    # still behind: a job whose messages were summarised away stores nothing, by design)
    for i, (statement, _, _) in enumerate(EVERYDAY):
        chat(gw, "ola", f"th-life-{i // 5}", statement)
    wait_for_message_memories(gw, worker, "ola", len(EVERYDAY))
    missed = []
    for statement, question, _ in EVERYDAY:
        r = httpx.get(f"{gw.url}/v1/users/ola/memories/search", params={"q": question}, timeout=30)
        assert r.status_code == 200, r.text
        recalled = [x["memory"] for x in r.json()["results"]]
        # the user's own words, verbatim: a message memory, or a line of the excerpt of
        # its thread (a fact's wording differs: "User's cat is called Miso")
        if not any(statement in m["text"].split("\n") for m in recalled):
            missed.append((question, [m["text"] for m in recalled]))
    assert missed == []
    # another user recalls none of it
    r = httpx.get(
        f"{gw.url}/v1/users/ida/memories/search", params={"q": EVERYDAY[0][1]}, timeout=30
    )
    assert r.json()["results"] == []


def test_message_memories_go_with_their_thread_and_with_the_user(offline_platform):
    gw, worker = offline_platform
    chat(gw, "eli", "th-keep", "My canoe is painted yellow.")
    chat(gw, "eli", "th-drop", "My piano teacher is Mrs Oduya.")
    held = wait_for_message_memories(gw, worker, "eli", 2)
    assert {m["source_thread_id"] for m in held} == {"th-keep", "th-drop"}

    r = httpx.delete(f"{gw.url}/v1/users/eli/threads/th-drop", timeout=30)
    assert r.status_code == 200, r.text
    assert [m["text"] for m in memories(gw, "eli", kind="message")] == [
        "My canoe is painted yellow."
    ]
    r = httpx.get(
        f"{gw.url}/v1/users/eli/memories/search", params={"q": "piano lessons"}, timeout=30
    )
    found = [x["memory"] for x in r.json()["results"]]
    # a fact extracted from the thread stays (long-term memory); its words do not
    assert not any("Oduya" in m["text"] for m in found if m["kind"] == "message")

    r = httpx.delete(f"{gw.url}/v1/users/eli", timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["counts"].get("message_memories") == 1
    assert memories(gw, "eli") == []
