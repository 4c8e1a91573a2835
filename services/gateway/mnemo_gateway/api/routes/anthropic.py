"""``POST /v1/messages`` — the Anthropic Messages API, with memory.

``anthropic.Anthropic(base_url=<gateway>)`` works unchanged, streaming included. The
client's own ``messages`` are the conversation; Mnemo adds the user's memory to ``system``
and stores the new exchange in the thread named by ``X-Mnemo-Thread-Id`` (a new thread
when absent; its id comes back in the same response header).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from fastapi import APIRouter, Request
from mnemo_common.ids import new_id
from mnemo_common.llm.base import ChatMessage, StreamEnd, StreamEvent, TextDelta
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from ...chat.service import TurnRequest
from ...core.errors import ApiError
from ..deps import Chat, CurrentIdentity, Provider, Settings
from ..sse import sse, start_stream, stream_response
from ..turns import (
    ANTHROPIC_UNSUPPORTED,
    THREAD_HEADER,
    USER_HEADER,
    check_conversation,
    content_text,
    idempotency_key_of,
    memory_outcome,
    refuse_unsupported,
    thread_id_of,
    turn_headers,
)

router = APIRouter(tags=["anthropic-compatible"])


class AnthropicMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesBody(BaseModel):
    """The Anthropic Messages request (fields Mnemo does not use are accepted)."""

    model_config = ConfigDict(extra="allow")

    model: str
    max_tokens: int = Field(ge=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=1)
    metadata: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None


def stop_reason_anthropic(reason: str | None) -> str:
    return {"length": "max_tokens", "stop": "end_turn", None: "end_turn"}.get(
        reason, reason or "end_turn"
    )


@router.post("/v1/messages", summary="Anthropic Messages API (drop-in, with memory)")
async def messages(
    body: MessagesBody,
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
) -> Response:
    convo = [
        ChatMessage(m.role, content_text(m.content, f"messages.{i}.content"))
        for i, m in enumerate(body.messages)
    ]
    refuse_unsupported(body.model_extra, ANTHROPIC_UNSUPPORTED)
    query = check_conversation(convo, body.tools, settings)
    requested_user = (body.metadata or {}).get("user_id") or request.headers.get(USER_HEADER)
    user = identity.memory_user_id(requested_user, "metadata.user_id")
    turn = TurnRequest(
        endpoint="messages",
        user_id=user,
        thread_id=thread_id_of(request.headers.get(THREAD_HEADER), THREAD_HEADER),
        query=query,
        instructions=content_text(body.system, "system"),
        client_messages=convo,
        idempotency_key=idempotency_key_of(request),
        model=body.model if settings.gateway.pass_client_model else None,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        started_at=request.state.started_at,
        tenant=identity.tenant,
    )
    prepared = await service.prepare(turn)
    headers = turn_headers(prepared, provider.name)
    msg_id = new_id("msg_")

    if not body.stream:
        out = await service.complete(prepared)
        return JSONResponse(
            {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": out.model,
                "content": [{"type": "text", "text": out.text}],
                "stop_reason": stop_reason_anthropic(out.stop_reason),
                "stop_sequence": None,
                "usage": {
                    "input_tokens": out.usage.input_tokens,
                    "output_tokens": out.usage.output_tokens,
                },
            },
            headers=turn_headers(prepared, provider.name),  # after the commit
        )

    first, events = await start_stream(service, prepared)
    model = provider.model_for("chat") if turn.model is None else turn.model
    start = {
        "type": "message_start",
        "message": {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        },
    }
    block_start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }

    def render(event: StreamEvent) -> Iterable[str]:
        if isinstance(event, TextDelta):
            yield sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": event.text},
                },
                "content_block_delta",
            )
        elif isinstance(event, StreamEnd):
            yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
            yield sse(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": stop_reason_anthropic(event.stop_reason),
                        "stop_sequence": None,
                    },
                    "usage": {
                        "input_tokens": event.usage.input_tokens,
                        "output_tokens": event.usage.output_tokens,
                    },
                },
                "message_delta",
            )
            # after the commit: an event type the SDKs skip (Anthropic: unknown events are
            # to be ignored) carrying the final X-Mnemo-Memory
            yield sse({"type": "mnemo", **memory_outcome(prepared)}, "mnemo")
            yield sse({"type": "message_stop"}, "message_stop")

    def on_error(err: ApiError) -> Iterable[str]:
        yield sse(err.body(), "error")

    return stream_response(
        first,
        events,
        on_error=on_error,
        render=render,
        headers=headers,
        head=[
            sse(start, "message_start"),
            sse(block_start, "content_block_start"),
            sse({"type": "ping"}, "ping"),
        ],
    )
