"""ForgetUser (GDPR erasure with a receipt) and ExportUser (everything, as JSON)."""

from __future__ import annotations

import json

import pytest
import redis
from mnemo.memory.v1 import memory_pb2 as pb
from shortterm_support import all_keys, fill_user


@pytest.fixture
def server(memory_server_factory):
    return memory_server_factory(longterm=None)


def keys_mentioning(keys: dict[str, int], uid: str) -> list[str]:
    return [k for k in keys if "{" + uid + "}" in k]


def test_forget_user_leaves_zero_keys_and_touches_nobody_else(server, redis_url) -> None:
    stub = server.stub()
    prefix = server.settings.redis.key_prefix
    fill_user(stub, "alice")
    fill_user(stub, "bob")
    before = all_keys(redis_url, prefix)
    bob_before = {k: v for k, v in before.items() if "{bob}" in k or ":bob-" in k}
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    bob_values = {k: client.dump(k) for k in bob_before}
    assert keys_mentioning(before, "alice")

    receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id="alice")).receipt
    assert receipt.user_id == "alice" and receipt.erased_at_ms > 0
    counts = dict(receipt.counts)
    assert counts["threads"] == 2 and counts["messages"] == 12
    assert counts["preferences"] == 1 and counts["rate_limit_keys"] == 1
    assert counts["idempotency_keys"] == 6 and counts["jobs"] == 1
    assert counts["other_keys"] == 0  # the index found everything
    assert receipt.total == sum(counts.values())

    after = all_keys(redis_url, prefix)
    assert keys_mentioning(after, "alice") == []
    assert not any(k.startswith(f"{prefix}:t:") for k in after)  # no global thread keys
    assert not any(
        m.startswith("alice:") for m in client.zrange(f"{prefix}:threads:activity", 0, -1)
    )
    jobs = client.xrange(f"{prefix}:jobs")
    assert jobs and all(f["user_id"] == "bob" for _, f in jobs)
    # bob's keys are all still there, byte for byte
    assert {k: client.dump(k) for k in bob_before} == bob_values
    client.close()
    assert len(stub.GetThread(pb.GetThreadRequest(user_id="bob", thread_id="bob-t0")).messages) == 6
    # erasing again finds nothing
    again = stub.ForgetUser(pb.ForgetUserRequest(user_id="alice")).receipt
    assert again.total == 0


def test_scan_fallback_catches_keys_the_index_lost(server, redis_url) -> None:
    stub = server.stub()
    prefix = server.settings.redis.key_prefix
    fill_user(stub, "alice", threads=1)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.delete(f"{prefix}:u:{{alice}}:threads")  # the index is gone
    client.zrem(f"{prefix}:threads:activity", "alice:alice-t0")
    # thread-owner keys of the layout before ADR 0012 (global thread ids) name the user too
    client.set(f"{prefix}:t:alice-t0:owner", "alice", ex=3600)
    client.set(f"{prefix}:t:bob-t0:owner", "bob", ex=3600)
    receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id="alice")).receipt
    assert receipt.counts["other_keys"] >= 4  # messages, meta, idem, legacy owner
    assert keys_mentioning(all_keys(redis_url, prefix), "alice") == []
    assert not client.exists(f"{prefix}:t:alice-t0:owner")
    assert client.get(f"{prefix}:t:bob-t0:owner") == "bob"
    client.close()


def test_export_user_streams_everything_as_json(server) -> None:
    stub = server.stub()
    fill_user(stub, "alice")
    fill_user(stub, "bob", threads=1)
    chunks = list(stub.ExportUser(pb.ExportUserRequest(user_id="alice")))
    docs = [(c.section, json.loads(c.json)) for c in chunks]
    sections = [s for s, _ in docs]
    assert sections == ["user", "thread", "thread", "preferences", "jobs"]
    user = docs[0][1]
    assert user["user_id"] == "alice" and user["threads"] == 2
    threads = {d["thread_id"]: d for s, d in docs if s == "thread"}
    assert set(threads) == {"alice-t0", "alice-t1"}
    msgs = threads["alice-t0"]["messages"]
    assert [m["content"] for m in msgs][:2] == ["alice says 0", "reply 0"]
    assert {"id", "role", "content", "created_at_ms"} <= set(msgs[0])
    assert threads["alice-t1"]["closed"] is True
    assert docs[-2][1]["values"] == {"tone": "formal"}
    jobs = docs[-1][1]
    assert jobs["dead_letters"] == [] and jobs["pending"]  # the extraction job queued for her
    assert all(j["user_id"] == "alice" and "type" in j for j in jobs["pending"])
    assert "bob" not in b"".join(c.json for c in chunks).decode()
