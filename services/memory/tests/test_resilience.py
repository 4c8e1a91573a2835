"""Redis outages and shutdown: fail fast with UNAVAILABLE, report NOT_SERVING, recover by
itself; SIGTERM drains (NOT_SERVING, in-flight calls finish, exit 0)."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2
from mnemo.memory.v1 import memory_pb2 as pb
from mnemo_common.testing.procs import wait_for

SERVICE = "mnemo.memory.v1.MemoryService"


def health_status(health_stub, service: str = "") -> int:
    return health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status


def commit(stub, key: str, tid: str = "t1", timeout: float = 10):
    return stub.CommitTurn(
        pb.CommitTurnRequest(
            user_id="alice",
            thread_id=tid,
            idempotency_key=key,
            user_message="q",
            assistant_message="a",
        ),
        timeout=timeout,
    )


def test_redis_killed_and_restarted(fresh_redis, memory_server_factory, memory_settings):
    settings = memory_settings(redis_url=fresh_redis.url)
    server = memory_server_factory(settings, longterm=None)
    stub, health = server.stub(), server.health_stub()
    commit(stub, "before")
    assert (
        health_status(health)
        == health_status(health, SERVICE)
        == (health_pb2.HealthCheckResponse.SERVING)
    )

    fresh_redis.kill()
    calls = [
        lambda: commit(stub, "during"),
        lambda: stub.PrepareTurn(
            pb.PrepareTurnRequest(user_id="alice", thread_id="t1"), timeout=10
        ),
        lambda: stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="t1"), timeout=10),
        lambda: stub.GetPreferences(pb.GetPreferencesRequest(user_id="alice"), timeout=10),
    ]
    for call in calls:  # before and after the probe notices: always UNAVAILABLE, no hang
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE, err.value.details()
        assert "redis" in err.value.details()
    wait_for(
        lambda: health_status(health) == health_pb2.HealthCheckResponse.NOT_SERVING,
        10,
        "NOT_SERVING",
    )
    assert health_status(health, SERVICE) == health_pb2.HealthCheckResponse.NOT_SERVING

    fresh_redis.start()  # same port, same AOF directory
    wait_for(
        lambda: health_status(health) == health_pb2.HealthCheckResponse.SERVING, 15, "SERVING again"
    )
    # the restarted Redis has no scripts loaded: the pipelined rate-limit script reloads
    ready = stub.PrepareTurn(
        pb.PrepareTurnRequest(user_id="alice", thread_id="t1", count_rate_limit=True)
    )
    assert [m.content for m in ready.messages] == ["q", "a"]
    assert {w.window for w in ready.rate_limits} == {"minute", "hour", "day"}
    reply = commit(stub, "after")
    assert reply.message_count == 4  # the turn from before the outage survived (AOF)
    thread = stub.GetThread(pb.GetThreadRequest(user_id="alice", thread_id="t1"))
    assert [m.content for m in thread.messages] == ["q", "a", "q", "a"]


def test_starts_without_redis_and_serves_once_it_appears(
    memory_server_factory, memory_settings, tmp_path
):
    from mnemo_common.testing.procs import RedisServer, free_port

    port = free_port()
    settings = memory_settings(redis_url=f"redis://127.0.0.1:{port}/0")
    server = memory_server_factory(settings, longterm=None)
    health = server.health_stub()
    assert health_status(health) == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.RpcError) as err:
        commit(server.stub(), "k")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    redis_server = RedisServer(port=port, data_dir=tmp_path / "late").start()
    try:
        wait_for(
            lambda: health_status(health) == health_pb2.HealthCheckResponse.SERVING, 15, "SERVING"
        )
        assert commit(server.stub(), "k").message_count == 2
    finally:
        redis_server.stop()


def test_sigterm_drains_and_exits_cleanly(memory_process, memory_settings):
    # the open health Watch stream keeps the server busy until the grace period ends
    proc = memory_process(memory_settings(), env={"SERVER__GRACE_S": "1"}).start()
    with grpc.insecure_channel(proc.address) as channel:
        from grpc_health.v1 import health_pb2_grpc
        from mnemo.memory.v1 import memory_pb2_grpc

        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        assert commit(stub, "k1").message_count == 2
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        proc.terminate()
        # the health watch sees NOT_SERVING before the server goes away
        statuses = []
        try:
            for update in watch:
                statuses.append(update.status)
        except grpc.RpcError:
            pass
        assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
    assert proc.wait(timeout=20) == 0
    log = proc.log_tail()
    assert "shutting down" in log and '"msg": "stopped"' in log


def test_sigterm_while_the_model_is_still_loading_exits_at_once(
    memory_process, memory_settings, tmp_path
):
    """A pod told to stop during its (slow) model load must not outlive its grace period.

    The model directory's files are FIFOs: once the loader has opened one (the runtime
    imported, the tokenizer or weights being read) the test holds the writing end open and
    writes nothing, so the load blocks for ever — as it does for tens of seconds on a busy
    node."""
    import errno
    import os

    model_dir = tmp_path / "model-that-never-loads"
    model_dir.mkdir()
    fifos = [
        model_dir / n
        for n in (
            "modules.json",
            "config.json",
            "config_sentence_transformers.json",
            "sentence_bert_config.json",
            "tokenizer.json",
        )
    ]
    for fifo in fifos:
        os.mkfifo(fifo)
    proc = memory_process(
        memory_settings(),
        env={"SERVER__GRACE_S": "1", "EMBEDDING__MODEL_PATH": str(model_dir)},
    ).start()
    held: list[int] = []

    def loader_reading() -> bool:
        for fifo in fifos:
            try:  # succeeds only once a reader has the FIFO open
                held.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                return True
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
        return False

    try:
        wait_for(loader_reading, 60, "the model loader to open its files")
        with grpc.insecure_channel(proc.address) as channel:
            from mnemo.memory.v1 import memory_pb2_grpc

            stub = memory_pb2_grpc.MemoryServiceStub(channel)
            assert commit(stub, "k1").message_count == 2
            # a chat turn does not queue behind the load: short-term context, no recall
            reply = stub.PrepareTurn(
                pb.PrepareTurnRequest(user_id="alice", thread_id="t1", query="where do I live?"),
                timeout=3,
            )
            assert [m.content for m in reply.messages] == ["q", "a"]
            assert list(reply.degraded) == ["vector_store"]
        assert proc.health("mnemo.memory.v1.Recall") == "NOT_SERVING"
        # ...at once, saying why (not after waiting out the recall timeout)
        assert "the embedding model is still loading" in proc.log_tail()
        proc.terminate()
        assert proc.wait(timeout=20) == 0, proc.log_tail()
    finally:
        for fd in held:
            os.close(fd)
    assert '"msg": "stopped"' in proc.log_tail()


def test_service_process_kill_and_restart_keeps_data(memory_process, memory_settings):
    proc = memory_process(memory_settings()).start()
    with grpc.insecure_channel(proc.address) as channel:
        from mnemo.memory.v1 import memory_pb2_grpc

        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        commit(stub, "k1")
    proc.kill()
    assert proc.health() == "DOWN"
    started = time.monotonic()
    proc.start()
    assert time.monotonic() - started < 60
    with grpc.insecure_channel(proc.address) as channel:
        from mnemo.memory.v1 import memory_pb2_grpc

        stub = memory_pb2_grpc.MemoryServiceStub(channel)
        assert commit(stub, "k1").duplicate  # idempotency survives the restart
        assert commit(stub, "k2").message_count == 4


def test_password_protected_redis(memory_server_factory, memory_settings, tmp_path):
    from mnemo_common.testing.procs import RedisServer

    secured = RedisServer(password="s3cret-pw", data_dir=tmp_path / "auth").start()
    try:
        good = memory_server_factory(
            memory_settings(
                redis_url=None,
                redis={"host": "127.0.0.1", "port": secured.port, "password": "s3cret-pw"},
            ),
            longterm=None,
        )
        assert commit(good.stub(), "k").message_count == 2
        bad = memory_server_factory(
            memory_settings(redis_url=f"redis://:wrong@127.0.0.1:{secured.port}/0"), longterm=None
        )
        with pytest.raises(grpc.RpcError) as err:
            commit(bad.stub(), "k")
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        assert health_status(bad.health_stub()) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        secured.stop()
