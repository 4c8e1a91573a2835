"""``POST /v1/chat/completions`` — OpenAI Chat Completions, with memory.

``openai.OpenAI(base_url=<gateway>/v1)`` works unchanged (``stream=True`` and tools
included). The user comes from the credential, ``user`` or ``safety_identifier``; the
thread from ``X-Mnemo-Thread-Id``, else the conversation's own (ADR 0011), returned in the
same header. On an OpenAI-compatible upstream the body is forwarded as sent
(:mod:`mnemo_gateway.chat.passthrough`).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ...chat.fingerprint import openai_opening
from ..caller import conversation_thread, memory_user
from ..run import TurnCtx, run_turn

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
async def completions(body: CompletionsBody, ctx: TurnCtx) -> Response:
    call = await ctx.drop_in_call("openai")
    user = memory_user(
        ctx.identity,
        ctx.request,
        ("user", body.user),
        ("safety_identifier", (body.model_extra or {}).get("safety_identifier")),
    )
    # lazily: the opening is read up to the first user message, not the whole history
    opening = openai_opening(m.model_dump() for m in body.messages)
    turn = ctx.drop_in_turn(
        "completions",
        call,
        user_id=user,
        thread_id=conversation_thread(ctx.request, user, opening),
        model=body.model,
        max_tokens=body.max_completion_tokens or body.max_tokens,
    )
    return await run_turn(ctx, turn, call)
