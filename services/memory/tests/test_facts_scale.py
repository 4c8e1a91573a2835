"""One current value per fact, whatever other users store: many users holding the very
same facts (identical texts, identical vectors) each restate and update theirs, on every
real vector backend (embedded Chroma, a ``chroma run`` server, Redis with RediSearch),
through the domain layer's write path with the real MiniLM model.

Every user must end with exactly one valid fact per subject, holding the newest value,
the older ones superseded (``valid_to_ms``, ``superseded_by``) and kept as history.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import numpy as np
import pytest
from mnemo_memory.longterm.facts import CandidateFact
from mnemo_memory.longterm.service import LongTermMemory
from mnemo_memory.longterm.settings import LongTermSettings
from mnemo_memory.longterm.text import fact_id
from mnemo_memory.stores.vector import ChromaVectorStore, RedisVectorStore, VectorFilter

BACKENDS = ["chroma-embedded", "chroma-server", "redis"]

#: the 20 facts every user states (the same texts for all users)
SHARED = [
    "User lives in London",
    "User's favourite colour is blue",
    "User has a dentist appointment on 3 May",
    "User's PIN is 4711",
    "User has two kids",
    "User works as a nurse",
    "User's sister is called Ana",
    "User's flight to Berlin is on 12 June",
    "User plays tennis on Saturdays",
    "User is 34 years old",
    "User likes rooibos tea",
    "User likes green tea",
    "User's flight to Madrid is on 14 June",
    "User is allergic to peanuts",
    "User has a dog named Rex",
    "User drives a Toyota",
    "User is vegetarian",
    "User speaks Portuguese",
    "User prefers short answers",
    "User is learning the piano",
]
#: new values for the first ten subjects (slot changes, changed dates, numbers, names)
UPDATES = {
    0: ["User lives in Paris", "User lives in Berlin", "User moved to Tokyo"],
    1: [
        "User's favourite colour is green",
        "User's favourite colour is red",
        "User's favourite colour is yellow",
    ],
    2: [
        "User has a dentist appointment on 5 May",
        "User's dentist appointment is on 7 May",
        "User's dentist appointment moved to 12 May",
    ],
    3: ["User's PIN is 9999", "User's PIN is 1234", "User's PIN is now 2580"],
    4: ["User has three kids", "User has four kids", "User has 5 kids"],
    5: ["User works as a teacher", "User works as a pilot", "User works as an engineer"],
    6: [
        "User's sister is called Anna",
        "User's sister is called Maria",
        "User's sister is called Sofia",
    ],
    7: [
        "User's flight to Berlin is on 13 June",
        "User's flight to Berlin is on 20 June",
        "User's flight to Berlin is on 2 July",
    ],
    8: [
        "User plays tennis on Mondays",
        "User plays tennis on Tuesdays",
        "User plays tennis on Fridays",
    ],
    9: ["User is 35 years old", "User is 36 years old", "User is 40 years old"],
}


class SharedTextEmbedder:
    """The real model, each distinct text encoded once (the users share their texts)."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self._done: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    async def encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._done]
        if missing:
            self._done.update(zip(missing, await self._embedder.encode(missing), strict=True))
        return np.stack([self._done[t] for t in texts])


def make_store(kind: str, request: Any, prefix: str, model: Any) -> Any:
    if kind == "chroma-embedded":
        path = str(request.getfixturevalue("chroma_path"))
        return ChromaVectorStore(model=model, path=path, collection_prefix=prefix)
    if kind == "chroma-server":
        url = request.getfixturevalue("chroma_server").url
        return ChromaVectorStore(model=model, url=url, collection_prefix=prefix)
    url = request.getfixturevalue("redisearch_server").url
    return RedisVectorStore(url=url, model=model, prefix=prefix)


