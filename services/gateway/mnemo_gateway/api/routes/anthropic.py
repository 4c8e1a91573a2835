"""``POST /v1/messages`` — the Anthropic Messages API, with memory.

``anthropic.Anthropic(base_url=<gateway>)`` works unchanged, streaming and tools included.
The client's own ``messages`` are the conversation; Mnemo adds the user's memory to
``system`` and stores the exchange in the thread named by ``X-Mnemo-Thread-Id``, else in the
conversation's own thread (ADR 0011); its id comes back in the same response header. On an
Anthropic upstream the body is forwarded as sent (:mod:`mnemo_gateway.chat.passthrough`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ...chat import passthrough
from ...chat.fingerprint import anthropic_opening
from ...chat.service import TurnRequest
from ..caller import conversation_thread, memory_user
from ..deps import Chat, CurrentIdentity, Provider, Settings
from ..turns import check_prompt_size, idempotency_key_of

router = APIRouter(tags=["anthropic-compatible"])


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesBody(BaseModel):
    """The Anthropic Messages request. Every field, listed here or not, is forwarded."""

    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None


@router.post("/v1/messages", summary="Anthropic Messages API (drop-in, with memory)")
async def messages(
    body: MessagesBody,
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
) -> Response:
    call = passthrough.read_call(
        "anthropic", await request.json(), request.headers, await request.body()
    )
    check_prompt_size(call.exchange.user_text, settings, "messages")
    user = memory_user(
        identity, request, ("metadata.user_id", (body.metadata or {}).get("user_id"))
    )
    opening = anthropic_opening(body.system, [m.model_dump() for m in body.messages])
    turn = TurnRequest(
        endpoint="messages",
        user_id=user,
        thread_id=conversation_thread(request, user, opening),
        query=call.exchange.user_text,
        instructions="",
        client_messages=(),
        idempotency_key=idempotency_key_of(request),
        model=body.model if settings.gateway.pass_client_model else None,
        max_tokens=body.max_tokens,
        recall=bool(call.exchange.user_text.strip()),
        started_at=request.state.started_at,
        tenant=identity.tenant,
    )
    return await passthrough.answer(
        call, lambda: service.prepare(turn), service, provider, settings
    )
