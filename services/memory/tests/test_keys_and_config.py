"""Key hygiene, Cluster hash tags, Redis URL forms and settings of the memory service."""

from __future__ import annotations

import pytest
from mnemo_memory.config import MemoryServiceSettings, build_settings
from mnemo_memory.errors import InvalidArgumentError
from mnemo_memory.stores.keys import KeyBuilder
from mnemo_memory.stores.redis_client import create_redis, parse_redis_url, target_from_settings
from redis.crc import key_slot

BAD_IDS = ["a:b", "a*", "two words", "tab\tid", "nl\nid", "nul\x00id", "x" * 129, "", "é", "a{b}"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_every_key_refuses_ids_that_could_escape_their_namespace(bad: str) -> None:
    keys = KeyBuilder("mnemo")
    with pytest.raises(InvalidArgumentError) as err:
        keys.messages(bad, "t1")
    assert err.value.field == "user_id"
    with pytest.raises(InvalidArgumentError) as err:
        keys.meta("u", bad)
    assert err.value.field == "thread_id"


def test_all_keys_of_one_user_share_one_cluster_slot() -> None:
    keys = KeyBuilder("mnemo")
    user_keys = keys.user_keys("alice")
    for tid in ("t1", "thread-2", "x.y_z"):
        user_keys += keys.thread_keys("alice", tid)
    slots = {key_slot(k.encode()) for k in user_keys}
    assert slots == {key_slot(b"alice")}
    # another user lands elsewhere (for these ids), so users spread over the cluster
    assert key_slot(keys.preferences("bob").encode()) != key_slot(b"alice")
    assert all(k.startswith("mnemo:u:{alice}:") for k in user_keys)


def test_key_kinds_cover_every_key_the_service_writes() -> None:
    keys = KeyBuilder("p")
    kinds = {keys.kind_of(k) for k in keys.thread_keys("u", "t") + keys.user_keys("u")}
    assert kinds == {
        "messages",
        "thread_meta",
        "summaries",
        "idempotency_keys",
        "thread_index",
        "preferences",
        "rate_limit_keys",
        "job_outbox",
        "inflight_turns",
    }
    assert keys.user_of_key(keys.outbox("a.b@c")) == "a.b@c"
    assert keys.user_of_key(keys.jobs()) is None
    # owner keys of the layout before ADR 0012 are no kind of today's (they expire)
    assert keys.kind_of("p:t:t1:owner") == "other"
    assert keys.kind_of(keys.erasure("u")) == "erasure_markers"
    assert keys.kind_of(keys.pending_erasures()) == "erasure_markers"
    assert keys.kind_of(keys.jobs()) == keys.kind_of(keys.dead_letters()) == "jobs"
    assert keys.kind_of("other:thing") == "foreign"


def test_url_forms() -> None:
    t = parse_redis_url("redis://:s3cret@db.local:6380/2")
    assert (t.mode, t.hosts, t.password, t.db, t.tls) == (
        "standalone",
        [("db.local", 6380)],
        "s3cret",
        2,
        False,
    )
    t = parse_redis_url("rediss://app:p%40ss@db:6379/0?ssl_ca_certs=/ca.pem")
    assert (t.username, t.password, t.tls, t.tls_ca_file) == ("app", "p@ss", True, "/ca.pem")
    t = parse_redis_url("redis+sentinel://:pw@s1:26379,s2,[::1]:26380/mymaster/3")
    assert t.mode == "sentinel" and t.service_name == "mymaster" and t.db == 3
    assert t.hosts == [("s1", 26379), ("s2", 26379), ("::1", 26380)]
    t = parse_redis_url("redis+sentinel://s1", sentinel_master="primary")
    assert t.service_name == "primary" and t.cross_slot_ok
    t = parse_redis_url("redis+cluster://n1:7000,n2:7001")
    assert t.mode == "cluster" and not t.cross_slot_ok and len(t.hosts) == 2
    for bad in ("http://x", "redis://a:1,b:2", "redis+cluster://n1/3", "nourl"):
        with pytest.raises(ValueError):
            parse_redis_url(bad)


async def test_clients_are_built_for_each_mode_without_connecting() -> None:
    from redis.asyncio.cluster import RedisCluster

    for url, kind in (
        ("redis://127.0.0.1:1/0", "Redis"),
        ("redis+sentinel://127.0.0.1:1/m", "Redis"),
        ("rediss://127.0.0.1:1/0", "Redis"),
    ):
        client = create_redis(build_settings(redis_url=url))
        assert type(client).__name__ == kind
        await client.aclose()
    cluster = create_redis(build_settings(redis_url="redis+cluster://127.0.0.1:1"))
    assert isinstance(cluster, RedisCluster)


def test_settings_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER__GRPC_PORT", "6000")
    monkeypatch.setenv("SERVER__REFLECTION", "false")
    monkeypatch.setenv("REDIS__HOST", "redis.svc")
    monkeypatch.setenv("REDIS__PASSWORD", "pw")
    monkeypatch.setenv("REDIS__TLS", "true")
    monkeypatch.setenv("MEMORY__MAX_THREAD_MESSAGES", "20")
    monkeypatch.delenv("REDIS_URL", raising=False)
    s = MemoryServiceSettings()
    assert s.server.grpc_port == 6000 and s.server.reflection is False
    assert s.server.metrics_port == 9464 and s.server.grace_s == 10
    assert s.worker.metrics_port == 9465
    t = target_from_settings(s)
    assert (t.hosts, t.password, t.tls) == ([("redis.svc", 6379)], "pw", True)
    assert s.memory.max_thread_messages == 20


async def test_the_redis_vector_store_client_follows_the_redis_settings(
    redisearch_server,
) -> None:
    """VECTOR__BACKEND=redis: its own (binary) client, with the REDIS__* timeouts, pool
    size and TLS CA of every other client, not a client of its own defaults."""
    from mnemo_memory.embed import ModelInfo
    from mnemo_memory.stores.vector import RedisVectorStore, build_vector_store

    model = ModelInfo("all-MiniLM-L6-v2", 384)
    settings = build_settings(
        redis_url=redisearch_server.url,
        redis={"key_prefix": "vs-settings", "socket_timeout_s": 0.7, "max_connections": 3},
        vector={"backend": "redis"},
    )
    store = build_vector_store(settings, model)
    assert isinstance(store, RedisVectorStore)
    pool = store.redis.connection_pool
    assert pool.max_connections == 3
    assert pool.connection_kwargs["socket_timeout"] == 0.7
    assert pool.connection_kwargs["decode_responses"] is False
    try:
        await store.open()  # a real round trip: the index is created, binary replies
        assert (await store.count(None)).get("total", 0) == 0
    finally:
        await store.aclose()

    tls = build_settings(
        redis_url="rediss://127.0.0.1:1/0",
        redis={"tls_ca_file": "/etc/mnemo/redis-ca.pem"},
        vector={"backend": "redis"},
    )
    store = build_vector_store(tls, model)
    assert (
        store.redis.connection_pool.connection_kwargs["ssl_ca_certs"] == "/etc/mnemo/redis-ca.pem"
    )
    await store.aclose()
