"""Deleting or correcting a fact forgets what was derived from the same words: the episodes
of its source thread and the source messages themselves (so the next episode of that
thread cannot quote them again). The issue's case: delete "User lives in Madrid", close
the thread — the episode "user: I live in Madrid…" must not be recalled in the next one."""

from __future__ import annotations

import pytest
from mnemo.memory.v1 import memory_pb2 as pb


def _setup(server, uid: str, tid: str):
    from mnemo_memory.longterm.facts import CandidateFact

    stub = server.stub()
    for i, text in enumerate(["Hello there", "I live in Madrid, near the Retiro", "Nice day"]):
        stub.CommitTurn(
            pb.CommitTurnRequest(
                user_id=uid,
                thread_id=tid,
                idempotency_key=f"k{i}",
                user_message=text,
                assistant_message=f"noted {i}",
            )
        )
    msgs = stub.GetThread(pb.GetThreadRequest(user_id=uid, thread_id=tid)).messages
    source = next(m.id for m in msgs if "Madrid" in m.content)

    async def write(h):
        lt = h.longterm
        held = await h.stores.threads.read_messages(uid, tid)
        await lt.write_messages(uid, tid, held, held)  # what the extract_facts job keeps
        report = await lt.write_facts(
            uid, tid, [CandidateFact(text="User lives in Madrid", source_message_ids=(source,))]
        )
        await lt.write_episode(
            uid,
            tid,
            "user: I live in Madrid, near the Retiro; assistant: noted",
            tuple(m.id for m in msgs),
        )
        await lt.write_episode(  # an episode of another thread stays
            uid, f"{tid}-other", "user talked about the weather in Oslo", ("x1",)
        )
        return report.added[0]

    return stub, server.run(write), msgs


def _all(stub, uid):
    return list(stub.ListMemories(pb.ListMemoriesRequest(user_id=uid)).memories)


def _texts(stub, uid):
    """The texts of every memory but the message memories (verbatim messages)."""
    return sorted(m.text for m in _all(stub, uid) if m.kind != pb.MEMORY_KIND_MESSAGE)


def _message_texts(stub, uid):
    return [m.text for m in _all(stub, uid) if m.kind == pb.MEMORY_KIND_MESSAGE]


@pytest.mark.parametrize("how", ["delete", "correct"])
def test_forgetting_a_fact_forgets_its_episode_and_source_message(memory_server, how) -> None:
    uid, tid = f"mad-{how}", f"mad-{how}-t1"
    stub, fact_id, msgs = _setup(memory_server, uid, tid)
    assert any("Madrid" in t for t in _texts(stub, uid) if t.startswith("user:"))
    assert any("Madrid" in t for t in _message_texts(stub, uid))
    if how == "delete":
        stub.DeleteMemory(pb.DeleteMemoryRequest(user_id=uid, memory_id=fact_id))
        expected = ["user talked about the weather in Oslo"]
    else:
        stub.UpdateMemory(
            pb.UpdateMemoryRequest(user_id=uid, memory_id=fact_id, text="User lives in Lisbon")
        )
        expected = ["User lives in Lisbon", "user talked about the weather in Oslo"]
    assert _texts(stub, uid) == expected
    # the message memory quoting the source message went too; the others stay
    kept = _message_texts(stub, uid)
    assert kept and not any("Madrid" in t for t in kept), kept
    # the thread no longer holds the source message: a new episode cannot quote it
    held = stub.GetThread(pb.GetThreadRequest(user_id=uid, thread_id=tid)).messages
    assert len(held) == len(msgs) - 1
    assert not any("Madrid" in m.content for m in held)
    # and recall in the next thread does not bring it back
    found = stub.SearchMemories(
        pb.SearchMemoriesRequest(user_id=uid, query="Where do I live? Madrid")
    ).results
    assert not any("Madrid" in r.memory.text for r in found)


def test_deleting_a_memory_without_sources_touches_no_thread(memory_server) -> None:
    stub = memory_server.stub()
    uid, tid = "plain-1", "plain-1-t"
    stub.CommitTurn(
        pb.CommitTurnRequest(
            user_id=uid,
            thread_id=tid,
            idempotency_key="k",
            user_message="I like tea",
            assistant_message="ok",
        )
    )
    mem = stub.AddMemory(pb.AddMemoryRequest(user_id=uid, text="User likes tea"))
    stub.DeleteMemory(pb.DeleteMemoryRequest(user_id=uid, memory_id=mem.id))
    assert len(stub.GetThread(pb.GetThreadRequest(user_id=uid, thread_id=tid)).messages) == 2
