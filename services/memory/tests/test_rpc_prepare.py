"""PrepareTurn (short-term half) and the rate limiter, through gRPC on a real Redis."""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo_common.context import HISTORY_TITLE, render_sections, title_tokens
from mnemo_common.tokens import estimate_message_tokens, estimate_tokens


def commit(stub, n: int, uid: str = "alice", tid: str = "t1", text: str = ""):
    return stub.CommitTurn(
        pb.CommitTurnRequest(
            user_id=uid,
            thread_id=tid,
            idempotency_key=f"key-{n}",
            user_message=text or f"question {n}",
            assistant_message=text or f"answer {n}",
        )
    )


def prepare(stub, **kw):
    body = {"user_id": "alice", "thread_id": "t1", "query": "hello", **kw}
    return stub.PrepareTurn(pb.PrepareTurnRequest(**body))


@pytest.fixture
def server(memory_server_factory, memory_settings):
    return memory_server_factory(memory_settings(rate_limit={"enabled": False}), longterm=None)


def test_new_thread_is_empty_and_marked_new(server) -> None:
    reply = prepare(server.stub(), thread_id="brand-new")
    assert not reply.thread_exists and list(reply.messages) == []
    assert reply.token_budget == server.settings.memory.default_token_budget
    assert reply.context_tokens == 0 and list(reply.degraded) == []


def test_a_committed_idempotency_key_comes_back_as_a_replay(server) -> None:
    stub = server.stub()
    commit(stub, 1)
    commit(stub, 2)
    reply = prepare(stub, idempotency_key="key-1", exclude_history=True)
    assert reply.replay.user_message.content == "question 1"
    assert reply.replay.assistant_message.content == "answer 1"
    assert list(reply.messages) == []  # exclude_history still honoured
    assert not prepare(stub, idempotency_key="key-9").HasField("replay")
    assert not prepare(stub).HasField("replay")
    with pytest.raises(grpc.RpcError) as err:
        prepare(stub, idempotency_key="bad key!")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_history_summary_and_preferences_come_back_together(server, redis_url) -> None:
    import redis

    stub = server.stub()
    for i in range(3):
        commit(stub, i)
    stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="language", value="Python"))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    prefix = server.settings.redis.key_prefix
    client.set(f"{prefix}:u:{{alice}}:t:t1:summary", "They talked about Python.")
    client.close()
    reply = prepare(stub)
    assert reply.thread_exists
    assert [m.content for m in reply.messages][-2:] == ["question 2", "answer 2"]
    assert len(reply.messages) == 6
    assert reply.summary == "They talked about Python."
    assert dict(reply.preferences) == {"language": "Python"}
    assert reply.dropped == pb.DroppedContext()
    assert 0 < reply.context_tokens <= reply.token_budget
    # clients that send their own history get only summary and preferences
    bare = prepare(stub, exclude_history=True)
    assert list(bare.messages) == [] and bare.summary and bare.dropped.messages == 0


def test_budget_keeps_the_newest_messages_and_reports_what_it_dropped(server) -> None:
    stub = server.stub()
    text = "x" * 400  # 100 tokens + overhead per message
    for i in range(10):
        commit(stub, i, text=f"{i}{text}")
    per_message = estimate_message_tokens(f"0{text}")
    budget = title_tokens(HISTORY_TITLE) + per_message * 5 + 3  # the section's title, 5 messages
    reply = prepare(stub, token_budget=budget)
    kept = [m.content[0] for m in reply.messages]
    assert kept == ["7", "8", "8", "9", "9"]  # newest, contiguous, oldest first
    assert reply.dropped.messages == 15
    assert reply.context_tokens <= reply.token_budget == budget


def rendered_tokens(reply) -> int:
    """What the gateway's system prompt spends on the reply's sections (chat/prompt.py)."""
    roles = {pb.ROLE_USER: "user", pb.ROLE_ASSISTANT: "assistant"}
    sections = render_sections(
        reply.summary,
        [(roles[m.role], m.content) for m in reply.messages],
        [sm.memory.text for sm in reply.memories],
        dict(reply.preferences),
    )
    return estimate_tokens("\n\n" + "\n\n".join(sections)) if sections else 0


@pytest.mark.parametrize("budget", [1, 9, 40, 75, 130, 260, 700, 4000])
def test_rendered_context_never_costs_more_than_reported_nor_the_budget(
    server, redis_url, budget
) -> None:
    import redis

    stub = server.stub()
    for i in range(6):
        commit(stub, i, text=f"turn {i} " + "w" * (7 * i))
    for key, value in (("language", "Python"), ("tone", "terse " * 9), ("units", "metric")):
        stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key=key, value=value))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(f"{server.settings.redis.key_prefix}:u:{{alice}}:t:t1:summary", "s " * 61)
    client.close()
    reply = prepare(stub, token_budget=budget)
    assert rendered_tokens(reply) <= reply.context_tokens <= budget
    bare = prepare(stub, token_budget=budget, exclude_history=True)
    assert rendered_tokens(bare) <= bare.context_tokens <= budget


def test_summary_dropped_when_it_does_not_fit(server, redis_url) -> None:
    import redis

    stub = server.stub()
    commit(stub, 1)
    stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="k", value="v" * 500))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(f"{server.settings.redis.key_prefix}:u:{{alice}}:t:t1:summary", "s" * 4000)
    client.close()
    reply = prepare(stub, token_budget=120)
    assert reply.summary == "" and reply.dropped.summary
    assert reply.dropped.preferences == 1 and dict(reply.preferences) == {}
    assert len(reply.messages) == 2  # the recent exchange still fits
    assert reply.context_tokens <= 120


