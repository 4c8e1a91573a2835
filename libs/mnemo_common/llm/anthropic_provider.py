"""The ``anthropic`` provider: the official SDK's ``AsyncAnthropic`` client.

Retries (429, 5xx, 529 overloaded, connection errors, timeouts) are the SDK's own: it
backs off exponentially and honours ``retry-after`` / ``retry-after-ms``. ``LLM__TIMEOUT_S``
bounds each attempt, ``LLM__MAX_RETRIES`` the number of retries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any, Literal

import anthropic

from ..settings import LLMSettings
from ._support import (
    check_schema,
    join_system,
    json_instructions,
    observe_call,
    structured_reply,
)
from .base import (
    ChatRequest,
    ChatResult,
    LLMError,
    LLMErrorKind,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)
from .forward import Forwarded, forward


class AnthropicProvider:
    """Claude through the Messages API."""

    name = "anthropic"
    #: the wire protocol a drop-in client body is forwarded in as sent
    protocol = "anthropic"

    def __init__(self, settings: LLMSettings, api_key: str) -> None:
        self._settings = settings
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=settings.anthropic_base_url or None,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    def model_for(self, purpose: Literal["chat", "extraction"]) -> str:
        """``LLM__CHAT_MODEL`` or ``LLM__EXTRACTION_MODEL``."""
        if purpose == "extraction":
            return self._settings.extraction_model
        return self._settings.chat_model

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        if not request.messages:
            raise LLMError(
                LLMErrorKind.BAD_REQUEST, "a request needs at least one message", provider=self.name
            )
        params: dict[str, Any] = {
            "model": request.model or self.model_for(request.purpose),
            "max_tokens": request.max_tokens or self._settings.max_tokens,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            params["system"] = request.system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        # The Messages API of current models (SDK 2.x) takes no sampling temperature:
        # ChatRequest.temperature applies to OpenAI-compatible servers only.
        if request.timeout_s is not None:
            params["timeout"] = request.timeout_s
        return params

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One answer (the SDK retries transient failures)."""
        params = self._params(request)
        with observe_call(self.name, request.purpose) as record:
            message = await self._client.messages.create(**params)
            text = "".join(block.text for block in message.content if block.type == "text")
            record.usage = Usage(message.usage.input_tokens, message.usage.output_tokens)
            return ChatResult(text, message.model, record.usage, message.stop_reason)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Text deltas as the model writes them, then one :class:`StreamEnd`."""
        params = self._params(request)
        with observe_call(self.name, request.purpose) as record:
            events = await self._client.messages.create(**params, stream=True)
            try:
                model, stop_reason, finished = params["model"], None, False
                input_tokens = output_tokens = 0
                async for event in events:
                    if event.type == "content_block_delta" and event.delta.type == "text_delta":
                        yield TextDelta(event.delta.text)
                    elif event.type == "message_start":
                        model = event.message.model
                        input_tokens = event.message.usage.input_tokens
                        output_tokens = event.message.usage.output_tokens
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason
                        output_tokens = event.usage.output_tokens
                        input_tokens = event.usage.input_tokens or input_tokens
                    elif event.type == "message_stop":
                        finished = True
            finally:
                await events.close()
            if not finished:
                raise LLMError(
                    LLMErrorKind.UNAVAILABLE,
                    "the stream ended before the model finished its answer",
                    provider=self.name,
                )
            record.usage = Usage(input_tokens, output_tokens)
            yield StreamEnd(model, record.usage, stop_reason)

    async def forward(
        self,
        body: dict[str, Any] | bytes,
        *,
        stream: bool,
        headers: Mapping[str, str] | None = None,
    ) -> Forwarded:
        """``POST /v1/messages`` with ``body`` as given (see :mod:`.forward`)."""
        return await forward(
            self._client, self.name, "/v1/messages", body, stream=stream, headers=headers
        )

    async def complete_json(
        self, request: ChatRequest, schema: dict[str, Any]
    ) -> tuple[Any, Usage]:
        """A JSON value validated against ``schema`` (``INVALID_OUTPUT`` otherwise)."""
        check_schema(schema, self.name)
        result = await self.complete(
            replace(request, system=join_system(request.system, json_instructions(schema)))
        )
        return structured_reply(result.text, result.stop_reason, schema, self.name), result.usage

    async def aclose(self) -> None:
        """Close the SDK's HTTP connection pool."""
        await self._client.close()
