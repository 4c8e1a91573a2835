"""Thread RPCs through a real gRPC server on a real Redis."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from mnemo.memory.v1 import memory_pb2 as pb


@pytest.fixture
def server(memory_server_factory):
    return memory_server_factory(longterm=None)


def commit(stub, n: int, uid: str = "alice", tid: str = "t1", **kw):
    return stub.CommitTurn(
        pb.CommitTurnRequest(
            user_id=uid,
            thread_id=tid,
            idempotency_key=f"key-{n}",
            user_message=kw.get("user_message", f"question {n}"),
            assistant_message=kw.get("assistant_message", f"answer {n}"),
            metadata=kw.get("metadata", {}),
        )
    )


def status_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


async def test_concurrent_commit_turns_over_grpc_lose_nothing(server) -> None:
    stub = server.aio_stub()
    replies = await asyncio.gather(
        *(
            stub.CommitTurn(
                pb.CommitTurnRequest(
                    user_id="alice",
                    thread_id="busy",
                    idempotency_key=f"k{i}",
                    user_message=f"q{i}",
                    assistant_message=f"a{i}",
                )
            )
            for i in range(25)
        )
    )
    assert sorted(r.message_count for r in replies) == list(range(2, 51, 2))
    thread = await stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="busy"))
    assert thread.thread.message_count == 50
    assert {m.content for m in thread.messages} == (
        {f"q{i}" for i in range(25)} | {f"a{i}" for i in range(25)}
    )


def test_commit_then_read_back(server) -> None:
    stub = server.stub()
    first = commit(stub, 1, metadata={"model": "claude"})
    assert (first.thread_id, first.duplicate, first.message_count) == ("t1", False, 2)
    assert len(first.message_ids) == 2
    commit(stub, 2)
    reply = stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="t1"))
    assert [m.content for m in reply.messages] == [
        "question 1",
        "answer 1",
        "question 2",
        "answer 2",
    ]
    assert [m.role for m in reply.messages] == [pb.ROLE_USER, pb.ROLE_ASSISTANT] * 2
    assert reply.messages[0].id == first.message_ids[0]
    assert reply.thread.title == "question 1" and reply.thread.user_id == "alice"
    assert reply.thread.expires_at_ms > reply.thread.updated_at_ms >= reply.thread.created_at_ms
    newest = stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="t1", limit=1))
    assert [m.content for m in newest.messages] == ["answer 2"]


def test_replayed_commit_returns_the_original_and_stores_nothing(server) -> None:
    stub = server.stub()
    first = commit(stub, 7)
    again = commit(stub, 7, user_message="changed on retry")
    assert again.duplicate and again.message_ids == first.message_ids
    assert again.message_count == 2 and list(again.enqueued_jobs) == []
    reply = stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="t1"))
    assert [m.content for m in reply.messages] == ["question 7", "answer 7"]


def test_another_users_thread_answers_exactly_like_a_missing_one(server) -> None:
    """Thread ids are names within a user: bob asking for alice's `private` gets the
    same status and the same message as for a thread nobody has, on every thread RPC."""
    stub = server.stub()
    commit(stub, 1, uid="alice", tid="private")

    def answers(uid: str, tid: str) -> list[tuple[grpc.StatusCode, str]]:
        return [
            status_of(lambda: stub.GetThread(pb.GetThreadRequest(user_id=uid, thread_id=tid))),
            status_of(
                lambda: stub.DeleteThread(pb.DeleteThreadRequest(user_id=uid, thread_id=tid))
            ),
            status_of(lambda: stub.CloseThread(pb.CloseThreadRequest(user_id=uid, thread_id=tid))),
        ]

    foreign = answers("bob", "private")
    assert {code for code, _ in foreign} == {grpc.StatusCode.NOT_FOUND}
    assert [d.replace("private", "X") for _, d in foreign] == [
        d.replace("never-made", "X") for _, d in answers("bob", "never-made")
    ]
    prepared = stub.PrepareTurn(pb.PrepareTurnRequest(user_id="bob", thread_id="private"))
    assert not prepared.thread_exists and not prepared.messages
    # bob may use the same name: his own thread, alice's untouched
    assert commit(stub, 2, uid="bob", tid="private").message_count == 2
    assert not stub.PrepareTurn(
        pb.PrepareTurnRequest(user_id="bob", thread_id="private", idempotency_key="key-1")
    ).HasField("replay")
    reply = stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="private"))
    assert [m.content for m in reply.messages] == ["question 1", "answer 1"]
    reply = stub.GetThread(pb.GetThreadRequest(user_id="bob", thread_id="private"))
    assert [m.content for m in reply.messages] == ["question 2", "answer 2"]
    listed = stub.ListThreads(pb.ListThreadsRequest(user_id="bob")).threads
    assert [(t.thread_id, t.user_id) for t in listed] == [("private", "bob")]


@pytest.mark.parametrize(
    ("field", "request_kw"),
    [
        ("user_id", {"user_id": "a:b"}),
        ("user_id", {"user_id": "*"}),
        ("user_id", {"user_id": ""}),
        ("thread_id", {"thread_id": "has space"}),
        ("thread_id", {"thread_id": "ctl\x01"}),
        ("thread_id", {"thread_id": "t" * 129}),
        ("idempotency_key", {"idempotency_key": "k\x00"}),
        ("idempotency_key", {"idempotency_key": ""}),
        ("user_message", {"user_message": "x" * 40_000}),
        ("user_message", {"user_message": ""}),
        ("assistant_message", {"assistant_message": "é" * 20_000}),
        ("assistant_message", {"assistant_message": "nul\x00inside"}),
        ("metadata", {"metadata": {"bad key": "v"}}),
    ],
)
def test_bad_input_is_invalid_argument_naming_the_field(server, field, request_kw) -> None:
    stub = server.stub()
    body = {
        "user_id": "alice",
        "thread_id": "t1",
        "idempotency_key": "k1",
        "user_message": "hi",
        "assistant_message": "hello",
        **request_kw,
    }
    code, details = status_of(lambda: stub.CommitTurn(pb.CommitTurnRequest(**body)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(field)
    # nothing was stored
    assert stub.ListThreads(pb.ListThreadsRequest(user_id="alice")).threads == []


def test_invalid_utf8_on_the_wire_is_invalid_argument_naming_the_field(server) -> None:
    """protobuf clients cannot even encode lone surrogates; a raw client can send bad
    bytes, which the server refuses instead of failing with INTERNAL."""
    with pytest.raises(UnicodeEncodeError):
        pb.CommitTurnRequest(user_message="\ud800").SerializeToString()
    raw = pb.CommitTurnRequest(
        user_id="alice",
        thread_id="t1",
        idempotency_key="k1",
        user_message="PLACEHOLDER",
        assistant_message="ok",
    ).SerializeToString()
    raw = raw.replace(b"PLACEHOLDER", b"bad\xff\xfe\xc3(xyz")
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(
            "/mnemo.memory.v1.MemoryService/CommitTurn",
            request_serializer=None,
            response_deserializer=pb.CommitTurnResponse.FromString,
        )
        code, details = status_of(lambda: call(raw))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "user_message: is not valid UTF-8"
    # nested field
    raw = (
        pb.PrepareTurnRequest(
            user_id="a",
            thread_id="t",
            recall=pb.RecallOptions(filter=pb.MemoryFilter(thread_id="ZZZZ")),
        )
        .SerializeToString()
        .replace(b"ZZZZ", b"\xff\xff\xff\xff")
    )
    with grpc.insecure_channel(server.address) as channel:
        call = channel.unary_unary(
            "/mnemo.memory.v1.MemoryService/PrepareTurn",
            request_serializer=None,
            response_deserializer=pb.PrepareTurnResponse.FromString,
        )
        code, details = status_of(lambda: call(raw))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("recall.filter.thread_id")


def test_list_threads_most_recent_first_with_pages(server) -> None:
    stub = server.stub()
    for i in range(7):
        commit(stub, i, tid=f"thread-{i}")
    commit(stub, 100, tid="thread-2")  # most recent activity
    seen, token = [], ""
    while True:
        page = stub.ListThreads(
            pb.ListThreadsRequest(user_id="alice", page_size=3, page_token=token)
        )
        assert len(page.threads) <= 3
        seen += [t.thread_id for t in page.threads]
        token = page.next_page_token
        if not token:
            break
    assert seen[0] == "thread-2"
    assert sorted(seen) == sorted(f"thread-{i}" for i in range(7)) and len(seen) == 7
    assert stub.ListThreads(pb.ListThreadsRequest(user_id="nobody")).threads == []
    import base64

    forged = [
        base64.urlsafe_b64encode(raw.encode()).decode()
        for raw in ("nan:0", "inf:0", "1e400:0", "5:-1", "5:99999999999999999999")
    ]
    for bad in ["garbage!", *forged]:
        code, details = status_of(
            lambda bad=bad: stub.ListThreads(pb.ListThreadsRequest(user_id="alice", page_token=bad))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("page_token"), bad


def test_delete_thread_removes_data_and_index(server) -> None:
    stub = server.stub()
    commit(stub, 1, tid="gone")
    commit(stub, 2, tid="gone")
    commit(stub, 3, tid="kept")
    reply = stub.DeleteThread(pb.DeleteThreadRequest(user_id="alice", thread_id="gone"))
    assert reply.deleted and reply.messages_deleted == 4
    listed = [t.thread_id for t in stub.ListThreads(pb.ListThreadsRequest(user_id="alice")).threads]
    assert listed == ["kept"]
    assert (
        status_of(lambda: stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="gone")))[0]
        == grpc.StatusCode.NOT_FOUND
    )
    # the id is free again: anyone may start a new thread with it
    assert commit(stub, 9, uid="bob", tid="gone").message_count == 2


def test_close_thread_enqueues_an_episode_job(server, redis_url) -> None:
    import redis

    stub = server.stub()
    commit(stub, 1, tid="done")
    assert stub.CloseThread(
        pb.CloseThreadRequest(user_id="alice", thread_id="done")
    ).episode_enqueued
    info = stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="done")).thread
    assert info.closed
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    jobs = client.xrange(f"{server.settings.redis.key_prefix}:jobs")
    client.close()
    assert [(f["type"], f["thread_id"], f["reason"]) for _, f in jobs] == [
        ("create_episode", "done", "closed")
    ]
