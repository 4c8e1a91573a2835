"""The ``openai-compatible`` provider: the official ``openai`` SDK against any server that
speaks Chat Completions (vLLM, Ollama, llama.cpp's server, LiteLLM, OpenAI itself).

Retries and timeouts work as for Anthropic (the SDK retries 408/409/429/5xx with backoff and
honours ``retry-after``). Streams ask for usage (``stream_options.include_usage``); servers
that ignore the option get their usage estimated (``mnemo_common.tokens``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any, Literal

import openai

from ..settings import LLMSettings
from ..tokens import estimate_message_tokens, estimate_tokens
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

#: sent when no key is configured: local servers ignore it, the SDK insists on one
NO_API_KEY = "no-key"


class OpenAICompatibleProvider:
    """Chat Completions over HTTP at ``LLM__OPENAI_BASE_URL``."""

    name = "openai-compatible"
    #: the wire protocol a drop-in client body is forwarded in as sent
    protocol = "openai"

    def __init__(
        self,
        settings: LLMSettings,
        *,
        base_url: str,
        chat_model: str,
        extraction_model: str,
        api_key: str | None = None,
    ) -> None:
        self._settings = settings
        self._chat_model = chat_model
        self._extraction_model = extraction_model
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_API_KEY,
            base_url=base_url,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
        )

    def model_for(self, purpose: Literal["chat", "extraction"]) -> str:
        """``LLM__OPENAI_CHAT_MODEL`` or ``LLM__OPENAI_EXTRACTION_MODEL``."""
        return self._extraction_model if purpose == "extraction" else self._chat_model

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        if not request.messages:
            raise LLMError(
                LLMErrorKind.BAD_REQUEST, "a request needs at least one message", provider=self.name
            )
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += [{"role": m.role, "content": m.content} for m in request.messages]
        params: dict[str, Any] = {
            "model": request.model or self.model_for(request.purpose),
            "messages": messages,
            # max_tokens (not max_completion_tokens): what vLLM, Ollama and llama.cpp read
            "max_tokens": request.max_tokens or self._settings.max_tokens,
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.stop:
            params["stop"] = list(request.stop)
        if request.timeout_s is not None:
            params["timeout"] = request.timeout_s
        return params

    @staticmethod
    def _estimated_input(params: dict[str, Any]) -> int:
        return sum(estimate_message_tokens(m["content"]) for m in params["messages"])

    async def complete(self, request: ChatRequest) -> ChatResult:
        """One answer (the SDK retries transient failures)."""
        params = self._params(request)
        with observe_call(self.name, request.purpose) as record:
            response = await self._client.chat.completions.create(**params)
            if not response.choices:
                raise LLMError(
                    LLMErrorKind.UNAVAILABLE, "the server returned no choices", provider=self.name
                )
            choice = response.choices[0]
            text = choice.message.content or ""
            if response.usage is not None:
                usage = Usage(response.usage.prompt_tokens, response.usage.completion_tokens)
            else:
                usage = Usage(self._estimated_input(params), estimate_tokens(text))
            record.usage = usage
            return ChatResult(text, response.model or params["model"], usage, choice.finish_reason)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Text deltas as the model writes them, then one :class:`StreamEnd`."""
        params = self._params(request)
        with observe_call(self.name, request.purpose) as record:
            chunks = await self._client.chat.completions.create(
                **params, stream=True, stream_options={"include_usage": True}
            )
            model, finish_reason, usage = params["model"], None, None
            written: list[str] = []
            try:
                async for chunk in chunks:
                    model = chunk.model or model
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                    for choice in chunk.choices:
                        if choice.delta is not None and choice.delta.content:
                            written.append(choice.delta.content)
                            yield TextDelta(choice.delta.content)
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
            finally:
                await chunks.close()
            if finish_reason is None:
                raise LLMError(
                    LLMErrorKind.UNAVAILABLE,
                    "the stream ended before the model finished its answer",
                    provider=self.name,
                )
            if usage is None:  # server ignored stream_options.include_usage
                usage = Usage(self._estimated_input(params), estimate_tokens("".join(written)))
            record.usage = usage
            yield StreamEnd(model, usage, finish_reason)

    async def forward(
        self,
        body: dict[str, Any] | bytes,
        *,
        stream: bool,
        headers: Mapping[str, str] | None = None,
    ) -> Forwarded:
        """``POST <base>/chat/completions`` with ``body`` as given (see :mod:`.forward`)."""
        return await forward(
            self._client, self.name, "/chat/completions", body, stream=stream, headers=headers
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
