"""Server plumbing: reflection, request ids, INTERNAL mapping, GetStats and the gauges."""

from __future__ import annotations

import grpc
import pytest
import redis
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo_common.metrics import render_latest
from shortterm_support import fill_user


@pytest.fixture
def server(memory_server_factory, memory_settings):
    # reflection is off by default (test_exposure.py); these tests ask for it
    return memory_server_factory(memory_settings(server={"reflection": True}), longterm=None)


def test_reflection_lists_the_services(server) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    with grpc.insecure_channel(server.address) as channel:
        names = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"mnemo.memory.v1.MemoryService", "grpc.health.v1.Health"} <= names


def test_request_id_is_echoed_and_generated(server) -> None:
    stub = server.stub()
    _, call = stub.GetPreferences.with_call(
        pb.GetPreferencesRequest(user_id="alice"), metadata=(("x-request-id", "req-42"),)
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "req-42"
    _, call = stub.GetPreferences.with_call(pb.GetPreferencesRequest(user_id="alice"))
    assert len(dict(call.trailing_metadata())["x-request-id"]) == 32
    with pytest.raises(grpc.RpcError) as err:
        stub.GetThread(
            pb.GetThreadRequest(user_id="alice", thread_id="nope"),
            metadata=(("x-request-id", "req-43"),),
        )
    assert dict(err.value.trailing_metadata())["x-request-id"] == "req-43"


def test_every_service_is_registered_with_the_error_mapping(server) -> None:
    """The mapping is wrapped around the handlers at registration (ADR 0031), not run as a
    per-call interceptor: the health service, the memory service and what a request that
    fails to parse gets all come through it (request id, metrics, INVALID_ARGUMENT)."""
    from grpc_health.v1 import health_pb2
    from mnemo_memory.interceptors import RPC_SECONDS

    _, call = server.health_stub().Check.with_call(
        health_pb2.HealthCheckRequest(service=""), metadata=(("x-request-id", "req-h"),)
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "req-h"
    before = RPC_SECONDS.labels("GetPreferences", "OK")._sum.get()
    server.stub().GetPreferences(pb.GetPreferencesRequest(user_id="alice"))
    assert RPC_SECONDS.labels("GetPreferences", "OK")._sum.get() > before
    with grpc.insecure_channel(server.address) as channel:
        bad = channel.unary_unary(
            "/mnemo.memory.v1.MemoryService/PrepareTurn",
            request_serializer=lambda raw: raw,
            response_deserializer=pb.PrepareTurnResponse.FromString,
        )
        user_id = pb.PrepareTurnRequest.DESCRIPTOR.fields_by_name["user_id"].number
        with pytest.raises(grpc.RpcError) as err:
            bad(bytes([user_id << 3 | 2, 2, 0xFF, 0xFE]), metadata=(("x-request-id", "req-u"),))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "user_id" in err.value.details()
    assert dict(err.value.trailing_metadata())["x-request-id"] == "req-u"


def test_no_interceptor_runs_per_call_without_an_auth_token(
    memory_server_factory, memory_settings, monkeypatch
) -> None:
    """grpc.aio runs interceptors as a coroutine chain on every RPC (ADR 0031): only the
    opt-in token check is one; the error mapping is wrapped around the handlers."""
    import grpc.aio
    from mnemo_memory.interceptors import TokenAuthInterceptor

    made: list = []
    real = grpc.aio.server

    def recording(*args, **kwargs):
        made.append(list(kwargs.get("interceptors") or ()))
        return real(*args, **kwargs)

    monkeypatch.setattr(grpc.aio, "server", recording)
    plain = memory_server_factory(memory_settings(), longterm=None)
    assert plain.stub().GetPreferences(pb.GetPreferencesRequest(user_id="a")).values == {}
    memory_server_factory(memory_settings(server={"auth_token": "s3cret"}), longterm=None)
    assert made[0] == []
    assert [type(i) for i in made[1]] == [TokenAuthInterceptor]


def test_unexpected_errors_are_internal_with_the_request_id(server, redis_url, caplog) -> None:
    stub = server.stub()
    fill_user(stub, "alice", threads=1, turns=1)
    client = redis.Redis.from_url(redis_url)
    client.rpush(f"{server.settings.redis.key_prefix}:u:{{alice}}:t:alice-t0:messages", b"not json")
    client.close()
    with pytest.raises(grpc.RpcError) as err:
        stub.GetThread(
            pb.GetThreadRequest(user_id="alice", thread_id="alice-t0"),
            metadata=(("x-request-id", "req-boom"),),
        )
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == "internal error (request id req-boom)"
    assert "not json" not in err.value.details()
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error in GetThread"]
    assert logged and logged[0].exc_info is not None


def test_json_log_lines_carry_the_request_id(capsys) -> None:
    import json
    import logging

    from mnemo_common.logging import JsonFormatter, request_id_var

    token = request_id_var.set("req-7")
    try:
        line = JsonFormatter("mnemo-memory").format(
            logging.LogRecord(
                "mnemo_memory.interceptors", logging.WARNING, __file__, 1, "x", None, None
            )
        )
    finally:
        request_id_var.reset(token)
    assert json.loads(line)["request_id"] == "req-7"


def test_get_stats_and_gauges(server) -> None:
    stub = server.stub()
    fill_user(stub, "alice")
    fill_user(stub, "bob", threads=1)
    stats = stub.GetStats(pb.GetStatsRequest(user_id="alice"))
    assert stats.redis_used_memory_bytes > 0
    kinds = dict(stats.keys_by_kind)
    assert kinds["messages"] == 3 and kinds["thread_meta"] == 3
    assert kinds["preferences"] == 2 and kinds["rate_limit_keys"] == 2
    assert kinds["jobs"] == 1 and stats.job_stream_length == 1 and stats.job_pending == 0
    assert stats.dead_letter_length == 0
    assert stats.user.threads == 2 and stats.user.messages == 12
    assert stats.user.preferences == 1 and stats.user.approx_bytes > 500
    glob = stub.GetStats(pb.GetStatsRequest())
    assert not glob.HasField("user")
    text = render_latest()[0].decode()
    assert 'mnemo_memory_redis_keys{kind="messages"} 3.0' in text
    assert "mnemo_memory_redis_used_memory_bytes" in text
    assert "mnemo_memory_jobs_stream_length 1.0" in text
    assert 'mnemo_memory_redis_key_bytes{kind="messages"}' in text
    assert 'mnemo_memory_rpc_duration_seconds_count{code="OK",method="GetStats"}' in text
    with pytest.raises(grpc.RpcError) as err:
        stub.GetStats(pb.GetStatsRequest(user_id="a b"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_user_stats_do_not_count_expired_threads(server, redis_url) -> None:
    import redis

    stub = server.stub()
    fill_user(stub, "alice")
    before = stub.GetStats(pb.GetStatsRequest(user_id="alice")).user
    # one thread's keys expire (its TTL); the user's thread index still lists it
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    prefix = server.settings.redis.key_prefix
    tid = client.zrange(f"{prefix}:u:{{alice}}:threads", 0, 0)[0]
    for key in client.scan_iter(f"{prefix}:u:{{alice}}:t:{tid}:*"):
        client.delete(key)
    client.close()
    after = stub.GetStats(pb.GetStatsRequest(user_id="alice")).user
    assert after.threads == before.threads - 1


def test_metrics_port_of_the_process(memory_process, memory_settings) -> None:
    import urllib.request

    from mnemo_common.testing.procs import free_port, wait_for

    port = free_port()
    proc = memory_process(memory_settings(), env={"SERVER__METRICS_PORT": str(port)}).start()
    body = {}

    def scrape() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            body["text"] = r.read().decode()
        return "mnemo_memory_redis_up 1.0" in body["text"]

    wait_for(scrape, 10, "metrics")
    assert "mnemo_memory_redis_used_memory_bytes" in body["text"]
    proc.stop()
