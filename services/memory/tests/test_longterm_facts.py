"""Facts and search on real embedded Chroma with the real MiniLM model: deterministic ids
(replay writes nothing), merge of restatements, supersession of contradictions, strict
user filtering, filters, token budget, erasure, and the long-term RPCs over real gRPC."""

from __future__ import annotations

import uuid

import grpc
import pytest
from mnemo.memory.v1 import memory_pb2
from mnemo_memory.longterm.facts import CandidateFact
from mnemo_memory.longterm.service import LongTermMemory
from mnemo_memory.longterm.settings import LongTermSettings
from mnemo_memory.stores.vector import ChromaVectorStore, VectorFilter


@pytest.fixture
async def lt(embedder, chroma_path):
    store = ChromaVectorStore(
        model=embedder.info, path=str(chroma_path), collection_prefix="t" + uuid.uuid4().hex[:8]
    )
    memory = LongTermMemory(embedder=embedder, store=store, cfg=LongTermSettings())
    await memory.open()
    yield memory
    await memory.aclose()


def fact(text, *src, **kw):
    return CandidateFact(text=text, source_message_ids=tuple(src) or ("m1",), **kw)


async def texts(lt, user, **kw):
    records, _ = await lt.list_memories(user, VectorFilter(user_id=user, **kw), 100, "")
    return sorted(r.text for r in records)


async def test_replayed_extraction_writes_nothing_new(lt):
    batch = [fact("User lives in Lisbon", "m1"), fact("User has a dog named Rex", "m2")]
    first = await lt.write_facts("alice", "th1", batch)
    again = await lt.write_facts("alice", "th1", batch)
    assert len(first.added) == 2
    assert again.added == [] and again.merged == [] and len(again.skipped) == 2
    assert (await lt.store.count("alice"))["total"] == 2


async def test_restatement_merges_instead_of_duplicating(lt):
    await lt.write_facts("alice", "th1", [fact("User has a dog named Rex", "m1", importance=5)])
    report = await lt.write_facts("alice", "th2", [fact("User has a dog named Rex.", "m9")])
    assert report.merged and not report.added
    [rec] = (await lt.list_memories("alice", VectorFilter(user_id="alice"), 10, ""))[0]
    assert set(rec.source_message_ids) == {"m1", "m9"}
    assert rec.importance == 6  # restated: a little more important
    # replaying the merging job does not bump it again
    again = await lt.write_facts("alice", "th2", [fact("User has a dog named Rex.", "m9")])
    assert again.skipped and not again.merged


async def test_contradiction_supersedes_and_keeps_history(lt):
    await lt.write_facts("alice", "th1", [fact("My favourite colour is blue", "m1")])
    report = await lt.write_facts("alice", "th2", [fact("My favourite colour is green", "m7")])
    assert len(report.added) == 1 and len(report.superseded) == 1
    assert await texts(lt, "alice") == ["My favourite colour is green"]
    history = await texts(lt, "alice", include_superseded=True)
    assert history == ["My favourite colour is blue", "My favourite colour is green"]
    old = (await lt.store.get(report.superseded))[0]
    assert old.valid_to_ms > 0 and old.superseded_by == report.added[0]
    ranked, _ = await lt.search(
        "alice", "what is my favourite colour", VectorFilter(user_id="alice"), 5
    )
    assert [r.record.text for r in ranked] == ["My favourite colour is green"]


async def test_llm_named_replacement_supersedes(lt):
    first = await lt.write_facts("alice", "th1", [fact("User works at Acme Corp", "m1")])
    report = await lt.write_facts(
        "alice",
        "th2",
        [
            fact(
                "User recently left their job and is now a freelancer",
                "m5",
                replaces=first.added[0],
            )
        ],
    )
    assert report.superseded == first.added


async def test_search_never_returns_another_users_memories(lt):
    await lt.write_facts("bob", "tb", [fact("User is allergic to peanuts", "b1", importance=10)])
    await lt.write_facts("alice", "ta", [fact("User plays the cello", "a1")])
    ranked, _ = await lt.search(
        "alice", "is the user allergic to peanuts", VectorFilter(user_id="alice"), 10
    )
    assert [r.record.user_id for r in ranked] == ["alice"]
    assert all("peanut" not in r.record.text for r in ranked)
    with pytest.raises(Exception, match="user_id"):
        await lt.search("alice", "x", VectorFilter(user_id="bob"), 10)


