"""The LLM provider interface: one small async API, three implementations.

* :class:`LLMProvider.complete` — one answer.
* :class:`LLMProvider.stream` — :class:`TextDelta` events as text arrives, then one
  :class:`StreamEnd` (model, :class:`Usage`, stop reason).
* :class:`LLMProvider.complete_json` — structured output validated against a JSON schema.

Providers raise :class:`LLMError` (with a :class:`LLMErrorKind`) and nothing else, so callers
map failures to HTTP statuses without knowing which SDK was used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class MemoryContext:
    """What the memory service gave for this turn, structured (the offline provider answers
    from it; real providers see it rendered into ``ChatRequest.system``)."""

    summary: str = ""
    preferences: dict[str, str] = field(default_factory=dict)
    memories: Sequence[str] = ()


@dataclass(frozen=True)
class ChatRequest:
    system: str
    messages: Sequence[ChatMessage]
    # None = the provider's configured model for `purpose`
    model: str | None = None
    purpose: Literal["chat", "extraction"] = "chat"
    max_tokens: int | None = None
    temperature: float | None = None
    memory: MemoryContext | None = None
    # stop sequences: the answer ends before the first one it would write
    stop: Sequence[str] = ()
    # seconds; None = the provider's configured timeout
    timeout_s: float | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class ChatResult:
    text: str
    model: str
    usage: Usage
    stop_reason: str | None = None
    # the stop sequence that ended the answer (stop_reason "stop_sequence"), when known
    stop_sequence: str | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class StreamEnd:
    model: str
    usage: Usage
    stop_reason: str | None = None
    stop_sequence: str | None = None


StreamEvent = TextDelta | StreamEnd


class LLMErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"  # 429 after retries
    OVERLOADED = "overloaded"  # 529 / 503 after retries
    TIMEOUT = "timeout"  # no answer within LLM__TIMEOUT_S; HTTP 408/504
    UNAVAILABLE = "unavailable"  # connection refused, 5xx after retries
    AUTH = "auth"  # 401/403: bad or missing key
    BAD_REQUEST = "bad_request"  # 400/404/413/422, or a request no provider could serve
    INVALID_OUTPUT = "invalid_output"  # structured output did not match the schema


class LLMError(Exception):
    """A provider call failed; ``kind`` says how, ``message`` carries the provider's reason."""

    def __init__(
        self,
        kind: LLMErrorKind,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{provider}: {kind.value}: {message}")
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.retry_after_s = retry_after_s


@runtime_checkable
class LLMProvider(Protocol):
    #: "anthropic", "openai-compatible" or "offline"
    name: str

    def model_for(self, purpose: Literal["chat", "extraction"]) -> str: ...

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...

    async def complete_json(
        self, request: ChatRequest, schema: dict[str, Any]
    ) -> tuple[Any, Usage]: ...

    async def aclose(self) -> None: ...
