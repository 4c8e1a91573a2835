"""Structured JSON logging: one object per line, request id and extras included."""

from __future__ import annotations

import json
import logging

import pytest
from mnemo_common import logging as mnemo_logging
from mnemo_common.logging import configure_logging, request_id_var


@pytest.fixture
def fresh_logging(monkeypatch: pytest.MonkeyPatch):
    """Let a test configure logging from scratch and put the root logger back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    monkeypatch.setattr(mnemo_logging, "_configured", False)
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def emitted_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_each_record_is_one_json_object_with_extras(fresh_logging, capsys):
    configure_logging("gateway", level="INFO")
    log = logging.getLogger("mnemo.test")

    log.info("turn stored", extra={"thread_id": "t-1", "messages": 2})
    log.warning("memory degraded")

    lines = emitted_lines(capsys)
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["msg"] == "turn stored"
    assert first["level"] == "info"
    assert first["service"] == "gateway"
    assert first["logger"] == "mnemo.test"
    assert first["thread_id"] == "t-1" and first["messages"] == 2
    assert first["ts"].endswith("Z")
    assert "request_id" not in first
    assert json.loads(lines[1])["level"] == "warning"


def test_request_id_of_the_current_request_is_added(fresh_logging, capsys):
    configure_logging("memory")
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("mnemo.test").info("serving")
    finally:
        request_id_var.reset(token)
    logging.getLogger("mnemo.test").info("after")

    lines = [json.loads(line) for line in emitted_lines(capsys)]
    assert lines[0]["request_id"] == "req-42"
    assert "request_id" not in lines[1]


def test_exceptions_are_logged_inside_the_json_object(fresh_logging, capsys):
    configure_logging("worker")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("mnemo.test").exception("job failed")

    (line,) = emitted_lines(capsys)
    record = json.loads(line)
    assert record["level"] == "error"
    assert "RuntimeError: boom" in record["exc"]


def test_configured_once_later_calls_change_only_the_level(fresh_logging, capsys):
    configure_logging("gateway", level="INFO")
    handlers = logging.getLogger().handlers[:]
    configure_logging("gateway", level="WARNING")

    assert logging.getLogger().handlers == handlers
    logging.getLogger("mnemo.test").info("hidden")
    logging.getLogger("mnemo.test").warning("shown")
    lines = emitted_lines(capsys)
    assert [json.loads(line)["msg"] for line in lines] == ["shown"]


def test_text_format_for_terminals(fresh_logging, capsys):
    configure_logging("gateway", json_format=False)

    logging.getLogger("mnemo.test").info("hello", extra={"user_id": "u1"})

    (line,) = emitted_lines(capsys)
    assert "INFO" in line and "hello" in line and "user_id=u1" in line
    with pytest.raises(ValueError):
        json.loads(line)
