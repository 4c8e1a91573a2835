"""``POST /v1/chat`` — seed 002's request shape, with memory; JSON or Server-Sent Events."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from mnemo_common.limits import MAX_METADATA_VALUE_BYTES
from mnemo_common.llm.base import StreamEnd, StreamEvent, TextDelta
from pydantic import BaseModel, Field
from starlette.responses import Response

from ...chat.service import PreparedTurn, TurnOutcome
from ...core.config import GatewaySettings
from ...core.errors import ApiError
from ..run import Reply, TurnContext, TurnCtx, run_turn
from ..sse import sse
from ..turns import (
    USER_HEADER,
    check_prompt_size,
    check_text,
    checked_id,
    memory_outcome,
    thread_id_of,
)

router = APIRouter(tags=["chat"])


class ChatBody(BaseModel):
    """Seed 002's ``AgentRunRequest`` plus ``stream`` and a few optional knobs."""

    prompt: str = Field(min_length=1, description="the user's new message")
    agent_name: str = "assistant"
    instructions: str | None = Field(
        None, description="system instructions; memory is appended to them"
    )
    tools: list[str] = Field(
        default_factory=list, description="accepted for seed compatibility; recorded, not executed"
    )
    thread_id: str | None = Field(None, description="continue this thread; omitted = a new one")
    user_id: str | None = Field(None, description="ignored when the credential names the user")
    stream: bool = False
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1, le=200_000)
    temperature: float | None = Field(None, ge=0, le=2)
    recall: bool = Field(True, description="false = no long-term recall for this turn")
    idempotency_key: str | None = Field(None, description="same key = the turn is stored once")


class ChatUsage(BaseModel):
    input_tokens: int
    output_tokens: int


class ChatAnswer(BaseModel):
    response: str
    thread_id: str
    user_id: str
    model: str
    provider: str
    memory: str = Field(
        description="ok | degraded (part of memory was missing, or the turn was not stored) | off"
    )
    committed: bool = Field(description="the exchange was stored in memory")
    missing: list[str] = Field(
        default_factory=list,
        description="what memory lacked: memory_service, vector_store, not_stored",
    )
    usage: ChatUsage


def _check(body: ChatBody, settings: GatewaySettings) -> None:
    check_prompt_size(check_text(body.prompt, "prompt"), settings, "prompt")
    if body.instructions is not None:
        check_text(body.instructions, "instructions")
    for i, tool in enumerate(body.tools):
        check_text(tool, f"tools.{i}")
    if len(",".join(body.tools).encode()) > MAX_METADATA_VALUE_BYTES:
        # recorded as turn metadata, which the memory service limits
        raise ApiError(
            422,
            "invalid_request",
            f"tools: the tool names may take at most {MAX_METADATA_VALUE_BYTES} bytes",
            field="tools",
        )


@router.post(
    "/v1/chat",
    response_model=ChatAnswer,
    summary="Chat with memory",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat(body: ChatBody, ctx: TurnCtx) -> Response:
    _check(body, ctx.settings)
    user = ctx.identity.memory_user_id(body.user_id or ctx.request.headers.get(USER_HEADER))
    agent = checked_id(body.agent_name, "agent_name") or "assistant"
    turn = ctx.turn(
        "chat",
        user_id=user,
        thread_id=thread_id_of(body.thread_id, "thread_id"),
        query=body.prompt,
        model=body.model,
        instructions=body.instructions or ctx.settings.gateway.default_instructions,
        client_messages=None,
        idempotency_key=body.idempotency_key,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        recall=body.recall,
        metadata={"agent_name": agent, **({"tools": ",".join(body.tools)} if body.tools else {})},
    )
    return await run_turn(ctx, turn, ChatReply(ctx, body.stream))


class ChatReply(Reply):
    """/v1/chat's answer: a :class:`ChatAnswer`, or ``start``, ``delta``, ``done`` (and
    ``error``) events."""

    def __init__(self, ctx: TurnContext, stream: bool) -> None:
        super().__init__(stream)
        self.provider = ctx.provider.name
        self.public_user = ctx.identity.public_user_id
        self.parts: list[str] = []
        self.prepared: PreparedTurn | None = None

    def document(self, prepared: PreparedTurn, out: TurnOutcome) -> dict[str, Any]:
        return ChatAnswer(
            response=out.text,
            thread_id=prepared.turn.thread_id,
            user_id=self.public_user(prepared.turn.user_id),
            model=out.model,
            provider=self.provider,
            memory=out.memory,
            committed=out.committed,
            missing=prepared.missing,
            usage=ChatUsage(
                input_tokens=out.usage.input_tokens, output_tokens=out.usage.output_tokens
            ),
        ).model_dump()

    def head(self, prepared: PreparedTurn) -> list[str]:
        self.prepared = prepared
        start: dict[str, Any] = {
            "thread_id": prepared.turn.thread_id,
            "user_id": self.public_user(prepared.turn.user_id),
            "memory": prepared.memory,
            "provider": self.provider,
            "created_at_ms": int(time.time() * 1000),
        }
        return [sse(start, "start")]

    def render(self, event: StreamEvent) -> Iterable[str]:
        if isinstance(event, TextDelta):
            self.parts.append(event.text)
            yield sse({"text": event.text}, "delta")
        elif isinstance(event, StreamEnd):
            assert self.prepared is not None
            yield sse(
                {
                    "response": "".join(self.parts),
                    "thread_id": self.prepared.turn.thread_id,
                    "user_id": self.public_user(self.prepared.turn.user_id),
                    "model": event.model,
                    "provider": self.provider,
                    **memory_outcome(self.prepared),
                    "usage": {
                        "input_tokens": event.usage.input_tokens,
                        "output_tokens": event.usage.output_tokens,
                    },
                },
                "done",
            )

    def on_error(self, err: ApiError) -> Iterable[str]:
        yield sse({**err.body(), "status": err.status}, "error")
