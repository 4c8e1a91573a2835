"""Thread excerpts (``longterm/grouping.py``, ADR 0025) on real embedded Chroma with the
real MiniLM model: the results of one conversation fold into one result, so the top k
spans k conversations; only memories relevant in their own right join; the token budget
bounds the whole; memories without a thread, and the worker's own search, stay single."""

from __future__ import annotations

import uuid

import pytest
from mnemo_common.tokens import estimate_tokens
from mnemo_memory.longterm.facts import CandidateFact
from mnemo_memory.longterm.grouping import GROUPED_IDS
from mnemo_memory.longterm.service import LongTermMemory
from mnemo_memory.longterm.settings import LongTermSettings
from mnemo_memory.longterm.text import indexed_text
from mnemo_memory.stores.vector import ChromaVectorStore, MemoryRecord, VectorFilter


def memory(embedder, chroma_path, **cfg):
    store = ChromaVectorStore(
        model=embedder.info, path=str(chroma_path), collection_prefix="t" + uuid.uuid4().hex[:8]
    )
    return LongTermMemory(embedder=embedder, store=store, cfg=LongTermSettings(**cfg))


@pytest.fixture
async def lt(embedder, chroma_path):
    m = memory(embedder, chroma_path)
    await m.open()
    yield m
    await m.aclose()


def fact(text, src, when):
    return CandidateFact(text=text, source_message_ids=(src,), valid_from_ms=when)


T0 = 1_780_000_000_000  # June 2026

HIKES = {
    "th1": [
        ("User went on a hiking trip in the Swiss Alps", "m1", T0),
        ("User went hiking on Mount Fuji last spring", "m2", T0 + 1000),
        ("User's locker code at the gym is 4711", "m3", T0 + 2000),
    ],
    "th2": [("User hiked the Appalachian Trail for two weeks", "m4", T0 + 3000)],
    "th3": [("User hiked up Table Mountain in Cape Town", "m5", T0 + 4000)],
}


async def seed(lt, user="ann"):
    for thread, facts in HIKES.items():
        await lt.write_facts(user, thread, [fact(*f) for f in facts])


def lines(results):
    return [line for r in results for line in r.record.text.split("\n")]


async def test_one_result_per_thread_so_the_top_k_spans_more_conversations(lt):
    await seed(lt)
    flt = VectorFilter(user_id="ann")
    query = "hiking trips"
    grouped, tokens = await lt.search("ann", query, flt, 3)
    single, _ = await lt.search("ann", query, flt, 3, group=False)
    hikes = {t for facts in HIKES.values() for t, _, _ in facts if "4711" not in t}
    assert set(lines(grouped)) >= hikes  # all four hikes, from three threads
    assert len(set(lines(single)) & hikes) == 3  # one slot per memory: one hike left out
    assert len({r.record.source_thread_id for r in grouped}) == len(grouped) == 3
    [th1] = [r for r in grouped if r.record.source_thread_id == "th1"]
    # the excerpt: members in the order said, their sources, their ids (best first)
    assert th1.record.text.split("\n") == [HIKES["th1"][0][0], HIKES["th1"][1][0]]
    assert set(th1.record.source_message_ids) == {"m1", "m2"}
    ids = th1.record.metadata[GROUPED_IDS].split(",")
    assert ids[0] == th1.record.id and len(ids) == 2
    assert tokens == sum(estimate_tokens(r.record.text) for r in grouped)


async def test_a_memory_joins_only_when_relevant_in_its_own_right(lt):
    await seed(lt)
    flt = VectorFilter(user_id="ann")
    grouped, _ = await lt.search("ann", "hiking trips", flt, 10)
    [th1] = [r for r in grouped if r.record.source_thread_id == "th1" and "\n" in r.record.text]
    assert "4711" not in th1.record.text  # same thread, unrelated: never rides along
    # with room to spare it is still a result of its own, as without grouping
    assert any(r.record.text == HIKES["th1"][2][0] for r in grouped)
    # and a query it matches finds it first
    code, _ = await lt.search("ann", "locker code", flt, 3)
    assert code[0].record.text.split("\n")[0] == HIKES["th1"][2][0]


