"""The ``mnemo`` CLI against a running gateway and memory service."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import httpx
import pytest
from mnemo_gateway.cli import main


def prefs(gw, user: str, **headers) -> dict:
    return httpx.get(f"{gw.url}/v1/users/{user}/preferences", headers=headers).json()["values"]


def test_chat_ls_and_forget(gateway, fake_anthropic, capsys):
    fake_anthropic.enqueue_text("Hello from the CLI path")
    assert main(["--url", gateway.url, "--user", "cli", "chat", "hi", "there"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "Hello from the CLI path"
    assert "(thread th_" in err
    assert fake_anthropic.last_user_message() == "hi there"

    httpx.put(gateway.url + "/v1/users/cli/preferences/editor", json={"value": "vim"})
    assert main(["--url", gateway.url, "--user", "cli", "memories", "ls"]) == 0
    assert "preference  editor = vim" in capsys.readouterr().out
    assert main(["--url", gateway.url, "--user", "cli", "threads", "ls"]) == 0
    assert "2 messages" in capsys.readouterr().out

    argv = ["--url", gateway.url, "--user", "cli", "memories", "forget", "--everything", "--yes"]
    assert main(argv) == 0
    assert '"total"' in capsys.readouterr().out
    assert prefs(gateway, "cli") == {}


def test_interactive_chat_puts_prompt_and_answer_on_their_own_lines(gateway, fake_anthropic):
    fake_anthropic.enqueue_text("First answer")
    fake_anthropic.enqueue_text("Second answer")
    proc = subprocess.run(
        [sys.executable, "-m", "mnemo_gateway.cli", "--user", "tty", "chat"],
        input="hello\nand again\n",
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MNEMO_URL": gateway.url},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n") == [
        "you> hello",
        "mnemo> First answer",
        "you> and again",
        "mnemo> Second answer",
        "you> ",
    ]
    assert "Ctrl-D" in proc.stderr
    # both turns were one conversation
    threads = httpx.get(gateway.url + "/v1/users/tty/threads").json()["threads"]
    assert [t["message_count"] for t in threads] == [4]


def test_errors_are_one_line_and_exit_1(gateway, capsys):
    assert main(["--url", gateway.url, "--user", "bad:user", "memories", "ls"]) == 1
    assert "422 invalid_id" in capsys.readouterr().err
    assert main(["--url", gateway.url, "memories", "forget", "mem_nope"]) == 1
    assert "404 not_found" in capsys.readouterr().err


def test_unreachable_gateway_names_the_url_and_how_to_set_it(capsys, monkeypatch):
    monkeypatch.delenv("MNEMO_URL", raising=False)
    assert main(["--url", "http://127.0.0.1:1", "threads", "ls"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the gateway at http://127.0.0.1:1" in err
    assert "--url" in err and "MNEMO_URL" in err and "make run" in err
    monkeypatch.setenv("MNEMO_URL", "http://127.0.0.1:2")
    assert main(["threads", "ls"]) == 1
    assert "cannot reach the gateway at http://127.0.0.1:2" in capsys.readouterr().err


def test_mnemo_url_finds_the_gateway(gateway, monkeypatch, capsys):
    monkeypatch.setenv("MNEMO_URL", gateway.url)
    monkeypatch.setenv("MNEMO_USER", "envuser")
    httpx.put(gateway.url + "/v1/users/envuser/preferences/pet", json={"value": "dog"})
    assert main(["memories", "ls"]) == 0
    assert "preference  pet = dog" in capsys.readouterr().out


@pytest.mark.parametrize("reply", ["", "n", "no", "maybe"])
def test_forget_everything_asks_first(gateway, monkeypatch, capsys, reply):
    httpx.put(gateway.url + "/v1/users/kim/preferences/a", json={"value": "1"})
    monkeypatch.setattr(sys, "stdin", io.StringIO(reply + "\n" if reply else ""))
    argv = ["--url", gateway.url, "--user", "kim", "memories", "forget", "--everything"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Erase every memory, thread and preference of user 'kim'" in err
    assert "not erased" in err
    assert prefs(gateway, "kim") == {"a": "1"}  # nothing lost

    monkeypatch.setattr(sys, "stdin", io.StringIO("yes\n"))
    assert main(argv) == 0
    assert '"user_id": "kim"' in capsys.readouterr().out
    assert prefs(gateway, "kim") == {}


def test_forget_everything_refuses_the_shared_default_user_unnamed(gateway, monkeypatch, capsys):
    monkeypatch.delenv("MNEMO_USER", raising=False)
    httpx.put(gateway.url + "/v1/users/local/preferences/shared", json={"value": "yes"})
    argv = ["--url", gateway.url, "memories", "forget", "--everything", "--yes"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "refusing to erase without --user" in err and "'local'" in err
    assert "mnemo --user local memories forget --everything" in err
    assert prefs(gateway, "local") == {"shared": "yes"}
    # named explicitly, it is erased
    assert main(["--url", gateway.url, "--user", "local", *argv[2:]]) == 0
    assert prefs(gateway, "local") == {}


def test_forget_everything_with_a_pinned_key_erases_its_own_user(
    gateway_factory, memory_server, tmp_path, monkeypatch, capsys
):
    keys = tmp_path / "keys"
    keys.write_text("k-lou acme lou\n")
    gw = gateway_factory(
        memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
    )
    h = {"x-api-key": "k-lou"}
    httpx.put(gw.url + "/v1/users/lou/preferences/x", json={"value": "1"}, headers=h)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    argv = ["--url", gw.url, "--key", "k-lou", "memories", "forget", "--everything"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "of user 'lou'" in err and '"user_id": "lou"' in out
    assert prefs(gw, "lou", **h) == {}