async def test_hybrid_ranking_finds_rare_keyword_and_budget_limits_tokens(lt):
    await lt.write_facts(
        "alice",
        "t",
        [
            fact("User's cat is called Zanzibar", "m1"),
            fact("User enjoys long walks on the beach at sunset with friends", "m2"),
            fact("User is learning to cook Thai food on weekends", "m3"),
        ],
    )
    ranked, _ = await lt.search("alice", "Zanzibar", VectorFilter(user_id="alice"), 3)
    assert ranked[0].record.text == "User's cat is called Zanzibar"
    assert ranked[0].keyword_score == pytest.approx(1.0)
    kept, tokens = await lt.search(
        "alice", "what does the user like", VectorFilter(user_id="alice"), 3, token_budget=12
    )
    assert 0 < tokens <= 12 and len(kept) < 3


async def test_filters_kind_importance_thread(lt):
    await lt.write_facts(
        "alice", "th1", [fact("User likes jazz", "m1", kind="preference", importance=8)]
    )
    await lt.write_facts(
        "alice", "th2", [fact("User visited Rome in May", "m2", kind="event", importance=3)]
    )
    assert await texts(lt, "alice", kinds=("preference",)) == ["User likes jazz"]
    assert await texts(lt, "alice", min_importance=5) == ["User likes jazz"]
    assert await texts(lt, "alice", thread_id="th2") == ["User visited Rome in May"]


async def test_forget_user_leaves_nothing_in_the_vector_store(lt):
    await lt.write_facts(
        "alice", "t", [fact("User lives in Oslo", "m1"), fact("User has two sisters", "m2")]
    )
    await lt.write_episode("alice", "t", "Talked about family and Oslo.", ("m1", "m2"))
    await lt.write_facts("bob", "t", [fact("User lives in Rome", "m3")])
    assert await lt.forget_user("alice") == {"facts": 2, "episodes": 1}
    assert (await lt.store.count("alice"))["total"] == 0
    assert [d async for d in lt.export_user("alice")] == []
    assert (await lt.store.count("bob"))["total"] == 1


@pytest.fixture
def lt_server(memory_server_factory, memory_settings, embedder, tmp_path):
    from mnemo_memory.longterm import build_longterm

    settings = memory_settings(vector={"chroma_path": str(tmp_path / "chroma")})
    return memory_server_factory(settings, longterm=build_longterm(settings, embedder=embedder))


def test_adding_a_restatement_twice_answers_the_fact_it_merged_into(lt_server):
    stub = lt_server.stub()
    first = stub.AddMemory(
        memory_pb2.AddMemoryRequest(user_id="alice", text="User has a dog named Rex")
    )
    again = memory_pb2.AddMemoryRequest(user_id="alice", text="User has a dog, named Rex")
    assert stub.AddMemory(again).id == first.id  # merged, not duplicated
    assert stub.AddMemory(again).id == first.id  # the same restatement once more
    listed = stub.ListMemories(memory_pb2.ListMemoriesRequest(user_id="alice"))
    assert [m.id for m in listed.memories] == [first.id]


def test_bad_memory_arguments_are_invalid_argument_naming_the_field(lt_server):
    stub = lt_server.stub()
    stub.CommitTurn(
        memory_pb2.CommitTurnRequest(
            user_id="bob", thread_id="th-bob", idempotency_key="k", user_message="q",
            assistant_message="a",
        )
    )  # fmt: skip

    def code_and_field(call):
        with pytest.raises(grpc.RpcError) as err:
            call()
        return err.value.code(), err.value.details().split(":")[0]

    prepare = memory_pb2.PrepareTurnRequest
    recall = memory_pb2.RecallOptions
    flt = memory_pb2.MemoryFilter
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    assert code_and_field(
        lambda: stub.PrepareTurn(
            prepare(user_id="alice", thread_id="t", query="q", recall=recall(top_k=101))
        )
    ) == (invalid, "recall.top_k")
    assert code_and_field(
        lambda: stub.PrepareTurn(
            prepare(
                user_id="alice",
                thread_id="t",
                query="q",
                recall=recall(filter=flt(thread_id="a:b")),
            )
        )
    ) == (invalid, "recall.filter.thread_id")
    assert code_and_field(
        lambda: stub.ListMemories(
            memory_pb2.ListMemoriesRequest(user_id="alice", filter=flt(thread_id="a b"))
        )
    ) == (invalid, "filter.thread_id")
    assert code_and_field(
        lambda: stub.SearchMemories(
            memory_pb2.SearchMemoriesRequest(
                user_id="alice", query="q", filter=flt(min_importance=11)
            )
        )
    ) == (invalid, "filter.min_importance")
    assert code_and_field(
        lambda: stub.AddMemory(
            memory_pb2.AddMemoryRequest(user_id="alice", text="I like tea", source_thread_id="a b")
        )
    ) == (invalid, "source_thread_id")


