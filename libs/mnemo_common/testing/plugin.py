"""pytest plugin loaded by every suite (``-p mnemo_common.testing.plugin``).

Fixtures start real servers on free ports and tear them down. Nothing here fakes a store:
the only fakes are the hosted LLM APIs, served over HTTP by :mod:`.fake_llm`.

* ``redis_server`` (session): a real redis-server (``MNEMO_REDIS_SERVER`` picks the binary,
  e.g. Debian's Redis 7.0). When ``MNEMO_TEST_REDIS_URL`` is set, that server is used
  instead.
* ``redis_url`` (function): the URL, with the database flushed after each test.
* ``fresh_redis`` (function): a private server a test may kill and restart.
* ``redis_cluster`` (session) / ``fresh_redis_cluster`` (function): a real local Redis
  Cluster, 3 masters + 3 replicas (:mod:`.cluster`).
* the LLM wire fakes ``fake_anthropic`` and friends (:mod:`.llm_fixtures`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .procs import RedisServer


@dataclass
class ExternalRedis:
    url: str

    def kill(self) -> None:  # pragma: no cover - external servers are not ours to kill
        raise RuntimeError("cannot kill an external MNEMO_TEST_REDIS_URL server; use fresh_redis")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer | ExternalRedis]:
    external = os.environ.get("MNEMO_TEST_REDIS_URL")
    if external:
        yield ExternalRedis(external)
        return
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer | ExternalRedis) -> Iterator[str]:
    import redis

    yield redis_server.url
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()


@pytest.fixture
def fresh_redis(tmp_path) -> Iterator[RedisServer]:  # type: ignore[no-untyped-def]
    """A private Redis (AOF on, data under tmp_path) for kill/restart tests."""
    server = RedisServer(appendonly=True, data_dir=tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


# Shared fixtures beside their test support, registered here so every suite (libs/,
# services/*/tests, tests/) sees the same ones. The services' own fixtures (the memory
# server, Chroma, the gateway) are the plugins mnemo_memory.testing.plugin and
# mnemo_gateway.testing.plugin: libs never imports a service.
from .cluster import *  # noqa: E402,F403
from .llm_fixtures import *  # noqa: E402,F403
