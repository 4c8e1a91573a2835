"""ForgetUser is a job with a tombstone: writes are refused while it runs, a turn already in
flight is never stored after the receipt, and a store that is down leaves the job pending
(and finished by the service itself) instead of a 503 after half the work."""

from __future__ import annotations

import threading

import grpc
import httpx
import pytest
import redis
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo_common.testing.procs import wait_for
from mnemo_memory.testing.chroma import ChromaServer
from shortterm_support import fill_user


def commit(stub, uid, tid, key, text="hello"):
    return stub.CommitTurn(
        pb.CommitTurnRequest(
            user_id=uid,
            thread_id=tid,
            idempotency_key=key,
            user_message=text,
            assistant_message="ok",
        )
    )


def prepare(stub, uid, tid, key):
    return stub.PrepareTurn(
        pb.PrepareTurnRequest(user_id=uid, thread_id=tid, query="hi", idempotency_key=key)
    )


@pytest.fixture
def server(memory_server_factory):
    return memory_server_factory(longterm=None)


def test_a_turn_prepared_before_the_erasure_is_refused_after_the_receipt(server) -> None:
    stub = server.stub()
    fill_user(stub, "ann", threads=1)
    prepare(stub, "ann", "ann-t0", "late")  # the chat is in flight: LLM answering
    prepare(stub, "ann", "ann-new", "late2")  # ... also one opening a new thread
    receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id="ann")).receipt
    assert receipt.total > 0 and list(receipt.pending) == []
    for tid, key in (("ann-t0", "late"), ("ann-new", "late2")):
        with pytest.raises(grpc.RpcError) as caught:
            commit(stub, "ann", tid, key, "User is allergic to penicillin")
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "erasure" in caught.value.details()
    assert list(stub.ListThreads(pb.ListThreadsRequest(user_id="ann")).threads) == []
    # what the user says after the erasure is remembered as usual
    prepare(stub, "ann", "ann-after", "k-after")
    assert commit(stub, "ann", "ann-after", "k-after").message_count == 2
    # and a retry of that commit is still the duplicate it is, not refused
    assert commit(stub, "ann", "ann-after", "k-after").duplicate
    # other users are untouched by ann's tombstone
    prepare(stub, "bea", "bea-t", "b1")
    assert commit(stub, "bea", "bea-t", "b1").message_count == 2


