"""Fixtures of the shared-library tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import pytest
from mnemo_common.llm import LLMProvider, build_provider
from mnemo_common.settings import CommonSettings

#: environment variables (and prefixes) CommonSettings reads; cleared so a developer's
#: shell or .env never changes a test's outcome
_SETTING_PREFIXES = (
    "REDIS__",
    "MEMORY__",
    "RATE_LIMIT__",
    "LLM__",
    "EMBEDDING__",
    "VECTOR__",
    "LOG__",
    "SERVER__",
    "WORKER__",
    "GATEWAY__",
    "AUTH__",
)
_SETTING_NAMES = {"REDIS_URL", "CHROMADB_URL", "ANTHROPIC_API_KEY", "MNEMO_ENV", "ENVIRONMENT"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:  # type: ignore[no-untyped-def]
    """No Mnemo variables in the environment and a cwd without a ``.env``."""
    for name in list(os.environ):
        upper = name.upper()
        if upper in _SETTING_NAMES or upper.startswith(_SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
async def make_provider() -> AsyncIterator[Callable[[CommonSettings], LLMProvider]]:
    """``build_provider`` whose providers are closed after the test."""
    built: list[LLMProvider] = []

    def make(settings: CommonSettings) -> LLMProvider:
        provider = build_provider(settings)
        built.append(provider)
        return provider

    yield make
    for provider in built:
        await provider.aclose()
