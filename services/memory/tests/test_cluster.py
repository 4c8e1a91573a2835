"""The memory service on a real local Redis Cluster (3 masters + 3 replicas, made by the
``redis_cluster`` fixture): the chat path, erasure, export and stats, and a master killed
in the middle of a commit run (zero lost jobs, erasure complete afterwards)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo_common.testing.procs import wait_for
from mnemo_memory.stores.keys import KeyBuilder
from mnemo_memory.stores.thread_models import message_ids_for
from shortterm_support import fill_user

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster_server(redis_cluster, memory_server_factory, memory_settings):
    settings = memory_settings(
        redis_url=redis_cluster.url,
        memory={"extract_every_messages": 2},
        shortterm={"outbox_sweep_s": 0.5},
    )
    return memory_server_factory(settings)


def prefix_of(server) -> str:
    return str(server.settings.redis.key_prefix)


def user_keys(cluster, server, uid: str) -> list[str]:
    return cluster.keys(f"{prefix_of(server)}:u:{{{uid}}}:*")


def commit(stub, uid: str, tid: str, key: str, text: str = "hello", timeout: float = 10):
    return stub.CommitTurn(
        pb.CommitTurnRequest(
            user_id=uid,
            thread_id=tid,
            idempotency_key=key,
            user_message=f"{uid} {text}",
            assistant_message=f"reply to {uid}",
        ),
        timeout=timeout,
    )


def stream_jobs(cluster, server) -> list[dict[str, str]]:
    client = cluster.client()
    try:
        return [fields for _, fields in client.xrange(f"{prefix_of(server)}:jobs")]
    finally:
        client.close()


def test_chat_path_on_cluster(redis_cluster, cluster_server) -> None:
    """Users spread over the three masters; two of them use the same thread name."""
    stub = cluster_server.stub()
    users = [f"user{i}" for i in range(12)]
    masters = {
        redis_cluster.master_of(f"{prefix_of(cluster_server)}:u:{{{u}}}").port for u in users
    }
    assert len(masters) == 3  # the run really crosses nodes
    with ThreadPoolExecutor(6) as pool:
        replies = list(
            pool.map(
                lambda a: commit(stub, a[0], "trip-planning", f"k{a[1]}"),
                [(u, i) for u in users for i in range(3)],
            )
        )
    assert not any(r.duplicate for r in replies)
    for u in users:
        thread = stub.GetThread(pb.GetThreadRequest(user_id=u, thread_id="trip-planning"))
        assert [m.content for m in thread.messages if m.role == pb.ROLE_USER] == [f"{u} hello"] * 3
    again = commit(stub, "user0", "trip-planning", "k0")
    assert again.duplicate
    prepared = stub.PrepareTurn(
        pb.PrepareTurnRequest(user_id="user1", thread_id="trip-planning", idempotency_key="k1")
    )
    assert prepared.thread_exists and prepared.replay.assistant_message.content == "reply to user1"
    # every turn's extraction job reached the stream (relayed from the users' outboxes)
    expected = {message_ids_for("trip-planning", f"k{i}")[1] for i in range(3)}
    wait_for(
        lambda: not redis_cluster.keys(f"{prefix_of(cluster_server)}:u:*:outbox"),
        10,
        "outboxes relayed",
    )
    jobs = [j for j in stream_jobs(redis_cluster, cluster_server) if j["type"] == "extract_facts"]
    assert {(j["user_id"], j["upto_message_id"]) for j in jobs} == {
        (u, mid) for u in users for mid in expected
    }
    # thread names are per user: deleting user0's leaves user1's
    stub.DeleteThread(pb.DeleteThreadRequest(user_id="user0", thread_id="trip-planning"))
    with pytest.raises(grpc.RpcError) as err:
        stub.GetThread(pb.GetThreadRequest(user_id="user0", thread_id="trip-planning"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert stub.ListThreads(pb.ListThreadsRequest(user_id="user1")).threads[0].message_count == 6


def test_erasure_and_export_on_cluster(redis_cluster, cluster_server) -> None:
    stub = cluster_server.stub()
    prefix = prefix_of(cluster_server)
    fill_user(stub, "alice")
    fill_user(stub, "bob")
    fact = stub.AddMemory(pb.AddMemoryRequest(user_id="alice", text="Alice keeps bees"))
    stub.AddMemory(pb.AddMemoryRequest(user_id="bob", text="Bob keeps goats"))
    # an owner key of the layout before ADR 0012, in a slot of its own
    client = redis_cluster.client()
    client.set(f"{prefix}:t:alice-t9:owner", "alice", ex=600)
    client.set(f"{prefix}:t:bob-t9:owner", "bob", ex=600)

    docs = [
        (c.section, json.loads(c.json))
        for c in stub.ExportUser(pb.ExportUserRequest(user_id="alice"))
    ]
    sections = [s for s, _ in docs]
    assert sections.count("thread") == 2 and "preferences" in sections and "jobs" in sections
    assert any(d.get("id") == fact.id for s, d in docs if s == "memory") or fact.id in json.dumps(
        docs
    )
    assert "bob" not in json.dumps(docs)

    receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id="alice")).receipt
    counts = dict(receipt.counts)
    assert counts["threads"] == 2 and counts["messages"] == 12 and counts["preferences"] == 1
    assert counts.get("facts", 0) >= 1  # long-term memory erased too
    assert counts["other_keys"] >= 1  # the legacy owner key
    assert user_keys(redis_cluster, cluster_server, "alice") == []
    assert client.get(f"{prefix}:t:alice-t9:owner") is None
    assert client.get(f"{prefix}:t:bob-t9:owner") == "bob"
    assert not stub.ListMemories(pb.ListMemoriesRequest(user_id="alice")).memories
    assert all(j["user_id"] != "alice" for j in stream_jobs(redis_cluster, cluster_server))
    client.close()
    # bob is intact
    assert stub.ListMemories(pb.ListMemoriesRequest(user_id="bob")).memories
    assert len(stub.GetThread(pb.GetThreadRequest(user_id="bob", thread_id="bob-t0")).messages) == 6
    assert (
        stub.ForgetUser(pb.ForgetUserRequest(user_id="alice")).receipt.counts.get("threads", 0) == 0
    )


def test_stats_count_every_node(redis_cluster, cluster_server) -> None:
    stub = cluster_server.stub()
    users = [f"s{i}" for i in range(9)]
    for u in users:
        fill_user(stub, u, threads=1, turns=2)
    prefix = prefix_of(cluster_server)
    stats = stub.GetStats(pb.GetStatsRequest(user_id="s3"))
    keys = KeyBuilder(prefix)
    actual: dict[str, int] = {}
    for key in redis_cluster.keys(f"{prefix}:*"):
        kind = keys.kind_of(key)
        actual[kind] = actual.get(kind, 0) + 1
    by_kind = dict(stats.keys_by_kind)
    for kind in ("messages", "thread_meta", "preferences", "thread_index"):
        assert by_kind[kind] == actual[kind] == len(users), kind
    per_node = []
    import redis

    for node in redis_cluster.nodes[:3]:
        c = redis.Redis(port=node.port)
        per_node.append(int(c.info("memory")["used_memory"]))
        c.close()
    assert stats.redis_used_memory_bytes > max(per_node)  # the primaries' sum, not one node
    assert stats.user.threads == 1 and stats.user.messages == 4 and stats.user.preferences == 1


def _turn_with_retries(stub, uid: str, tid: str, key: str, deadline: float) -> str:
    """What the gateway and a client's retry do: commit; after a failure, PrepareTurn with
    the same idempotency key (a replay means it was stored), else commit again."""
    while True:
        try:
            commit(stub, uid, tid, key, timeout=8)
            return "committed"
        except grpc.RpcError:
            pass
        while time.monotonic() < deadline:
            try:
                prepared = stub.PrepareTurn(
                    pb.PrepareTurnRequest(user_id=uid, thread_id=tid, idempotency_key=key),
                    timeout=8,
                )
                if prepared.HasField("replay"):
                    return "replayed"
                break
            except grpc.RpcError:
                time.sleep(0.1)  # poll the service until the cluster answers again
        if time.monotonic() > deadline:
            raise TimeoutError(f"turn {uid}/{key} not stored before the deadline")


def test_master_killed_mid_run_loses_no_job(
    fresh_redis_cluster, memory_server_factory, memory_settings
) -> None:
    cluster = fresh_redis_cluster
    settings = memory_settings(
        redis_url=cluster.url,
        # a replica on this busy test machine may need more than the default 500 ms
        redis={"cluster_wait_timeout_ms": 1500},
        memory={"extract_every_messages": 2},
        shortterm={"outbox_sweep_s": 0.5},
    )
    server = memory_server_factory(settings, longterm=None)
    stub = server.stub()
    prefix = prefix_of(server)
    users = [f"u{i}" for i in range(9)]
    turns = 12
    victim = cluster.master_of(f"{prefix}:jobs")  # holds the stream and some users' slots
    deadline = time.monotonic() + 60
    done: list[tuple[str, str]] = []
    outcomes: list[str] = []

    log: dict[tuple[str, str], tuple[str, float]] = {}

    def run_user(uid: str) -> None:
        for i in range(turns):
            outcome = _turn_with_retries(stub, uid, "chat", f"k{i}", deadline)
            log[(uid, f"k{i}")] = (outcome, time.monotonic())
            outcomes.append(outcome)
            done.append((uid, f"k{i}"))

    with ThreadPoolExecutor(len(users)) as pool:
        futures = [pool.submit(run_user, u) for u in users]
        wait_for(lambda: len(done) >= len(users) * 3, 30, "the first commits")
        killed_at = time.monotonic()
        cluster.kill(victim)
        failover_s = cluster.wait_failover(victim)
        for f in futures:
            f.result()
    assert len(done) == len(users) * turns
    # every acknowledged turn is stored, exactly once
    lost = []
    for uid in users:
        thread = stub.GetThread(pb.GetThreadRequest(user_id=uid, thread_id="chat"))
        ids = [m.id for m in thread.messages]
        assert len(ids) == len(set(ids))
        for i in range(turns):
            if message_ids_for("chat", f"k{i}")[1] not in ids:
                outcome, at = log[(uid, f"k{i}")]
                lost.append((uid, f"k{i}", outcome, f"{at - killed_at:+.2f}s after the kill"))
    assert lost == [], f"acknowledged turns lost (victim :{victim.port}): {lost}"
    # ... and every turn's extraction job reached the stream (relays retried by the next
    # call of the user or the sweep) — none lost
    want = {(uid, message_ids_for("chat", f"k{i}")[1]) for uid in users for i in range(turns)}

    def delivered() -> set[tuple[str, str]]:
        jobs = stream_jobs(cluster, server)
        return {(j["user_id"], j["upto_message_id"]) for j in jobs if j["type"] == "extract_facts"}

    wait_for(lambda: delivered() >= want, 20, "every extraction job in the stream")
    assert delivered() == want
    wait_for(lambda: not cluster.keys(f"{prefix}:u:*:outbox"), 10, "outboxes empty")
    # erasure after the fail-over is complete
    receipt = stub.ForgetUser(pb.ForgetUserRequest(user_id="u0")).receipt
    assert receipt.counts["threads"] == 1 and receipt.counts["messages"] == 2 * turns
    assert user_keys(cluster, server, "u0") == []
    assert all(j["user_id"] != "u0" for j in stream_jobs(cluster, server))
    print(f"fail-over {failover_s:.1f}s; outcomes {sorted(set(outcomes))}")
