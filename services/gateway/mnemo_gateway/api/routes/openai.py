"""``POST /v1/chat/completions`` — OpenAI Chat Completions, with memory.

``openai.OpenAI(base_url=<gateway>/v1)`` works unchanged (``stream=True`` and tools
included). The user comes from the credential or the ``user`` field; the thread from
``X-Mnemo-Thread-Id`` (new when absent, returned in the same header). On an
OpenAI-compatible upstream the body is forwarded as sent
(:mod:`mnemo_gateway.chat.passthrough`).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ...chat import passthrough
from ...chat.service import TurnRequest
from ..deps import Chat, CurrentIdentity, Provider, Settings
from ..turns import (
    THREAD_HEADER,
    USER_HEADER,
    check_prompt_size,
    idempotency_key_of,
    thread_id_of,
)

router = APIRouter(tags=["openai-compatible"])


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class CompletionsBody(BaseModel):
    """The OpenAI Chat Completions request. Every field, listed here or not, is forwarded."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    user: str | None = None


@router.post("/v1/chat/completions", summary="OpenAI Chat Completions (drop-in, with memory)")
async def completions(
    body: CompletionsBody,
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
) -> Response:
    call = passthrough.read_call("openai", json.loads(await request.body()), request.headers)
    check_prompt_size(call.exchange.user_text, settings, "messages")
    user = identity.memory_user_id(body.user or request.headers.get(USER_HEADER), "user")
    turn = TurnRequest(
        endpoint="completions",
        user_id=user,
        thread_id=thread_id_of(request.headers.get(THREAD_HEADER), THREAD_HEADER),
        query=call.exchange.user_text,
        instructions="",
        client_messages=(),
        idempotency_key=idempotency_key_of(request),
        model=body.model if settings.gateway.pass_client_model else None,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        recall=bool(call.exchange.user_text.strip()),
        started_at=request.state.started_at,
    )
    return await passthrough.answer(
        call, lambda: service.prepare(turn), service, provider, settings
    )
