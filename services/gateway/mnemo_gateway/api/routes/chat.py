"""``POST /v1/chat`` — seed 002's request shape, with memory; JSON or Server-Sent Events."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Request
from mnemo_common.limits import MAX_METADATA_VALUE_BYTES
from mnemo_common.llm.base import StreamEnd, StreamEvent, TextDelta
from pydantic import BaseModel, Field
from starlette.responses import JSONResponse, Response

from ...chat.service import TurnRequest
from ...core.errors import ApiError
from ..deps import Chat, CurrentIdentity, Provider, Settings
from ..sse import sse, start_stream, stream_response
from ..turns import (
    USER_HEADER,
    check_prompt_size,
    check_text,
    checked_id,
    idempotency_key_of,
    memory_outcome,
    thread_id_of,
    turn_headers,
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


@router.post(
    "/v1/chat",
    response_model=ChatAnswer,
    summary="Chat with memory",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat(
    body: ChatBody,
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
) -> Response:
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
    user = identity.memory_user_id(body.user_id or request.headers.get(USER_HEADER))
    agent = checked_id(body.agent_name, "agent_name") or "assistant"
    turn = TurnRequest(
        endpoint="chat",
        user_id=user,
        thread_id=thread_id_of(body.thread_id, "thread_id"),
        query=body.prompt,
        instructions=body.instructions or settings.gateway.default_instructions,
        client_messages=None,
        idempotency_key=idempotency_key_of(request, body.idempotency_key),
        model=body.model if settings.gateway.pass_client_model else None,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        recall=body.recall,
        metadata={"agent_name": agent, **({"tools": ",".join(body.tools)} if body.tools else {})},
        started_at=request.state.started_at,
        tenant=identity.tenant,
    )
    prepared = await service.prepare(turn)
    headers = turn_headers(prepared, provider.name)
    public_user = identity.public_user_id(user)

    if not body.stream:
        out = await service.complete(prepared)
        answer = ChatAnswer(
            response=out.text,
            thread_id=turn.thread_id,
            user_id=public_user,
            model=out.model,
            provider=provider.name,
            memory=out.memory,
            committed=out.committed,
            missing=prepared.missing,
            usage=ChatUsage(
                input_tokens=out.usage.input_tokens, output_tokens=out.usage.output_tokens
            ),
        )
        # after the commit: the header says degraded when the turn was not stored
        return JSONResponse(answer.model_dump(), headers=turn_headers(prepared, provider.name))

    first, events = await start_stream(service, prepared)
    parts: list[str] = []

    def render(event: StreamEvent) -> Iterable[str]:
        if isinstance(event, TextDelta):
            parts.append(event.text)
            yield sse({"text": event.text}, "delta")
        elif isinstance(event, StreamEnd):
            yield sse(
                {
                    "response": "".join(parts),
                    "thread_id": turn.thread_id,
                    "user_id": public_user,
                    "model": event.model,
                    "provider": provider.name,
                    **memory_outcome(prepared),
                    "usage": {
                        "input_tokens": event.usage.input_tokens,
                        "output_tokens": event.usage.output_tokens,
                    },
                },
                "done",
            )

    def on_error(err: ApiError) -> Iterable[str]:
        yield sse({**err.body(), "status": err.status}, "error")

    start: dict[str, Any] = {
        "thread_id": turn.thread_id,
        "user_id": public_user,
        "memory": prepared.memory,
        "provider": provider.name,
        "created_at_ms": int(time.time() * 1000),
    }
    return stream_response(
        first, events, head=[sse(start, "start")], render=render, on_error=on_error, headers=headers
    )
