"""Gateway settings: ``GATEWAY__*`` and ``AUTH__*`` on top of the shared settings."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from typing import Literal

from mnemo_common.settings import CommonSettings, Environment, load_settings
from pydantic import BaseModel, Field, SecretStr, model_validator


class AuthMode(StrEnum):
    NONE = "none"
    API_KEY = "api-key"
    JWT = "jwt"


class GatewayServerSettings(BaseModel):
    """HTTP server and memory client (``GATEWAY__*``)."""

    # address the HTTP server binds
    host: str = "0.0.0.0"
    # HTTP port (API, web page, /healthz, /readyz; /metrics too unless GATEWAY__METRICS_PORT
    # is set)
    port: int = Field(8000, ge=1, le=65535)
    # port of a separate Prometheus /metrics server; GATEWAY__PORT then answers /metrics with
    # 404 (0 = /metrics on GATEWAY__PORT, where an Ingress in front would publish it)
    metrics_port: int = Field(0, ge=0, le=65535)
    # interface that separate /metrics server binds to (loopback by default; the chart: the
    # pod IP)
    metrics_host: str = "127.0.0.1"
    # false = stateless gateway: no memory service calls at all (benchmarks, debugging)
    memory_enabled: bool = True
    # host:port of the memory service's gRPC endpoint
    memory_addr: str = "localhost:50051"
    # host:port of the memory service's wire port (its SERVER__WIRE_PORT, ADR 0032): the
    # unary calls (the chat path's PrepareTurn/CommitTurn among them) go there as framed
    # TCP instead of gRPC, ~1 ms less per call; unreachable = gRPC for 5 s. Empty = gRPC
    # only. make run, compose, the chart and kustomize set it
    memory_wire_addr: str = Field("", pattern=r"^$|^\[?[^\s/]+\]?:\d{1,5}$")
    # bearer token sent with every memory-service call (its SERVER__AUTH_TOKEN); unset =
    # none
    memory_token: SecretStr | None = None
    # deadline of every memory-service call on the chat path (seconds); past it the turn
    # is answered without memory
    memory_timeout_s: float = Field(2.0, gt=0)
    # deadline of memory control calls (export, erasure can take longer)
    memory_admin_timeout_s: float = Field(30.0, gt=0)
    # consecutive memory failures that open the circuit breaker
    breaker_failures: int = Field(5, ge=1)
    # seconds the breaker stays open before letting one probe call through
    breaker_cooldown_s: float = Field(10.0, gt=0)
    # rate limits are checked by the memory service; when it is unavailable: open = answer
    # the turn unlimited (and without memory), closed = refuse it (503
    # rate_limit_unavailable, Retry-After) — for deployments where an unlimited LLM bill is
    # worse than an outage
    rate_limit_fail_mode: Literal["open", "closed"] = "open"
    # largest request body accepted, in bytes (413 beyond)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # largest prompt / last user message accepted, in characters (413 beyond)
    max_prompt_chars: int = Field(32_000, ge=16)
    # token budget asked of PrepareTurn (0 = the memory service's default)
    context_token_budget: int = Field(0, ge=0)
    # true = the model named by a drop-in client is passed to the provider; false = always
    # the configured LLM__CHAT_MODEL (clients written for another vendor keep working)
    pass_client_model: bool = False
    # default system instructions of /v1/chat when the request gives none
    default_instructions: str = "You are a helpful assistant."
    # serve the web page at /
    web_ui: bool = True
    # user of requests that name none, in AUTH__MODE=none only (empty = the request must
    # name its user)
    default_user_id: str = Field("local", pattern=r"^[A-Za-z0-9._-]{0,128}$")

    @model_validator(mode="after")
    def _check_ports(self) -> GatewayServerSettings:
        if self.metrics_port == self.port:
            raise ValueError(
                f"GATEWAY__METRICS_PORT must differ from GATEWAY__PORT ({self.port}); "
                "0 serves /metrics on GATEWAY__PORT"
            )
        return self


class AuthSettings(BaseModel):
    """Who may call the gateway (``AUTH__*``)."""

    # none: user id from the request (development); api-key: keys file; jwt: bearer tokens
    mode: AuthMode = AuthMode.NONE
    # file with one `key tenant` pair per line (or `key` alone = tenant "default"); a
    # mounted Secret in Kubernetes
    api_keys_file: str | None = None
    # HS256 secret for jwt mode
    jwt_secret: SecretStr | None = None
    # JWKS document (JSON file) with the public keys of jwt mode (RS256/ES256)
    jwks_file: str | None = None
    # expected `aud` claim (unset = not checked)
    jwt_audience: str | None = None
    # expected `iss` claim (unset = not checked)
    jwt_issuer: str | None = None
    # refuse tokens without an `exp` claim (one that never expires is a credential for
    # ever); false only for long-lived service tokens you rotate yourself
    jwt_require_exp: bool = True


class GatewaySettings(CommonSettings):
    """Everything the gateway process reads from its environment."""

    gateway: GatewayServerSettings = GatewayServerSettings()
    auth: AuthSettings = AuthSettings()

    @model_validator(mode="after")
    def _check_auth(self) -> GatewaySettings:
        if self.auth.mode is AuthMode.API_KEY and not self.auth.api_keys_file:
            raise ValueError("AUTH__API_KEYS_FILE is required when AUTH__MODE=api-key")
        if self.auth.mode is AuthMode.JWT and not (self.auth.jwt_secret or self.auth.jwks_file):
            raise ValueError("AUTH__JWT_SECRET or AUTH__JWKS_FILE is required when AUTH__MODE=jwt")
        if self.environment is Environment.PROD and self.auth.mode is AuthMode.NONE:
            raise ValueError("AUTH__MODE=none is only allowed when MNEMO_ENV is dev or test")
        return self

    def secret_values(self) -> dict[str, str | None]:
        values = super().secret_values()
        secret = self.auth.jwt_secret
        values["AUTH__JWT_SECRET"] = secret.get_secret_value() if secret else None
        token = self.gateway.memory_token
        values["GATEWAY__MEMORY_TOKEN"] = token.get_secret_value() if token else None
        return values


@lru_cache(maxsize=1)
def get_settings() -> GatewaySettings:
    """The process-wide settings singleton."""
    return load_settings(GatewaySettings)
