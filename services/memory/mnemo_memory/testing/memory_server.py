"""Fixtures that run the real memory service (owned by the memory service).

* ``memory_settings`` — factory: ``memory_settings(**overrides) -> MemoryServiceSettings``
  pointing at the test Redis (``redis_url``) with a unique ``REDIS__KEY_PREFIX``, gRPC on a
  free port (``SERVER__GRPC_PORT=0``), no metrics port, a fast health probe (0.2 s), and
  the vector store under the test's tmp dir. Nested overrides are merged:
  ``memory_settings(rate_limit={"per_minute": 3}, memory={"max_thread_messages": 10})``.
* ``memory_server`` — an in-process ``grpc.aio`` server (its own thread and event loop, so
  sync and async tests and other threads can all call it) with the default long-term
  memory (``build_longterm`` on the session's loaded ``embedder``). Yields
  :class:`InProcessMemoryServer`: ``.address`` (``"127.0.0.1:PORT"``), ``.port``,
  ``.settings``, ``.stub()`` (sync stub), ``.aio_stub()`` (grpc.aio stub; call it inside
  the test's event loop), ``.health_stub()``, ``.run(coro_fn)`` (run ``coro_fn(handles)``
  on the server's loop).
* ``memory_server_factory`` — ``memory_server_factory(settings=None, longterm="default")``
  starts more servers (``longterm=None``: short-term only); all stopped at teardown.
* :class:`MemoryServiceProcess` — a real ``mnemo-memory serve`` subprocess on a free port
  (``.start()``, ``.kill()`` (SIGKILL), ``.terminate()`` (SIGTERM), ``.stop()``,
  ``.wait()``, ``.address``, ``.log_tail()``), for kill/restart and drain tests;
  ``memory_process`` is a fixture factory ``memory_process(settings=None, env=None)`` that
  stops every process it made.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from mnemo_common.testing import wire_registry
from mnemo_common.testing.dicts import deep_merge
from mnemo_common.testing.procs import ManagedProcess, free_port, wait_for

if TYPE_CHECKING:
    from mnemo_memory.config import MemoryServiceSettings
    from mnemo_memory.longterm.service import LongTermMemory

_DEFAULT = "default"


def build_test_settings(
    test_redis_url: str, data_dir: Path, **overrides: Any
) -> MemoryServiceSettings:
    """MemoryServiceSettings for tests (see ``memory_settings``); ``redis_url=`` in
    ``overrides`` points at another server (e.g. ``fresh_redis.url``)."""
    from mnemo_memory.config import build_settings

    base: dict[str, Any] = {
        "redis_url": test_redis_url,
        "redis": {"key_prefix": "t" + uuid.uuid4().hex[:10]},
        "server": {
            "host": "127.0.0.1",
            "grpc_port": 0,
            "wire_port": 0,
            "metrics_port": 0,
            "health_probe_interval_s": 0.2,
            "health_probe_timeout_s": 1.0,
            "grace_s": 2.0,
        },
        "vector": {"chroma_path": str(data_dir / "chroma")},
        "worker": {"metrics_port": 0},
    }
    return build_settings(**deep_merge(base, overrides))


class InProcessMemoryServer:
    """The memory service's gRPC server on a private event loop in a daemon thread."""

    def __init__(
        self, settings: MemoryServiceSettings, longterm: LongTermMemory | str | None = _DEFAULT
    ) -> None:
        self.settings = settings
        self.longterm = longterm
        self.port = 0
        self.wire_port = 0
        self.handles: Any = None
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._channels: list[Any] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def wire_address(self) -> str:
        """host:port of the memory wire (ADR 0032)."""
        return f"127.0.0.1:{self.wire_port}"

    def start(self) -> InProcessMemoryServer:
        self._thread = threading.Thread(target=self._run, name="memory-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("in-process memory server did not start")
        if self._error is not None:
            raise RuntimeError("memory server failed to start") from self._error
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        from mnemo_memory.server import create_server

        self._stop = asyncio.Event()
        try:
            kwargs: dict[str, Any] = {"port": 0, "wire_port": 0}
            if self.longterm != _DEFAULT:
                kwargs["longterm"] = self.longterm
            self._server, self.port, self.handles = await create_server(self.settings, **kwargs)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self.wire_port = self.handles.wire_port
        wire_registry.announce(self.address, self.wire_address)
        self._ready.set()
        await self._stop.wait()
        await self.handles.shutdown(self._server, grace=0.5)

    def run(self, fn: Callable[[Any], Any], timeout: float = 30) -> Any:
        """Run ``await fn(handles)`` on the server's loop (e.g. to use its stores)."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(self.handles), self._loop).result(timeout)

    def stub(self) -> Any:
        """A synchronous MemoryService stub (channel closed at stop)."""
        import grpc
        from mnemo.memory.v1 import memory_pb2_grpc

        channel = grpc.insecure_channel(self.address)
        self._channels.append(channel)
        return memory_pb2_grpc.MemoryServiceStub(channel)

    def health_stub(self) -> Any:
        import grpc
        from grpc_health.v1 import health_pb2_grpc

        channel = grpc.insecure_channel(self.address)
        self._channels.append(channel)
        return health_pb2_grpc.HealthStub(channel)

    def aio_stub(self) -> Any:
        """A grpc.aio MemoryService stub bound to the calling event loop."""
        import grpc
        from mnemo.memory.v1 import memory_pb2_grpc

        channel = grpc.aio.insecure_channel(self.address)
        self._channels.append(channel)
        return memory_pb2_grpc.MemoryServiceStub(channel)

    def stop(self) -> None:
        for channel in self._channels:
            close = channel.close()
            if asyncio.iscoroutine(close):  # aio channel: its loop closes it on teardown
                close.close()
        self._channels.clear()
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None


class MemoryServiceProcess:
    """``mnemo-memory serve`` as a child process on a free port (real signals)."""

    def __init__(
        self,
        settings: MemoryServiceSettings | None = None,
        *,
        env: dict[str, str] | None = None,
        redis_url: str | None = None,
        log_dir: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.wire_port = free_port()
        self.env = dict(os.environ)
        if settings is not None:
            self.env.update(
                {
                    "REDIS_URL": settings.effective_redis_url,
                    "REDIS__KEY_PREFIX": settings.redis.key_prefix,
                    "VECTOR__CHROMA_PATH": settings.vector.chroma_path,
                }
            )
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.env.update(
            {
                "SERVER__HOST": "127.0.0.1",
                "SERVER__GRPC_PORT": str(self.port),
                "SERVER__WIRE_PORT": str(self.wire_port),
                "SERVER__METRICS_PORT": "0",
                "SERVER__HEALTH_PROBE_INTERVAL_S": "0.2",
                "LOG__JSON": "true",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env.update(env or {})
        log_dir = log_dir or Path(tempfile.gettempdir())
        self.log_path = log_dir / f"mnemo-memory-{self.port}.log"
        self._proc: ManagedProcess | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def wire_address(self) -> str:
        """host:port of the memory wire (ADR 0032); a caller's env may have turned it off."""
        return f"127.0.0.1:{self.env.get('SERVER__WIRE_PORT', self.wire_port)}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.running

    def start(self, *, wait_serving: bool = True, timeout: float = 60) -> MemoryServiceProcess:
        """Start and wait until health answers (SERVING unless ``wait_serving=False``)."""
        argv = [sys.executable, "-m", "mnemo_memory", "serve"]
        self._proc = ManagedProcess(argv, env=self.env, log_path=self.log_path).start()
        if self.env.get("SERVER__WIRE_PORT") != "0":
            wire_registry.announce(self.address, self.wire_address)
        want = {"SERVING"} if wait_serving else {"SERVING", "NOT_SERVING"}
        try:
            wait_for(
                lambda: self.health() in want, timeout, f"memory service :{self.port}", interval=0.1
            )
        except TimeoutError:
            raise RuntimeError(f"memory service did not start:\n{self.log_tail()}") from None
        return self

    def health(self, service: str = "") -> str:
        """Current health status name, or "DOWN" when the port does not answer."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        with grpc.insecure_channel(self.address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=1
                )
            except grpc.RpcError:
                return "DOWN"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self._proc is not None:
            self._proc.kill()

    def terminate(self) -> None:
        """SIGTERM without waiting (drain tests watch what happens next)."""
        import signal

        if self._proc is not None:
            self._proc.signal(signal.SIGTERM)

    def wait(self, timeout: float = 30) -> int | None:
        """Exit code once the process has ended."""
        if self._proc is None or self._proc.proc is None:
            return None
        return self._proc.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


@pytest.fixture
def memory_settings(redis_url: str, tmp_path: Path) -> Callable[..., MemoryServiceSettings]:
    """Factory of test settings for the memory service (see module docstring)."""

    def make(**overrides: Any) -> MemoryServiceSettings:
        return build_test_settings(redis_url, tmp_path, **overrides)

    return make


@pytest.fixture
def memory_server_factory(
    memory_settings: Callable[..., MemoryServiceSettings], request: pytest.FixtureRequest
) -> Iterator[Callable[..., InProcessMemoryServer]]:
    servers: list[InProcessMemoryServer] = []

    def start(
        settings: MemoryServiceSettings | None = None,
        longterm: LongTermMemory | str | None = _DEFAULT,
    ) -> InProcessMemoryServer:
        settings = settings or memory_settings()
        if longterm == _DEFAULT:
            # the session's loaded model: a cold load per server would make recall of the
            # first turns depend on timing (PrepareTurn skips recall while it loads)
            from mnemo_memory.longterm import build_longterm

            longterm = build_longterm(settings, embedder=request.getfixturevalue("embedder"))
        server = InProcessMemoryServer(settings, longterm).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def memory_server(
    memory_server_factory: Callable[..., InProcessMemoryServer],
) -> InProcessMemoryServer:
    """An in-process memory service with default settings (see module docstring)."""
    return memory_server_factory()


@pytest.fixture
def memory_process(
    memory_settings: Callable[..., Any], tmp_path: Path
) -> Iterator[Callable[..., MemoryServiceProcess]]:
    """Factory of ``mnemo-memory serve`` subprocesses; all stopped at teardown."""
    procs: list[MemoryServiceProcess] = []

    def make(
        settings: MemoryServiceSettings | None = None, env: dict[str, str] | None = None
    ) -> MemoryServiceProcess:
        proc = MemoryServiceProcess(settings or memory_settings(), env=env, log_dir=tmp_path)
        procs.append(proc)
        return proc

    yield make
    for proc in procs:
        proc.stop()


__all__ = [
    "InProcessMemoryServer",
    "MemoryServiceProcess",
    "build_test_settings",
    "memory_process",
    "memory_server",
    "memory_server_factory",
    "memory_settings",
]
