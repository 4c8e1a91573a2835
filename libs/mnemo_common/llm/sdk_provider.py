"""What the two SDK-backed providers do alike, written once: forwarding a drop-in body as
sent, structured (JSON) replies, closing the SDK's connection pool."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import anthropic
import openai

from ._support import check_schema, join_system, json_instructions, structured_reply
from .base import ChatRequest, ChatResult, Usage
from .forward import Forwarded, close_wires, forward


class SdkProvider(ABC):
    """Base of :class:`~.anthropic_provider.AnthropicProvider` and
    :class:`~.openai_provider.OpenAICompatibleProvider`."""

    name: str
    #: the API path, below the client's base URL, a drop-in body is forwarded to
    forward_path: str
    _client: anthropic.AsyncAnthropic | openai.AsyncOpenAI

    @abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResult: ...

    async def forward(
        self,
        body: dict[str, Any] | bytes,
        *,
        stream: bool,
        headers: Mapping[str, str] | None = None,
    ) -> Forwarded:
        """``POST <base URL><forward_path>`` with ``body`` as given (see :mod:`.forward`)."""
        return await forward(
            self._client, self.name, self.forward_path, body, stream=stream, headers=headers
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
        """Close the SDK's HTTP connection pool (and the forwarding sessions)."""
        await close_wires(self._client)
        await self._client.close()
