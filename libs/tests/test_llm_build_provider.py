"""Which provider ``build_provider`` returns, and the errors of incomplete configuration."""

from __future__ import annotations

import logging

import pytest
from mnemo_common.llm import ChatMessage, ChatRequest, OfflineProvider, build_provider
from mnemo_common.settings import CommonSettings, SettingsError, load_settings


def settings_from_env() -> CommonSettings:
    return load_settings(CommonSettings)


async def test_anthropic_key_selects_anthropic(clean_env, make_provider):
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-real-looking")

    provider = make_provider(settings_from_env())

    assert provider.name == "anthropic"
    assert provider.model_for("chat") == "claude-opus-4-8"
    assert provider.model_for("extraction") == "claude-haiku-4-5-20251001"


async def test_model_names_come_from_settings(clean_env, make_provider):
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-real-looking")
    clean_env.setenv("LLM__CHAT_MODEL", "claude-sonnet-4-5")
    clean_env.setenv("LLM__EXTRACTION_MODEL", "claude-haiku-4-5")

    provider = make_provider(settings_from_env())

    assert provider.model_for("chat") == "claude-sonnet-4-5"
    assert provider.model_for("extraction") == "claude-haiku-4-5"


async def test_no_key_falls_back_to_offline_with_a_warning(clean_env, caplog):
    with caplog.at_level(logging.INFO, logger="mnemo_common.llm"):
        provider = build_provider(settings_from_env())

    assert isinstance(provider, OfflineProvider) and provider.name == "offline"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "NOT from a real language model" in warnings[0].getMessage()
    assert "ANTHROPIC_API_KEY" in warnings[0].getMessage()


async def test_explicit_provider_wins_over_the_key(clean_env, make_provider):
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-real-looking")
    clean_env.setenv("LLM__PROVIDER", "offline")

    assert make_provider(settings_from_env()).name == "offline"

    clean_env.setenv("LLM__PROVIDER", "openai-compatible")
    clean_env.setenv("LLM__OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    clean_env.setenv("LLM__OPENAI_CHAT_MODEL", "llama3.1:8b")

    provider = make_provider(settings_from_env())
    assert provider.name == "openai-compatible"
    assert provider.model_for("chat") == "llama3.1:8b"


def test_openai_compatible_without_base_url_names_the_variable(clean_env):
    clean_env.setenv("LLM__PROVIDER", "openai-compatible")
    clean_env.setenv("LLM__OPENAI_CHAT_MODEL", "llama3.1:8b")

    with pytest.raises(SettingsError, match="LLM__OPENAI_BASE_URL is required"):
        build_provider(settings_from_env())


def test_openai_compatible_without_model_names_the_variable(clean_env):
    clean_env.setenv("LLM__PROVIDER", "openai-compatible")
    clean_env.setenv("LLM__OPENAI_BASE_URL", "http://ollama:11434/v1")

    with pytest.raises(SettingsError, match="LLM__OPENAI_CHAT_MODEL is required"):
        build_provider(settings_from_env())


def test_anthropic_without_key_names_the_variable(clean_env):
    clean_env.setenv("LLM__PROVIDER", "anthropic")

    with pytest.raises(SettingsError, match="ANTHROPIC_API_KEY is required"):
        build_provider(settings_from_env())


def test_unknown_provider_is_a_settings_error_naming_the_variable(clean_env):
    clean_env.setenv("LLM__PROVIDER", "gpt-local")

    with pytest.raises(SettingsError, match="LLM__PROVIDER"):
        settings_from_env()


async def test_anthropic_env_fixture_points_settings_at_the_fake(
    clean_env, anthropic_env, fake_anthropic, make_provider
):
    fake_anthropic.enqueue_text("configured from the environment")

    provider = make_provider(settings_from_env())
    result = await provider.complete(
        ChatRequest(system="", messages=[ChatMessage("user", "hello")])
    )

    assert result.text == "configured from the environment"
    assert fake_anthropic.last_request.api_key == anthropic_env["ANTHROPIC_API_KEY"]
