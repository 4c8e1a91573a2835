"""Exposure (issue 11): a shared bearer token guards every RPC but health; reflection is
off unless asked for; gRPC and metrics bind loopback unless told otherwise."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo.memory.v1 import memory_pb2_grpc
from mnemo_common import metrics
from mnemo_common.testing.procs import free_port
from mnemo_memory.config import build_settings

TOKEN = "a-long-shared-token-0123456789"


def reflect(channel: grpc.Channel, metadata=()) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
        metadata=metadata,
        timeout=5,
    )
    return [s.name for r in replies for s in r.list_services_response.service]


@pytest.fixture
def guarded(memory_server_factory, memory_settings):
    settings = memory_settings(server={"auth_token": TOKEN, "reflection": True})
    return memory_server_factory(settings, longterm=None)


def test_every_rpc_but_health_needs_the_token(guarded):
    with grpc.insecure_channel(guarded.address) as channel:
        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        req = pb.GetPreferencesRequest(user_id="u1")
        for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)):
            with pytest.raises(grpc.RpcError) as err:
                stub.GetPreferences(req, metadata=metadata, timeout=5)
            assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # a server-streaming RPC and reflection are guarded too
        with pytest.raises(grpc.RpcError) as err:
            list(stub.ExportUser(pb.ExportUserRequest(user_id="u1"), timeout=5))
        assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            reflect(channel)
        assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        good = (("authorization", f"Bearer {TOKEN}"),)
        assert dict(stub.GetPreferences(req, metadata=good, timeout=5).values) == {}
        assert "mnemo.memory.v1.MemoryService" in reflect(channel, good)
        # kubelet's gRPC probe sends no token: health stays open
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_is_off_by_default(memory_server_factory):
    server = memory_server_factory(longterm=None)
    with grpc.insecure_channel(server.address) as channel, pytest.raises(grpc.RpcError) as err:
        reflect(channel)
    assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_the_gateway_sends_its_token(guarded, gateway_factory):
    import httpx

    gw = gateway_factory(guarded.address, gateway={"memory_token": TOKEN})
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi", "user_id": "u1"}, timeout=30)
    assert (r.json()["memory"], r.json()["committed"]) == ("ok", True), r.text
    # a gateway with the wrong token: chats degrade, control calls say whose fault it is
    bad = gateway_factory(guarded.address, gateway={"memory_token": "nope"})
    r = httpx.post(bad.url + "/v1/chat", json={"prompt": "hi", "user_id": "u1"}, timeout=30)
    assert (r.status_code, r.json()["memory"], r.json()["committed"]) == (200, "degraded", False)
    r = httpx.get(bad.url + "/v1/users/u1/preferences", timeout=30)
    assert (r.status_code, r.json()["error"]["code"]) == (502, "memory_auth_failed")


def test_bind_addresses_default_to_loopback():
    settings = build_settings(_env_file=None)
    assert (settings.server.host, settings.server.metrics_host) == ("127.0.0.1", "127.0.0.1")
    assert settings.worker.metrics_host == "127.0.0.1"
    assert settings.server.reflection is False
    server = metrics.start_metrics_server(free_port())
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_prod_refuses_a_placeholder_token():
    from mnemo_common.settings import SettingsError, load_settings
    from mnemo_memory.config import MemoryServiceSettings

    with pytest.raises(SettingsError, match="SERVER__AUTH_TOKEN"):
        load_settings(
            MemoryServiceSettings,
            _env_file=None,
            environment="prod",
            server={"auth_token": "changeme"},
        )
