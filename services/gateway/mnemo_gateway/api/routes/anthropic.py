"""``POST /v1/messages`` — the Anthropic Messages API, with memory.

``anthropic.Anthropic(base_url=<gateway>)`` works unchanged, streaming and tools included.
The client's own ``messages`` are the conversation; Mnemo adds the user's memory to
``system`` and stores the exchange in the thread named by ``X-Mnemo-Thread-Id``, else in the
conversation's own thread (ADR 0011); its id comes back in the same response header. On an
Anthropic upstream the body is forwarded as sent (:mod:`mnemo_gateway.chat.passthrough`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ...chat.fingerprint import anthropic_opening
from ..caller import conversation_thread, memory_user
from ..run import TurnCtx, run_turn

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
async def messages(body: MessagesBody, ctx: TurnCtx) -> Response:
    call = await ctx.drop_in_call("anthropic")
    user = memory_user(
        ctx.identity, ctx.request, ("metadata.user_id", (body.metadata or {}).get("user_id"))
    )
    # lazily: the opening is read up to the first user message, not the whole history
    opening = anthropic_opening(body.system, (m.model_dump() for m in body.messages))
    turn = ctx.drop_in_turn(
        "messages",
        call,
        user_id=user,
        thread_id=conversation_thread(ctx.request, user, opening),
        model=body.model,
        max_tokens=body.max_tokens,
    )
    return await run_turn(ctx, turn, call)
