"""The ``mnemo`` CLI against a running gateway and memory service."""

from __future__ import annotations

import httpx
from mnemo_gateway.cli import main


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

    assert main(["--url", gateway.url, "--user", "cli", "memories", "forget", "--everything"]) == 0
    assert '"total"' in capsys.readouterr().out
    assert httpx.get(gateway.url + "/v1/users/cli/preferences").json()["values"] == {}


def test_errors_are_one_line_and_exit_1(gateway, capsys):
    assert main(["--url", gateway.url, "--user", "bad:user", "memories", "ls"]) == 1
    assert "422 invalid_id" in capsys.readouterr().err
    assert main(["--url", "http://127.0.0.1:1", "threads", "ls"]) == 1
    assert "cannot reach the gateway" in capsys.readouterr().err
