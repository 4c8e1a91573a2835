"""Preferences RPCs: per-user hash with a TTL refreshed on write and size limits."""

from __future__ import annotations

import grpc
import pytest
import redis
from mnemo.memory.v1 import memory_pb2 as pb


@pytest.fixture
def server(memory_server_factory, memory_settings):
    return memory_server_factory(
        memory_settings(
            memory={
                "max_preferences_per_user": 3,
                "max_preference_value_bytes": 64,
                "user_ttl_days": 2,
            }
        ),
        longterm=None,
    )


def test_set_get_delete(server) -> None:
    stub = server.stub()
    assert dict(stub.GetPreferences(pb.GetPreferencesRequest(user_id="alice")).values) == {}
    stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="language", value="Go"))
    reply = stub.SetPreference(
        pb.SetPreferenceRequest(user_id="alice", key="language", value="Python")
    )
    assert dict(reply.values) == {"language": "Python"}
    stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="tone", value="brief"))
    left = stub.DeletePreference(pb.DeletePreferenceRequest(user_id="alice", key="tone"))
    assert dict(left.values) == {"language": "Python"}
    # deleting a missing key is fine; other users see nothing
    stub.DeletePreference(pb.DeletePreferenceRequest(user_id="alice", key="missing"))
    assert dict(stub.GetPreferences(pb.GetPreferencesRequest(user_id="bob")).values) == {}


def test_ttl_is_refreshed_on_write(server, redis_url) -> None:
    stub = server.stub()
    stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="a", value="1"))
    key = f"{server.settings.redis.key_prefix}:u:{{alice}}:prefs"
    client = redis.Redis.from_url(redis_url)
    client.expire(key, 60)  # as if most of the TTL had passed
    stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="b", value="2"))
    assert 2 * 86_400 - 5 <= client.ttl(key) <= 2 * 86_400
    client.close()


def test_limits(server) -> None:
    stub = server.stub()
    for key in ("a", "b", "c"):
        stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key=key, value="v"))
    with pytest.raises(grpc.RpcError) as err:
        stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="d", value="v"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MEMORY__MAX_PREFERENCES_PER_USER" in err.value.details()
    # overwriting an existing key is still allowed when full
    stub.SetPreference(pb.SetPreferenceRequest(user_id="alice", key="a", value="new"))
    for kw, field in (
        ({"key": "bad key"}, "key"),
        ({"key": ""}, "key"),
        ({"value": "x" * 65}, "value"),
        ({"user_id": "a:b"}, "user_id"),
    ):
        body = {"user_id": "alice", "key": "a", "value": "v", **kw}
        with pytest.raises(grpc.RpcError) as err:
            stub.SetPreference(pb.SetPreferenceRequest(**body))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(field)
    values = dict(stub.GetPreferences(pb.GetPreferencesRequest(user_id="alice")).values)
    assert values == {"a": "new", "b": "v", "c": "v"}
