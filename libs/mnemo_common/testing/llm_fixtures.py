"""pytest fixtures for the fake LLM servers (registered for every suite by ``plugin.py``).

* ``fake_anthropic`` — a :class:`~mnemo_common.testing.fake_llm.FakeAnthropicServer`,
  started once per session and reset before and after each test (queue, delay, default
  reply, recorded requests), so no state leaks between tests.
* ``fake_openai`` — the same for :class:`~mnemo_common.testing.fake_llm.FakeOpenAIServer`.
* ``anthropic_settings`` / ``openai_settings`` — a ``CommonSettings`` selecting that
  provider against the fake (timeout 5 s, 2 retries; ``.env`` ignored). For other values call
  ``fake_anthropic.settings(timeout_s=0.5, max_retries=0)``.
* ``anthropic_env`` / ``openai_env`` — the same configuration applied to ``os.environ``
  with ``monkeypatch`` (for code that builds its own settings, e.g. a service's
  ``get_settings()``); returns the dict of variables it set (also handy for subprocesses).

See :mod:`mnemo_common.testing.fake_llm` for the servers' scripting API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .fake_llm import FakeAnthropicServer, FakeOpenAIServer

__all__ = [
    "_fake_anthropic_session",
    "_fake_openai_session",
    "anthropic_env",
    "anthropic_settings",
    "fake_anthropic",
    "fake_openai",
    "openai_env",
    "openai_settings",
]


@pytest.fixture(scope="session")
def _fake_anthropic_session() -> Iterator[FakeAnthropicServer]:
    server = FakeAnthropicServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _fake_openai_session() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_anthropic(_fake_anthropic_session: FakeAnthropicServer) -> Iterator[FakeAnthropicServer]:
    """The session's fake Anthropic API, clean for this test."""
    _fake_anthropic_session.reset()
    yield _fake_anthropic_session
    _fake_anthropic_session.reset()


@pytest.fixture
def fake_openai(_fake_openai_session: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The session's fake OpenAI-compatible API, clean for this test."""
    _fake_openai_session.reset()
    yield _fake_openai_session
    _fake_openai_session.reset()


@pytest.fixture
def anthropic_settings(fake_anthropic: FakeAnthropicServer) -> Any:
    """``CommonSettings`` with the anthropic provider pointed at ``fake_anthropic``."""
    return fake_anthropic.settings()


@pytest.fixture
def openai_settings(fake_openai: FakeOpenAIServer) -> Any:
    """``CommonSettings`` with the openai-compatible provider pointed at ``fake_openai``."""
    return fake_openai.settings()


@pytest.fixture
def anthropic_env(
    fake_anthropic: FakeAnthropicServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Set ``os.environ`` so settings built from the environment use ``fake_anthropic``."""
    env = fake_anthropic.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def openai_env(fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set ``os.environ`` so settings built from the environment use ``fake_openai``."""
    env = fake_openai.env()
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
