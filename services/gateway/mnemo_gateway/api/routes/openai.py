"""``POST /v1/chat/completions`` — OpenAI Chat Completions, with memory.

``openai.OpenAI(base_url=<gateway>/v1)`` works unchanged (``stream=True`` and tools
included). The user comes from the credential, ``user`` or ``safety_identifier``; the
thread from ``X-Mnemo-Thread-Id``, else the conversation's own (ADR 0011), returned in the
same header. On an OpenAI-compatible upstream the body is forwarded as sent
(:mod:`mnemo_gateway.chat.passthrough`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ...chat import passthrough
from ...chat.fingerprint import openai_opening
from ...chat.service import TurnRequest
from ..caller import conversation_thread, memory_user
from ..deps import Chat, CurrentIdentity, Provider, Settings
from ..turns import check_prompt_size, idempotency_key_of

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
    user: Any = None  # checked by caller.requested_user: a non-string is 422 naming it


@router.post("/v1/chat/completions", summary="OpenAI Chat Completions (drop-in, with memory)")
async def completions(
    body: CompletionsBody,
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
) -> Response:
    call = passthrough.read_call(
        "openai", await request.json(), request.headers, await request.body()
    )
    check_prompt_size(call.exchange.user_text, settings, "messages")
    user = memory_user(
        identity,
        request,
        ("user", body.user),
        ("safety_identifier", (body.model_extra or {}).get("safety_identifier")),
    )
    opening = openai_opening([m.model_dump() for m in body.messages])
    turn = TurnRequest(
        endpoint="completions",
        user_id=user,
        thread_id=conversation_thread(request, user, opening),
        query=call.exchange.user_text,
        instructions="",
        client_messages=(),
        idempotency_key=idempotency_key_of(request),
        model=body.model if settings.gateway.pass_client_model else None,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        recall=bool(call.exchange.user_text.strip()),
        started_at=request.state.started_at,
        tenant=identity.tenant,
    )
    return await passthrough.answer(
        call, lambda: service.prepare(turn), service, provider, settings
    )
