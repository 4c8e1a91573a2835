"""Every key that should expire has a TTL; the job streams and indexes that must not
expire have none."""

from __future__ import annotations

import redis
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo_memory.stores.keys import KeyBuilder
from shortterm_support import all_keys, fill_user


def test_ttls_by_key_kind(memory_server_factory, memory_settings, redis_url) -> None:
    settings = memory_settings(
        memory={"thread_ttl_hours": 2, "user_ttl_days": 3, "extract_every_messages": 2}
    )
    server = memory_server_factory(settings, longterm=None)
    stub = server.stub()
    fill_user(stub, "alice")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set(f"{settings.redis.key_prefix}:u:{{alice}}:t:alice-t0:summary", "s")
    # a summary gets the thread's TTL on the next commit
    stub.CommitTurn(
        pb.CommitTurnRequest(
            user_id="alice",
            thread_id="alice-t0",
            idempotency_key="again",
            user_message="q",
            assistant_message="a",
        )
    )
    client.xadd(
        f"{settings.redis.key_prefix}:jobs:dead",
        {"job_id": "x", "type": "t", "user_id": "alice", "thread_id": "alice-t0"},
    )
    client.close()
    keys = KeyBuilder(settings.redis.key_prefix)
    by_kind: dict[str, list[int]] = {}
    for key, ttl in all_keys(redis_url, settings.redis.key_prefix).items():
        by_kind.setdefault(keys.kind_of(key), []).append(ttl)
    thread_ttl, user_ttl = 2 * 3600, 3 * 86_400
    expected = {
        "messages": thread_ttl,
        "thread_meta": thread_ttl,
        "summaries": thread_ttl,
        "idempotency_keys": thread_ttl,
        "thread_index": thread_ttl,
        "preferences": user_ttl,
        "rate_limit_keys": 2 * 86_400,
    }
    assert set(expected) | {"jobs", "activity_index"} == set(by_kind)
    for kind, ttl in expected.items():
        assert all(ttl - 10 <= t <= ttl for t in by_kind[kind]), (kind, by_kind[kind])
    # never expire: the job stream, the dead-letter stream, the activity index
    assert by_kind["jobs"] == [-1, -1]
    assert by_kind["activity_index"] == [-1]