def test_writes_are_refused_while_the_erasure_runs(server, redis_url) -> None:
    stub = server.stub()
    k = server.handles.stores.keys
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.hset(k.erasure("cid"), mapping={"state": "running", "started_at_ms": 1})
    prepare(stub, "cid", "cid-t", "k1")
    for call in (
        lambda: commit(stub, "cid", "cid-t", "k1"),
        lambda: stub.SetPreference(pb.SetPreferenceRequest(user_id="cid", key="a", value="b")),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    client.delete(k.erasure("cid"))
    assert commit(stub, "cid", "cid-t", "k1").message_count == 2
    client.close()


def test_the_tombstone_names_no_one_and_shares_the_users_slot(server) -> None:
    from redis.crc import key_slot

    k = server.handles.stores.keys
    for uid in ("alice", "bob@example.com", "x" * 128):
        key = k.erasure(uid)
        assert uid not in key
        assert key_slot(key.encode()) == key_slot(k.thread_index(uid).encode())


def test_chat_in_flight_during_the_erasure_is_not_stored(gateway, fake_anthropic) -> None:
    """The issue's race through the real gateway: chat sent, erasure 1 s later while the
    LLM takes 3 s; after the receipt the answer arrives and nothing of it is stored."""
    fake_anthropic.set_delay(3.0)
    url = gateway.url
    httpx.post(url + "/v1/users/pat/memories", json={"text": "Pat likes tea"}).raise_for_status()
    answers: list[httpx.Response] = []
    sent = threading.Thread(
        target=lambda: answers.append(
            httpx.post(
                url + "/v1/chat",
                json={
                    "prompt": "I am allergic to penicillin",
                    "user_id": "pat",
                    "thread_id": "pat-t1",
                },
                timeout=30,
            )
        )
    )
    sent.start()
    wait_for(lambda: len(fake_anthropic.requests) >= 1, 10, "the chat reached the LLM")
    receipt = httpx.delete(url + "/v1/users/pat", timeout=30)
    assert receipt.status_code == 200 and receipt.json()["pending"] == []
    sent.join(30)
    assert answers and answers[0].status_code == 200
    assert answers[0].json()["committed"] is False
    assert httpx.get(url + "/v1/users/pat/threads").json()["threads"] == []
    assert httpx.get(url + "/v1/users/pat/memories").json()["memories"] == []


def test_vector_store_down_leaves_the_erasure_pending_then_it_completes(
    memory_settings, memory_server_factory, embedder, tmp_path
) -> None:
    from mnemo_memory.longterm import build_longterm

    data = tmp_path / "chroma-data"
    data.mkdir()
    chroma = ChromaServer(data).start()
    try:
        settings = memory_settings(chromadb_url=chroma.url, shortterm={"erasure_resume_s": 0.3})
        lt = build_longterm(settings, embedder=embedder)
        srv = memory_server_factory(settings, longterm=lt)
        stub = srv.stub()
        fill_user(stub, "dan", threads=1)
        for text in ("Dan lives in Oslo", "Dan plays chess"):
            stub.AddMemory(pb.AddMemoryRequest(user_id="dan", text=text))
        keyword_keys = f"{settings.redis.key_prefix}:kw:{{dan}}:*"  # ADR 0024's index
        assert srv.run(lambda h: h.stores.redis.keys(keyword_keys))
        chroma.stop()
        receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id="dan"), timeout=60).receipt
        assert list(receipt.pending) == ["vector_store"]
        assert receipt.counts["threads"] == 1 and receipt.counts["messages"] == 6
        # the tombstone holds: no write of dan's is accepted meanwhile
        with pytest.raises(grpc.RpcError) as caught:
            commit(stub, "dan", "dan-t9", "k9")
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        chroma.start()
        # the service finishes the job by itself once Chroma is back
        wait_for(
            lambda: not srv.run(lambda h: h.stores.redis.zcard(h.stores.keys.pending_erasures())),
            60,
            "the pending erasure completed",
        )
        assert list(stub.ListMemories(pb.ListMemoriesRequest(user_id="dan")).memories) == []
        assert srv.run(lambda h: h.stores.redis.keys(keyword_keys)) == []  # its words too
        # the retry's receipt is the whole job's: threads and facts
        again = stub.ForgetUser(pb.ForgetUserRequest(user_id="dan")).receipt
        assert list(again.pending) == []
        assert again.counts["threads"] == 1 and again.counts["facts"] == 2
        assert again.erased_at_ms == receipt.erased_at_ms
        # and after it, dan is a user like any other again
        prepare(stub, "dan", "dan-t2", "k2")
        assert commit(stub, "dan", "dan-t2", "k2").message_count == 2
    finally:
        chroma.stop()


def test_gateway_answers_202_with_the_pending_store(
    memory_settings, memory_server_factory, gateway_factory, embedder
) -> None:
    """Through the HTTP API: Chroma unreachable → 202 and ``pending``; nothing else lost."""
    from mnemo_common.testing.procs import free_port
    from mnemo_memory.longterm import build_longterm

    settings = memory_settings(chromadb_url=f"http://127.0.0.1:{free_port()}")
    srv = memory_server_factory(settings, longterm=build_longterm(settings, embedder=embedder))
    fill_user(srv.stub(), "n.eve", threads=1)  # the memory id of user eve in auth none
    gw = gateway_factory(srv.address)
    r = httpx.delete(gw.url + "/v1/users/eve", timeout=60)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["pending"] == ["vector_store"] and body["counts"]["threads"] == 1
    assert httpx.get(gw.url + "/v1/users/eve/threads").json()["threads"] == []
