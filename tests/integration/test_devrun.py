"""``make run`` (scripts/devrun.py): one command up, Ctrl-C stops every child, data survives."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from mnemo_common.testing.procs import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
UP = "Mnemo is up"
#: how long the Try-it may take to remember, from "up": a person typing the next command
TRY_IT_S = 15


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose only once reaped; devrun reaps its children
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


class DevRun:
    def __init__(self, var_dir: Path, log: Path, chroma: str = "embedded") -> None:
        self.port = free_port()
        self.args = [
            "--chroma",
            chroma,
            "--port",
            str(self.port),
            "--memory-port",
            str(free_port()),
            "--wire-port",
            str(free_port()),
            "--redis-port",
            str(free_port()),
            "--chroma-port",
            str(free_port()),
            "--var-dir",
            str(var_dir),
        ]
        self.var_dir, self.log = var_dir, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> dict[str, int]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LLM__", "GATEWAY__", "REDIS", "CHROMADB"))
        }
        env.pop("ANTHROPIC_API_KEY", None)  # offline: what a newcomer without a key gets
        ups = self._ups()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts" / "devrun.py"), *self.args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        try:
            # what a user waits for: this run's "up" line (the log is appended to across
            # restarts; devrun writes the pids file just before the line)
            wait_for(lambda: self._ups() > ups, 240, "Mnemo is up")
        except TimeoutError:
            self.interrupt()
            pytest.fail("devrun did not come up:\n" + self.log.read_text()[-4000:])
        return json.loads((self.var_dir / "devrun.pids").read_text())

    def _ups(self) -> int:
        return self.log.read_text(errors="replace").count(UP) if self.log.exists() else 0

    @contextlib.contextmanager
    def explained(self):
        """Any failure inside carries the tail of devrun's log (CI shows nothing else)."""
        try:
            yield
        except (AssertionError, TimeoutError, httpx.HTTPError) as exc:
            tail = self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""
            pytest.fail(f"{type(exc).__name__}: {exc}\n--- devrun log (tail) ---\n{tail}")

    def interrupt(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


EXPECTED_CHILDREN = {
    # default: embedded Chroma, the worker inside the memory service
    "embedded": {"redis", "memory", "gateway"},
    # as in Kubernetes: a Chroma server and a worker process
    "server": {"redis", "chroma", "memory", "worker", "gateway"},
}


@pytest.mark.parametrize("chroma", ["embedded", "server"])
def test_make_run_starts_stops_cleanly_and_keeps_data(tmp_path, chroma):
    run = DevRun(tmp_path / "var", tmp_path / "devrun.log", chroma)
    with run.explained():
        pids = run.start()
        try:
            assert set(pids) == EXPECTED_CHILDREN[chroma]
            assert httpx.get(run.url + "/v1/info").json()["offline"] is True
            r = httpx.post(
                run.url + "/v1/chat",
                timeout=60,
                json={"prompt": "Remember: I live in Faro.", "thread_id": "th-dev"},
            )
            assert r.status_code == 200 and r.json()["committed"] is True
            assert httpx.get(run.url + "/").status_code == 200
            # README's "Try it": make run extracts after every turn, so what was just said
            # is remembered in the next, new thread
            wait_for(
                # the fact itself, not the message memory the turn wrote at once
                lambda: any(
                    "User lives in Faro" in m["text"]
                    for m in httpx.get(
                        run.url + "/v1/users/me/memories", params={"kind": "fact"}, timeout=30
                    ).json()["memories"]
                ),
                180,
                "fact extraction by the worker",
            )
            r = httpx.post(run.url + "/v1/chat", timeout=60, json={"prompt": "Where do I live?"})
            assert r.status_code == 200 and r.json()["thread_id"] != "th-dev"
            assert r.json()["memory"] == "ok" and "User lives in Faro" in r.json()["response"]
        finally:
            code = run.interrupt()
        assert code == 0
        assert [name for name, pid in pids.items() if alive(pid)] == []
        log = (tmp_path / "devrun.log").read_text()
        assert "gateway |" in log and "memory  |" in log  # readable, prefixed logs
        assert '{"ts"' not in log  # not JSON
        assert (tmp_path / "var" / "redis").is_dir() and any((tmp_path / "var" / "redis").iterdir())

        pids = run.start()
        try:
            r = httpx.get(run.url + "/v1/users/me/threads/th-dev", timeout=30)
            assert r.status_code == 200
            assert r.json()["messages"][0]["content"] == "Remember: I live in Faro."
        finally:
            assert run.interrupt() == 0
        assert [name for name, pid in pids.items() if alive(pid)] == []


@pytest.mark.parametrize("chroma", ["embedded", "server"])
def test_try_it_right_after_up_recalls_in_a_new_thread(tmp_path, chroma):
    """The README's Try-it, typed at once after "up": the worker already consumes (its
    embedding model loaded), so the fact is recalled in a new thread within seconds."""
    run = DevRun(tmp_path / "var", tmp_path / "devrun.log", chroma)
    with run.explained():
        run.start()
        try:
            # "up" comes after the worker joined the job stream (its model loaded), whether
            # it runs in the memory service (embedded) or as its own process (server)
            log = run.log.read_text(errors="replace")
            assert 0 <= log.find("worker started") < log.find(UP), log[-3000:]
            r = httpx.post(
                run.url + "/v1/chat",
                timeout=60,
                json={"user_id": "ada", "prompt": "I live in Lisbon and I prefer short answers."},
            )
            assert r.status_code == 200 and r.json()["committed"] is True
            first_thread = r.json()["thread_id"]

            def recalled() -> bool:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "mnemo_gateway.cli",
                        "--url",
                        run.url,
                        "--user",
                        "ada",
                        "chat",
                        "Where do I live?",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                )
                return "Lisbon" in out.stdout and "User lives in Lisbon" in out.stdout

            wait_for(recalled, TRY_IT_S, "the Try-it recalling Lisbon")
            threads = httpx.get(run.url + "/v1/users/ada/threads", timeout=30).json()["threads"]
            assert len(threads) >= 2 and first_thread in {t["thread_id"] for t in threads}
            facts = httpx.get(
                run.url + "/v1/users/ada/memories", params={"kind": "fact"}, timeout=30
            ).json()["memories"]
            assert any("Lisbon" in m["text"] for m in facts)
        finally:
            assert run.interrupt() == 0
