"""The LLM extractor against the wire fake (real anthropic SDK, real HTTP): the prompt
asks for atomic, self-contained, time-grounded facts and gets the dated transcript;
realistic replies become candidate facts; malformed ones are repaired or dropped item by
item (counted), and only a reply that is not JSON at all fails the job (retried)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass

import pytest
from mnemo_common.llm import LLMError, build_provider
from mnemo_memory.worker.extract import LLMExtractor
from mnemo_memory.worker.llm_facts import FIXED


@dataclass
class Msg:
    id: str
    role: str
    content: str
    created_at_ms: int


def at(y: int, mo: int, d: int, h: int = 9) -> int:
    return calendar.timegm((y, mo, d, h, 0, 0)) * 1000


MESSAGES = [
    Msg("m1", "user", "I live in Kyoto with my dog Rex.", at(2026, 5, 1)),
    Msg("m2", "assistant", "Nice! How can I help?", at(2026, 5, 1)),
    Msg("m3", "user", "I have a dentist appointment tomorrow at 10.", at(2026, 5, 2)),
]


@pytest.fixture
async def extractor(fake_anthropic):
    provider = build_provider(fake_anthropic.settings(max_retries=0))
    yield LLMExtractor(provider)
    await provider.aclose()


def fixed(reason: str) -> float:
    return FIXED.labels(reason)._value.get()


async def test_prompt_asks_for_atomic_grounded_facts_and_dates_every_line(
    extractor, fake_anthropic
):
    fake_anthropic.enqueue_json({"facts": []})
    facts, _ = await extractor.extract(MESSAGES, [])
    assert facts == []
    system = fake_anthropic.last_system_prompt()
    for rule in ("Atomic", "Self-contained", "Resolve relative dates", "importance", "kind"):
        assert rule in system
    assert "'tomorrow' said on 2 May 2026 is '3 May 2026'" in system
    user = fake_anthropic.last_user_message()
    # each line carries its own date, so "tomorrow" in m3 can be resolved
    assert "[m3] (2026-05-02 Sat 09:00 UTC) user: I have a dentist appointment tomorrow" in user
    assert "[m1] (2026-05-01 Fri 09:00 UTC) user: I live in Kyoto" in user


async def test_a_realistic_reply_becomes_candidate_facts(extractor, fake_anthropic):
    existing_id = "f" + "0" * 24
    fake_anthropic.enqueue_text(
        "```json\n"
        '{"facts": ['
        '{"text": "User lives in Kyoto", "kind": "fact", "importance": 7,'
        ' "source_message_ids": ["m1"], "replaces": null},'
        '{"text": "User has a dog named Rex", "kind": "fact", "importance": 6,'
        ' "source_message_ids": ["m1"], "replaces": null},'
        '{"text": "User has a dentist appointment on 3 May 2026 at 10:00", "kind": "event",'
        ' "importance": 6, "source_message_ids": ["m3"], "replaces": "' + existing_id + '"}'
        "]}\n```"
    )

    @dataclass
    class Existing:
        id: str
        text: str

    facts, usage = await extractor.extract(
        MESSAGES, [Existing(existing_id, "User has a dentist appointment on 1 May 2026")]
    )
    assert [(f.text, f.kind, f.importance) for f in facts] == [
        ("User lives in Kyoto", "fact", 7),
        ("User has a dog named Rex", "fact", 6),
        ("User has a dentist appointment on 3 May 2026 at 10:00", "event", 6),
    ]
    assert facts[2].source_message_ids == ("m3",) and facts[2].valid_from_ms == at(2026, 5, 2)
    assert facts[2].replaces == existing_id and facts[0].replaces == ""
    assert usage.input_tokens > 0


@pytest.mark.parametrize(
    ("item", "expected", "reason"),
    [
        (
            {"text": "User is vegan", "kind": "Preference", "importance": 6},
            ("preference", 6),
            "kind",
        ),
        ({"text": "User is vegan", "kind": "opinion", "importance": 6}, ("fact", 6), "kind"),
        ({"text": "User is vegan", "kind": "fact", "importance": "8"}, ("fact", 8), "importance"),
        ({"text": "User is vegan", "kind": "fact", "importance": 42}, ("fact", 10), "importance"),
        ({"text": "User is vegan", "kind": "fact"}, ("fact", 5), "importance"),
        ({"text": "User is vegan", "kind": "fact", "importance": True}, ("fact", 5), "importance"),
        ("User is vegan", ("fact", 5), "bare_text"),
    ],
)
async def test_wrong_fields_are_repaired_and_counted(
    extractor, fake_anthropic, item, expected, reason
):
    before = fixed(reason)
    fake_anthropic.enqueue_json({"facts": [item]})
    [fact], _ = await extractor.extract(MESSAGES, [])
    assert (fact.text, (fact.kind, fact.importance)) == ("User is vegan", expected)
    assert fact.source_message_ids == ("m1", "m2", "m3")  # none named: the whole window
    assert fixed(reason) == before + 1


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"kind": "fact", "importance": 5}, "no_text"),
        ({"text": 42, "kind": "fact", "importance": 5}, "no_text"),
        ({"text": "  ", "kind": "fact", "importance": 5}, "no_text"),
        (
            {"text": "User " + "really " * 80 + "likes tea", "kind": "fact", "importance": 5},
            "too_long",
        ),
        (["User likes tea"], "not_an_object"),
        (7, "not_an_object"),
    ],
)
async def test_unusable_facts_are_dropped_and_the_rest_kept(
    extractor, fake_anthropic, item, reason
):
    before = fixed(reason)
    good = {"text": "User likes green tea", "kind": "preference", "importance": 5}
    fake_anthropic.enqueue_json({"facts": [item, good]})
    facts, _ = await extractor.extract(MESSAGES, [])
    assert [f.text for f in facts] == ["User likes green tea"]
    assert fixed(reason) == before + 1


async def test_a_bare_list_and_too_many_facts_are_accepted_within_limits(extractor, fake_anthropic):
    fake_anthropic.enqueue_json(
        [{"text": f"User owns book number {i}", "kind": "fact", "importance": 3} for i in range(25)]
    )
    facts, _ = await extractor.extract(MESSAGES, [])
    assert len(facts) == 20
    fake_anthropic.enqueue_json({"facts": "none"})
    assert (await extractor.extract(MESSAGES, []))[0] == []
    fake_anthropic.enqueue_json(
        {"facts": [{"text": "User likes tea", "kind": "fact", "importance": 5}] * 2}
    )
    assert [f.text for f in (await extractor.extract(MESSAGES, []))[0]] == ["User likes tea"]


@pytest.mark.parametrize(
    "reply", ["Sure! The user lives in Porto.", "", '{"facts": [{"text": "User lives in', "null"]
)
async def test_a_reply_that_is_not_json_is_invalid_output(extractor, fake_anthropic, reply):
    fake_anthropic.enqueue_text(reply)
    with pytest.raises(LLMError) as err:
        await extractor.extract(MESSAGES, [])
    assert err.value.kind.value == "invalid_output"


async def test_source_ids_the_window_does_not_hold_fall_back_to_the_window(
    extractor, fake_anthropic
):
    fake_anthropic.enqueue_json(
        {
            "facts": [
                {
                    "text": "User lives in Kyoto",
                    "kind": "fact",
                    "importance": 7,
                    "source_message_ids": ["m99", 5],
                    "replaces": "f-unknown",
                }
            ]
        }
    )
    [fact], _ = await extractor.extract(MESSAGES, [])
    assert fact.source_message_ids == ("m1", "m2", "m3") and fact.replaces == ""
