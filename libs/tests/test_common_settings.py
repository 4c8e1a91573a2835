"""Shared settings: the seeds' variable names, defaults, overrides and clear errors."""

from __future__ import annotations

import pytest
from mnemo_common.settings import CommonSettings, SettingsError, load_settings


def load() -> CommonSettings:
    return load_settings(CommonSettings)


def test_seed_defaults(clean_env):
    settings = load()

    assert settings.redis.host == "localhost"
    assert settings.redis.port == 6379
    assert settings.redis.password is None
    assert settings.redis.db == 0
    assert settings.memory.thread_ttl_hours == 24
    assert settings.memory.user_ttl_days == 30
    assert settings.memory.max_thread_messages == 50
    assert settings.effective_redis_url == "redis://localhost:6379/0"
    assert settings.chromadb_url is None
    assert settings.anthropic_api_key is None


def test_seed_variable_names_override_the_defaults(clean_env):
    clean_env.setenv("REDIS__HOST", "redis.internal")
    clean_env.setenv("REDIS__PORT", "6380")
    clean_env.setenv("REDIS__PASSWORD", "s3cr:et")
    clean_env.setenv("REDIS__DB", "3")
    clean_env.setenv("MEMORY__THREAD_TTL_HOURS", "12")
    clean_env.setenv("MEMORY__USER_TTL_DAYS", "90")
    clean_env.setenv("MEMORY__MAX_THREAD_MESSAGES", "20")

    settings = load()

    assert settings.redis.host == "redis.internal"
    assert settings.redis.port == 6380
    assert settings.redis.password is not None
    assert settings.redis.password.get_secret_value() == "s3cr:et"
    assert settings.redis.db == 3
    assert settings.memory.thread_ttl_hours == 12
    assert settings.memory.user_ttl_days == 90
    assert settings.memory.max_thread_messages == 20
    # the password is URL-escaped when the URL is built from the parts
    assert settings.effective_redis_url == "redis://:s3cr%3Aet@redis.internal:6380/3"


def test_redis_url_wins_over_the_parts(clean_env):
    clean_env.setenv("REDIS__HOST", "ignored-host")
    clean_env.setenv("REDIS_URL", "redis://redis:6379/5")

    assert load().effective_redis_url == "redis://redis:6379/5"


def test_flat_seed_names(clean_env):
    clean_env.setenv("CHROMADB_URL", "http://chromadb:8000")
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-abc")

    settings = load()

    assert settings.chromadb_url == "http://chromadb:8000"
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-abc"
    assert "sk-ant-abc" not in repr(settings)  # secrets never show up in logs or reprs


def test_dotenv_file_in_the_working_directory_is_read(clean_env, tmp_path):
    (tmp_path / ".env").write_text("MEMORY__MAX_THREAD_MESSAGES=8\n")

    assert load().memory.max_thread_messages == 8


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("REDIS__PORT", "not-a-port", "valid integer"),
        ("REDIS__PORT", "70000", "less than or equal to 65535"),
        ("MEMORY__THREAD_TTL_HOURS", "-1", "greater than 0"),
        ("MEMORY__MAX_THREAD_MESSAGES", "1", "greater than or equal to 2"),
        ("LLM__TIMEOUT_S", "0", "greater than 0"),
        ("MNEMO_ENV", "staging", "'dev', 'test' or 'prod'"),
    ],
)
def test_invalid_value_names_the_variable(clean_env, name, value, reason):
    clean_env.setenv(name, value)

    with pytest.raises(SettingsError) as caught:
        load()

    assert f"{name}: " in str(caught.value)
    assert reason in str(caught.value)


def test_every_invalid_variable_is_reported_at_once(clean_env):
    clean_env.setenv("REDIS__PORT", "x")
    clean_env.setenv("REDIS__DB", "-1")

    with pytest.raises(SettingsError) as caught:
        load()

    assert "REDIS__PORT" in str(caught.value) and "REDIS__DB" in str(caught.value)


@pytest.mark.parametrize("name", ["REDIS__PASSWORD", "ANTHROPIC_API_KEY", "LLM__OPENAI_API_KEY"])
def test_placeholder_secret_is_refused_in_prod(clean_env, name):
    clean_env.setenv("MNEMO_ENV", "prod")
    clean_env.setenv(name, "changeme")

    with pytest.raises(SettingsError) as caught:
        load()

    assert str(caught.value).startswith("invalid configuration: " + name)
    assert "placeholder" in str(caught.value)


def test_placeholder_secret_is_accepted_in_dev(clean_env):
    clean_env.setenv("REDIS__PASSWORD", "changeme")

    assert load().redis.password is not None


def test_real_secret_is_accepted_in_prod(clean_env):
    clean_env.setenv("MNEMO_ENV", "prod")
    clean_env.setenv("REDIS__PASSWORD", "9f8e7d6c5b4a")

    assert load().environment == "prod"