async def test_the_token_budget_bounds_the_excerpts(lt):
    await seed(lt)
    flt = VectorFilter(user_id="ann")
    query = "hiking trips"
    full, full_tokens = await lt.search("ann", query, flt, 3)
    small, tokens = await lt.search("ann", query, flt, 3, token_budget=full_tokens - 5)
    assert 0 < tokens <= full_tokens - 5
    assert len(lines(small)) < len(lines(full))


async def test_the_default_budget_applies_when_the_request_sets_none(embedder, chroma_path):
    lt = memory(embedder, chroma_path, group_token_budget=20)
    await lt.open()
    try:
        await seed(lt)
        found, tokens = await lt.search("ann", "hiking trips", VectorFilter(user_id="ann"), 3)
        assert 0 < tokens <= 20 and len(lines(found)) < 4
    finally:
        await lt.aclose()


async def test_memories_without_a_thread_stay_single_and_grouping_can_be_off(embedder, chroma_path):
    lt = memory(embedder, chroma_path, group_by_thread=False)
    await lt.open()
    try:
        await seed(lt)
        for text in ("User hiked Kilimanjaro in 2019", "User hiked around Lake Bled"):
            await lt.add_memory("ann", text, "", 0)  # AddMemory: no source thread
        found, _ = await lt.search("ann", "hiking trips", VectorFilter(user_id="ann"), 10)
        assert all("\n" not in r.record.text for r in found)  # off: memories as stored
        lt.cfg = LongTermSettings()  # on (the default)
        lt.keyword_cache.invalidate("ann")
        found, _ = await lt.search("ann", "hiking trips", VectorFilter(user_id="ann"), 10)
        threadless = [r for r in found if not r.record.source_thread_id]
        assert sorted(r.record.text for r in threadless) == [
            "User hiked Kilimanjaro in 2019",
            "User hiked around Lake Bled",
        ]
        assert any("\n" in r.record.text for r in found)  # th1 is an excerpt
    finally:
        await lt.aclose()


@pytest.fixture
def lt_server(memory_server_factory, memory_settings, embedder, tmp_path):
    from mnemo_memory.longterm import build_longterm

    settings = memory_settings(vector={"chroma_path": str(tmp_path / "chroma")})
    return memory_server_factory(settings, longterm=build_longterm(settings, embedder=embedder))


def test_prepare_turn_builds_excerpts_within_the_turns_budget(lt_server):
    from mnemo.memory.v1 import memory_pb2

    stub = lt_server.stub()
    for text in (
        "User went on a hiking trip in the Swiss Alps last summer with two friends",
        "User went hiking on Mount Fuji last spring and reached the summit at dawn",
        "User hiked the Appalachian Trail for two weeks and wants to hike it again",
        "User goes on a hiking trip in the Dolomites every autumn with her brother",
    ):
        stub.AddMemory(
            memory_pb2.AddMemoryRequest(user_id="hana", text=text, source_thread_id="trips")
        )
    search = stub.SearchMemories(
        memory_pb2.SearchMemoriesRequest(user_id="hana", query="hiking trips", top_k=3)
    )
    [excerpt] = search.results  # one thread, one result, all four hikes
    assert len(excerpt.memory.text.split("\n")) == 4 and search.context_tokens > 40
    reply = stub.PrepareTurn(
        memory_pb2.PrepareTurnRequest(
            user_id="hana", thread_id="new", query="hiking trips", token_budget=40
        )
    )
    # the excerpt is cut to what the turn can hold, not dropped whole for being too big
    assert reply.memories and reply.context_tokens <= 40
    assert 1 <= len(reply.memories[0].memory.text.split("\n")) < 4