@pytest.fixture(params=BACKENDS)
async def lt(request, embedder):
    store = make_store(request.param, request, "s" + uuid.uuid4().hex[:8], embedder.info)
    memory = LongTermMemory(
        embedder=SharedTextEmbedder(embedder), store=store, cfg=LongTermSettings()
    )
    await memory.open()
    yield memory
    await memory.aclose()


def plan(u: int) -> dict[int, str]:
    """User ``u``'s five updates: subject → new text (varies with the user)."""
    subjects = [(u + k) % len(UPDATES) for k in (0, 2, 4, 6, 8)] if u % 2 else list(range(5))
    return {s: UPDATES[s][(u // 2 + s) % 3] for s in subjects}


T0, T1 = 1_777_000_000_000, 1_777_100_000_000


async def seed_users(lt: LongTermMemory, users: range) -> None:
    """The state ``first()`` below leaves, for many users at once: one user's facts as the
    write path stored them, copied to every user with that user's fact ids (a Chroma upsert
    costs ~70 ms here whatever its size, so 1,000 single-user writes would take minutes)."""
    cands = [CandidateFact(text=t, source_message_ids=(f"m{i}",)) for i, t in enumerate(SHARED)]
    await lt.write_facts("seed", "t1", cands, now=T0)
    records, vectors = await lt.store.candidates(VectorFilter(user_id="seed"))
    assert len(records) == 20
    for start in range(0, len(users), 100):
        chunk = users[start : start + 100]
        copies = [
            r.with_changes(user_id=f"u{u}", id=fact_id(f"u{u}", r.text, "t1", r.source_message_ids))
            for u in chunk
            for r in records
        ]
        await lt.store.upsert(copies, np.tile(vectors, (len(chunk), 1)))


async def run_users(
    lt: LongTermMemory, users: int, concurrency: int = 4, seeded: bool = False
) -> None:
    t0, t1 = T0, T1
    gate = asyncio.Semaphore(concurrency)

    async def first(u: int) -> None:
        cands = [CandidateFact(text=t, source_message_ids=(f"m{i}",)) for i, t in enumerate(SHARED)]
        async with gate:
            report = await lt.write_facts(f"u{u}", "t1", cands, now=t0)
        assert len(report.added) == 20, (u, report.as_dict())

    async def second(u: int) -> None:
        updates = plan(u)
        cands = [
            CandidateFact(text=t, source_message_ids=(f"n{s}",), valid_from_ms=t1)
            for s, t in updates.items()
        ]
        # and three unchanged facts said again, in other words or the same ones
        cands += [
            CandidateFact(text=SHARED[s] + ".", source_message_ids=(f"r{s}",), valid_from_ms=t1)
            for s in (10, 13, 17)
        ]
        async with gate:
            report = await lt.write_facts(f"u{u}", "t2", cands, now=t1)
        assert (len(report.added), len(report.superseded), len(report.merged)) == (5, 5, 3), (
            u,
            report.as_dict(),
        )

    if seeded:
        await seed_users(lt, range(users))
    else:
        await asyncio.gather(*(first(u) for u in range(users)))
    await asyncio.gather(*(second(u) for u in range(users)))


async def check_user(lt: LongTermMemory, u: int) -> None:
    user = f"u{u}"
    updates = plan(u)
    expected = {i: updates.get(i, t) for i, t in enumerate(SHARED)}
    valid, _ = await lt.list_memories(user, VectorFilter(user_id=user), 1000, "")
    assert sorted(r.text for r in valid) == sorted(expected.values()), user
    everything, _ = await lt.list_memories(
        user, VectorFilter(user_id=user, include_superseded=True), 1000, ""
    )
    assert len(everything) == 25, user
    by_text = {r.text: r for r in everything}
    for s, new_text in updates.items():
        old, new = by_text[SHARED[s]], by_text[new_text]
        assert old.valid_to_ms > 0 and old.superseded_by == new.id, (user, SHARED[s])
        assert new.valid_to_ms == 0
    for s in (10, 13, 17):  # restated: merged, one fact, more important
        rec = by_text[SHARED[s]]
        assert rec.valid_to_ms == 0 and rec.importance == 6 and len(rec.source_message_ids) == 2


async def test_users_sharing_facts_each_keep_one_current_value_per_subject(lt):
    started = time.monotonic()
    await run_users(lt, 60)
    for u in range(60):
        await check_user(lt, u)
    print(f"{lt.store.name}: 60 users in {time.monotonic() - started:.1f} s")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # minutes on a loaded 2-core machine: ~2,000 Chroma writes
async def test_a_thousand_users_sharing_twenty_facts_each_update_five(lt):
    started = time.monotonic()
    await run_users(lt, 1000, seeded=True)
    written = time.monotonic()
    for u in range(1000):
        await check_user(lt, u)
    print(
        f"{lt.store.name}: 1000 users written in {written - started:.1f} s, "
        f"checked in {time.monotonic() - written:.1f} s"
    )


async def test_ten_users_restating_a_shared_fact_keep_one_each(lt):
    for u in range(10):
        await lt.add_memory(f"tea{u}", "User likes rooibos tea", "", 0)
    for u in range(10):
        for restated in ("User likes rooibos tea.", "The user likes rooibos tea"):
            again = await lt.add_memory(f"tea{u}", restated, "", 0)
            assert again.text == "User likes rooibos tea"
    for u in range(10):
        listed, _ = await lt.list_memories(f"tea{u}", VectorFilter(user_id=f"tea{u}"), 10, "")
        assert [r.text for r in listed] == ["User likes rooibos tea"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("User has a dentist appointment on 3 May", "User has a dentist appointment on 5 May"),
        ("User has a dentist appointment on 3 May", "User's dentist appointment moved to 5 May"),
        ("User's PIN is 4711", "User's PIN is 9999"),
        ("PIN 4711", "PIN 9999"),
        ("User has two kids", "User has three kids"),
        ("User is 34 years old", "User is 35 years old"),
        ("User's meeting with Bob is at 10:30", "User's meeting with Bob is at 11:00"),
        ("User eats meat", "User does not eat meat"),
        ("User lives in Kyoto", "User no longer lives in Kyoto"),
        ("User's sister is called Ana", "User's sister is called Anna"),
    ],
)
async def test_a_changed_detail_supersedes_and_is_never_merged_away(lt, before, after):
    user = "u-" + uuid.uuid4().hex[:6]
    for other in range(3):  # others hold both texts: they must not matter
        await lt.add_memory(f"{user}-o{other}", before, "", 0)
        await lt.add_memory(f"{user}-o{other}", after, "", 0)
    old = await lt.add_memory(user, before, "", 0)
    new = await lt.add_memory(user, after, "", 0)
    assert new.text == after and new.id != old.id
    valid, _ = await lt.list_memories(user, VectorFilter(user_id=user), 10, "")
    assert [r.text for r in valid] == [after]
    [gone] = await lt.store.get([old.id])
    assert gone.valid_to_ms > 0 and gone.superseded_by == new.id


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("User likes rooibos tea", "User likes green tea"),
        ("User's flight to Berlin is on 12 June", "User's flight to Madrid is on 14 June"),
        ("User plays tennis on Saturdays", "User plays chess on Saturdays"),
        ("User has two kids", "User's kids go to school on Mondays"),
        ("User has a dog named Rex", "User has a dog named Biscuit"),
        ("User is allergic to peanuts", "User is allergic to shellfish"),
    ],
)
async def test_facts_that_only_look_alike_both_stay_valid(lt, first, second):
    user = "u-" + uuid.uuid4().hex[:6]
    await lt.add_memory(user, first, "", 0)
    await lt.add_memory(user, second, "", 0)
    valid, _ = await lt.list_memories(user, VectorFilter(user_id=user), 10, "")
    assert sorted(r.text for r in valid) == sorted([first, second])