def test_bad_prepare_input(server) -> None:
    stub = server.stub()
    for kw, field in (
        ({"user_id": "no pe"}, "user_id"),
        ({"thread_id": ""}, "thread_id"),
        ({"token_budget": -1}, "token_budget"),
        ({"query": "q" * 40_000}, "query"),
    ):
        with pytest.raises(grpc.RpcError) as err:
            prepare(stub, **kw)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(field)


async def test_rate_limiter_under_parallel_calls_admits_exactly_the_limit(
    memory_server_factory, memory_settings
) -> None:
    server = memory_server_factory(
        memory_settings(rate_limit={"per_minute": 7, "per_hour": 100, "per_day": 1000}),
        longterm=None,
    )
    stub = server.aio_stub()

    async def one():
        try:
            reply = await stub.PrepareTurn(
                pb.PrepareTurnRequest(user_id="alice", thread_id="t1", count_rate_limit=True)
            )
            return ("ok", reply)
        except grpc.aio.AioRpcError as err:
            return (err.code(), err)

    results = await asyncio.gather(*(one() for _ in range(30)))
    admitted = [r for kind, r in results if kind == "ok"]
    refused = [r for kind, r in results if kind != "ok"]
    assert len(admitted) == 7 and len(refused) == 23
    for err in refused:
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        trailing = dict(err.trailing_metadata())
        # the minute bucket's end plus the decay of its 7 requests' weight below 6/7:
        # at most 60 s + 60/7 s (ADR 0004), never 0
        assert 1 <= int(trailing["retry-after"]) <= math.ceil(60 + 60 / 7)
        assert "minute" in err.details()
    windows = {w.window: w for r in admitted for w in r.rate_limits}
    assert windows["minute"].limit == 7 and windows["hour"].limit == 100
    assert min(w.remaining for r in admitted for w in r.rate_limits if w.window == "minute") == 0
    # other users are not affected
    other = await stub.PrepareTurn(
        pb.PrepareTurnRequest(user_id="bob", thread_id="t9", count_rate_limit=True)
    )
    assert {w.window: w.remaining for w in other.rate_limits}["minute"] == 6
    # a preview (count_rate_limit=false) is answered, showing the full window
    preview = await stub.PrepareTurn(pb.PrepareTurnRequest(user_id="alice", thread_id="t1"))
    assert {w.window: w.remaining for w in preview.rate_limits}["minute"] == 0


def test_previews_do_not_count(memory_server_factory, memory_settings) -> None:
    server = memory_server_factory(memory_settings(rate_limit={"per_minute": 2}), longterm=None)
    stub = server.stub()
    for _ in range(5):
        prepare(stub, count_rate_limit=False)
    prepare(stub, count_rate_limit=True)
    reply = prepare(stub, count_rate_limit=True)
    assert {w.window: w.remaining for w in reply.rate_limits}["minute"] == 0
    with pytest.raises(grpc.RpcError) as err:
        prepare(stub, count_rate_limit=True)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_limiter_windows_roll_over(memory_settings, redis_url) -> None:
    """Sliding-window counter semantics, with the clock passed in explicitly."""
    import redis.asyncio as aioredis
    from mnemo_memory.errors import RateLimitedError
    from mnemo_memory.stores.keys import KeyBuilder
    from mnemo_memory.stores.ratelimit import RateLimiter

    settings = memory_settings(rate_limit={"per_minute": 4, "per_hour": 0, "per_day": 0})
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    limiter = RateLimiter(client, KeyBuilder(settings.redis.key_prefix), settings.rate_limit)
    t0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000)  # start of a minute
    for _ in range(4):
        await limiter.check("u", now_ms=t0 + 1000)
    with pytest.raises(RateLimitedError) as err:
        await limiter.check("u", now_ms=t0 + 1000)
    # full until the next minute, then the previous minute's weight must decay below 3/4
    assert err.value.retry_after_s == 59 + 15
    with pytest.raises(RateLimitedError):
        await limiter.check("u", now_ms=t0 + 60_000 + 10_000)
    await limiter.check("u", now_ms=t0 + 60_000 + 15_001)
    await limiter.check("u", now_ms=t0 + 180_000)  # two windows later all is forgotten
    assert await client.hlen(KeyBuilder(settings.redis.key_prefix).rate_limit("u")) <= 2
    await client.aclose()


def test_vector_store_down_degrades_instead_of_failing(
    memory_server_factory, memory_settings
) -> None:
    """Real long-term memory pointed at a Chroma that is not there: PrepareTurn still
    answers with the short-term context and names what is missing."""
    from mnemo_common.testing.procs import free_port

    settings = memory_settings(
        chromadb_url=f"http://127.0.0.1:{free_port()}",
        rate_limit={"enabled": False},
        shortterm={"recall_timeout_s": 1.0},
    )
    server = memory_server_factory(settings)
    stub = server.stub()
    commit(stub, 1)
    # the first call may hit the recall timeout (cold start), later ones fail fast with
    # UnavailableError from the store: both answer with the short-term context
    for _ in range(2):
        reply = prepare(stub, query="what did I say?")
        assert list(reply.degraded) == ["vector_store"]
        assert [m.content for m in reply.messages] == ["question 1", "answer 1"]
        assert list(reply.memories) == []
    # recall switched off for the turn: nothing is degraded
    assert list(prepare(stub, recall=pb.RecallOptions(disabled=True)).degraded) == []