def test_memory_rpcs_over_grpc(lt_server):
    stub = lt_server.stub()
    added = stub.AddMemory(
        memory_pb2.AddMemoryRequest(
            user_id="alice",
            text="My favourite drink is green tea",
            kind=memory_pb2.MEMORY_KIND_PREFERENCE,
            importance=7,
        )
    )
    assert added.kind == memory_pb2.MEMORY_KIND_PREFERENCE and added.importance == 7
    found = stub.SearchMemories(
        memory_pb2.SearchMemoriesRequest(user_id="alice", query="what does she drink", top_k=3)
    )
    assert found.results[0].memory.id == added.id and found.context_tokens > 0
    assert not stub.SearchMemories(
        memory_pb2.SearchMemoriesRequest(user_id="mallory", query="what does she drink")
    ).results
    updated = stub.UpdateMemory(
        memory_pb2.UpdateMemoryRequest(
            user_id="alice", memory_id=added.id, text="My favourite drink is black coffee"
        )
    )
    assert updated.text.endswith("black coffee")
    found = stub.SearchMemories(
        memory_pb2.SearchMemoriesRequest(user_id="alice", query="coffee", top_k=1)
    )
    assert found.results[0].memory.text.endswith("black coffee")  # re-embedded
    # another user's memory answers exactly like a missing one, on every memory RPC
    for mid in (added.id, "f000000000000000000000000"):
        answers = []
        for call in (
            lambda: stub.DeleteMemory(
                memory_pb2.DeleteMemoryRequest(user_id="mallory", memory_id=mid)
            ),
            lambda: stub.UpdateMemory(
                memory_pb2.UpdateMemoryRequest(user_id="mallory", memory_id=mid, importance=2)
            ),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call()
            answers.append((err.value.code(), err.value.details().replace(mid, "X")))
        assert answers == [(grpc.StatusCode.NOT_FOUND, "memory X not found")] * 2
    assert stub.ListMemories(memory_pb2.ListMemoriesRequest(user_id="alice")).memories
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateMemory(
            memory_pb2.UpdateMemoryRequest(user_id="alice", memory_id="nope", importance=3)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        stub.AddMemory(memory_pb2.AddMemoryRequest(user_id="alice", text="  "))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = stub.ListMemories(memory_pb2.ListMemoriesRequest(user_id="alice"))
    assert [m.id for m in listed.memories] == [added.id]
    assert stub.DeleteMemory(
        memory_pb2.DeleteMemoryRequest(user_id="alice", memory_id=added.id)
    ).deleted
    assert not stub.ListMemories(memory_pb2.ListMemoriesRequest(user_id="alice")).memories


@pytest.fixture
async def redis_lt(embedder, redisearch_server):
    from mnemo_memory.stores.vector import RedisVectorStore

    store = RedisVectorStore(
        url=redisearch_server.url, model=embedder.info, prefix="t" + uuid.uuid4().hex[:8]
    )
    memory = LongTermMemory(embedder=embedder, store=store, cfg=LongTermSettings())
    await memory.open()
    yield memory
    await memory.aclose()


async def test_redis_backend_follows_the_same_rules(redis_lt):
    lt = redis_lt
    batch = [fact("My favourite colour is blue", "m1"), fact("User has a dog named Rex", "m2")]
    assert len((await lt.write_facts("alice", "t", batch)).added) == 2
    assert (await lt.write_facts("alice", "t", batch)).added == []  # replay
    report = await lt.write_facts("alice", "t2", [fact("My favourite colour is green", "m3")])
    assert len(report.superseded) == 1
    await lt.write_facts("bob", "tb", [fact("User is allergic to peanuts", "b1")])
    ranked, _ = await lt.search("alice", "peanut allergy colour", VectorFilter(user_id="alice"), 10)
    assert {r.record.text for r in ranked} == {
        "My favourite colour is green",
        "User has a dog named Rex",
    }
    assert await lt.forget_user("alice") == {"facts": 3, "episodes": 0}
    assert (await lt.store.count("alice"))["total"] == 0


def test_prepare_turn_recalls_and_forget_user_erases_long_term(lt_server):
    stub = lt_server.stub()
    stub.AddMemory(memory_pb2.AddMemoryRequest(user_id="carol", text="User is vegetarian"))
    stub.AddMemory(memory_pb2.AddMemoryRequest(user_id="dave", text="User loves steak"))
    turn = stub.PrepareTurn(
        memory_pb2.PrepareTurnRequest(
            user_id="carol", thread_id="carol-1", query="suggest a dinner recipe"
        )
    )
    assert [m.memory.text for m in turn.memories] == ["User is vegetarian"]
    assert not turn.degraded
    chunks = list(stub.ExportUser(memory_pb2.ExportUserRequest(user_id="carol")))
    assert any(c.section == "memory" and b"vegetarian" in c.json for c in chunks)
    receipt = stub.ForgetUser(memory_pb2.ForgetUserRequest(user_id="carol")).receipt
    assert receipt.counts["facts"] == 1
    assert not stub.ListMemories(memory_pb2.ListMemoriesRequest(user_id="carol")).memories
    assert stub.ListMemories(memory_pb2.ListMemoriesRequest(user_id="dave")).memories


def test_store_of_another_model_answers_failed_precondition(
    memory_server_factory, memory_settings, embedder, tmp_path
):
    from mnemo_memory.embed import Embedder
    from mnemo_memory.longterm import build_longterm

    settings = memory_settings(vector={"chroma_path": str(tmp_path / "shared-chroma")})
    first = memory_server_factory(settings, longterm=build_longterm(settings, embedder=embedder))
    first.stub().AddMemory(memory_pb2.AddMemoryRequest(user_id="alice", text="User likes figs"))
    other = Embedder(model_id="paraphrase-MiniLM-L3-v2")
    other._model = embedder.load()  # same vectors, another recorded model id
    second = memory_server_factory(settings, longterm=build_longterm(settings, embedder=other))
    with pytest.raises(grpc.RpcError) as err:
        second.stub().SearchMemories(
            memory_pb2.SearchMemoriesRequest(user_id="alice", query="figs")
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "all-MiniLM-L6-v2" in err.value.details()
    assert "paraphrase-MiniLM-L3-v2" in err.value.details()


async def test_another_replica_never_recalls_a_deleted_or_stale_memory(embedder, chroma_path):
    """Each replica caches its keyword index for a few seconds; a memory deleted or
    corrected through another replica must not come back through that cache."""
    prefix = "t" + uuid.uuid4().hex[:8]

    def replica():
        store = ChromaVectorStore(
            model=embedder.info, path=str(chroma_path), collection_prefix=prefix
        )
        return LongTermMemory(embedder=embedder, store=store, cfg=LongTermSettings())

    a, b = replica(), replica()
    await a.open()
    await b.open()
    try:
        await b.write_facts("alice", "t", [fact("User's locker code is 4711", "m1")])
        await b.write_facts("alice", "t", [fact("User has a dog named Rex", "m2")])
        flt = VectorFilter(user_id="alice")
        ranked, _ = await a.search("alice", "locker code", flt, 5)  # a caches its corpus
        code = next(r.record for r in ranked if "locker" in r.record.text)
        dog = next(r.record for r in ranked if "Rex" in r.record.text)
        await b.delete_memory("alice", code.id)
        await b.update_memory("alice", dog.id, "User has a dog named Max", None, "")
        ranked, _ = await a.search("alice", "locker code dog Rex", flt, 5)
        assert [r.record.text for r in ranked] == ["User has a dog named Max"]
    finally:
        await a.aclose()
        await b.aclose()