def test_prepare_turn_never_repeats_a_message_the_history_shows_in_any_excerpt(lt_server):
    """The thread's history holds the hiking messages; its excerpt (best member: a fact of
    the same thread) must not carry their message memories. The fact stays, and another
    thread, whose history holds none of them, is shown them."""
    from mnemo.memory.v1 import memory_pb2
    from mnemo_memory.longterm.facts import CandidateFact

    stub = lt_server.stub()
    said = [
        "I went on a hiking trip in the Swiss Alps with two friends",
        "I hiked up Mount Fuji last spring and reached the summit at dawn",
        "We hiked the Appalachian Trail for two weeks in August",
    ]
    for i, text in enumerate(said):
        stub.CommitTurn(
            memory_pb2.CommitTurnRequest(
                user_id="ivo",
                thread_id="trips",
                idempotency_key=f"k{i}",
                user_message=text,
                assistant_message=f"noted {i}",
            )
        )

    async def write(h):
        held = await h.stores.threads.read_messages("ivo", "trips")
        await h.longterm.write_messages("ivo", "trips", held, held)  # the job's message memories
        src = next(m.id for m in held if "Swiss" in m.content)
        fact = CandidateFact(text="User went hiking in the Swiss Alps", source_message_ids=(src,))
        await h.longterm.write_facts("ivo", "trips", [fact])

    lt_server.run(write)

    def shown(thread_id):
        reply = stub.PrepareTurn(
            memory_pb2.PrepareTurnRequest(
                user_id="ivo", thread_id=thread_id, query="hiking trips in the mountains"
            )
        )
        return [m.content for m in reply.messages], [r.memory.text for r in reply.memories]

    history, memories = shown("trips")
    assert set(said) <= set(history)
    text = "\n".join(memories)
    assert not [s for s in said if s in text], memories  # no message said twice
    assert "User went hiking in the Swiss Alps" in text  # the thread's fact is still recalled
    history, memories = shown("elsewhere")
    assert not history
    assert all(s in "\n".join(memories) for s in said)  # another thread is shown them


async def test_the_budget_counts_the_overlapping_context_of_message_memories_once(
    embedder, chroma_path
):
    """Neighbouring message memories share their context lines; the excerpt holds each line
    once, and the budget counts what the excerpt holds, not every member's whole text: a
    budget that fits the excerpt keeps every member (counted per member, they would not)."""
    from mnemo_memory.stores.thread_models import StoredMessage

    lt = memory(embedder, chroma_path, message_memories="all")
    await lt.open()
    try:
        said = [
            "We went hiking in the Swiss Alps and slept in a mountain hut",
            "Hiking the Alps sounds wonderful, which trail did you take?",
            "The hiking trail from Grindelwald up to the glacier, six hours",
            "I love hiking too, last spring I hiked up Mount Fuji at dawn",
            "Hiking Fuji at dawn must have been beautiful, was it crowded?",
            "Very crowded, so next year we plan a quieter hiking trip in Norway",
        ]
        held = [
            StoredMessage(f"m{i}", ("user", "assistant")[i % 2], text, T0 + i * 1000)
            for i, text in enumerate(said)
        ]
        await lt.write_messages("eve", "walks", held, held)
        flt = VectorFilter(user_id="eve")
        [full], full_tokens = await lt.search("eve", "hiking trips", flt, 3)
        members = full.record.metadata[GROUPED_IDS].split(",")
        assert full.record.text.split("\n") == said  # the whole thread, each line once
        singles, _ = await lt.search("eve", "hiking trips", flt, 10, group=False)
        assert {r.record.id for r in singles} == set(members)
        budget = full_tokens + len(members) + 1  # the excerpt, with a break per member
        assert sum(estimate_tokens(r.record.text + "\n") for r in singles) > budget
        [fitted], tokens = await lt.search("eve", "hiking trips", flt, 3, token_budget=budget)
        assert fitted.record.text == full.record.text and tokens == full_tokens <= budget
    finally:
        await lt.aclose()


async def test_excerpts_walk_every_candidate_the_two_lists_brought(embedder, chroma_path):
    """The vector and keyword lists bring up to twice ``LONGTERM__VECTOR_CANDIDATES``
    memories, all read already: the excerpts are built from all of them, not only the
    fused best ``LONGTERM__VECTOR_CANDIDATES``, so a thread's relevant memory that fused
    below that depth (the vector list alone found it) still joins its thread."""
    lt = memory(embedder, chroma_path, vector_candidates=7)
    await lt.open()
    try:
        backpack = "User loves walking up mountains with a heavy backpack"
        threads = {
            "alps": ["User went on a hiking trip in the Swiss Alps", backpack],
            "t1": ["User's sister dislikes hiking trips"],
            "t2": ["User's neighbour organises hiking trips for the school"],
            "t3": ["User's colleague sells gear for hiking trips"],
            "t4": ["User read a magazine article about hiking trips"],
            "t5": ["User hiked the Appalachian Trail for two weeks"],
            "t6": ["User went hiking on Mount Fuji last spring"],
        }
        for i, (thread, texts) in enumerate(threads.items()):
            facts = [fact(t, f"{thread}{j}", T0 + 10 * i + j) for j, t in enumerate(texts)]
            await lt.write_facts("ann", thread, facts)
        flt = VectorFilter(user_id="ann")
        # the fused best 7 (what the excerpts were built from before) lack it
        single, _ = await lt.search("ann", "hiking trips", flt, 7, group=False)
        assert backpack not in [r.record.text for r in single]
        grouped, _ = await lt.search("ann", "hiking trips", flt, 5)
        [alps] = [r for r in grouped if r.record.source_thread_id == "alps"]
        assert alps.record.text.split("\n") == threads["alps"]
    finally:
        await lt.aclose()


async def test_the_default_candidates_reach_a_threads_member_below_the_first_hundred(
    embedder, chroma_path
):
    """A user with many similar memories: the member of the best thread that the query
    matches by meaning only (no shared word) is the KNN's 124th of 146. With 100 vector
    candidates its thread's excerpt lacks it; the default (150) finds it."""
    places = ["the Alps", "Patagonia", "Nepal", "Peru", "Norway", "Iceland"]
    places += ["Scotland", "Japan", "Canada", "Chile", "Utah", "Oregon"]
    who = ["her sister", "two friends", "her dog", "a guide", "her father", "colleagues"]
    who += ["a club", "her cousin", "strangers", "her son", "students", "her aunt"]
    backpack = "User carries a heavy backpack up the mountains"
    texts = [("alps", "User went on hiking trips in the Swiss Alps"), ("alps", backpack)]
    texts += [(f"f{p}{w}", f"User and {w} go on hiking trips in {p}") for p in places for w in who]
    records = [
        MemoryRecord(
            id=f"r{i}",
            user_id="ann",
            text=text,
            created_at_ms=T0 + i,
            valid_from_ms=T0 + i,
            source_thread_id=thread,
            source_message_ids=(f"m{i}",),
        )
        for i, (thread, text) in enumerate(texts)
    ]
    lt = memory(embedder, chroma_path)
    await lt.open()
    try:
        vectors = await embedder.encode(
            [indexed_text(r.text, r.valid_from_ms, True) for r in records]
        )
        await lt.store.upsert(records, vectors)
        flt = VectorFilter(user_id="ann")

        async def alps() -> str:
            found, _ = await lt.search("ann", "hiking trips", flt, 10)
            return next(r.record.text for r in found if r.record.source_thread_id == "alps")

        assert backpack in await alps()  # the default: 150 candidates
        lt.cfg = LongTermSettings(vector_candidates=100)
        assert backpack not in await alps()
    finally:
        await lt.aclose()
