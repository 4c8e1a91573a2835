"""``POST /v1/chat/completions`` — OpenAI Chat Completions, with memory.

``openai.OpenAI(base_url=<gateway>/v1)`` works unchanged (``stream=True`` included, ending
with ``data: [DONE]``). The user comes from the credential or the ``user`` field; the
thread from ``X-Mnemo-Thread-Id`` (new when absent, returned in the same header).
"""

from __future__ import annotations

import json
import time
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
from ..sse import sse, sse_comment, start_stream, stream_response
from ..turns import (
    OPENAI_UNSUPPORTED,
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

router = APIRouter(tags=["openai-compatible"])


class OpenAIMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class CompletionsBody(BaseModel):
    """The OpenAI Chat Completions request (fields Mnemo does not use are accepted)."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[OpenAIMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    user: str | None = None
    n: int = Field(1, ge=1, le=1)
    tools: list[dict[str, Any]] | None = None


def finish_reason(reason: str | None) -> str:
    return {"max_tokens": "length", "end_turn": "stop", None: "stop"}.get(reason, reason or "stop")


@router.post("/v1/chat/completions", summary="OpenAI Chat Completions (drop-in, with memory)")
async def completions(
    body: CompletionsBody,
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
) -> Response:
    system_parts: list[str] = []
    convo: list[ChatMessage] = []
    for i, msg in enumerate(body.messages):
        text = content_text(msg.content, f"messages.{i}.content")
        if msg.role in ("system", "developer"):
            system_parts.append(text)
        elif msg.role in ("user", "assistant"):
            convo.append(ChatMessage(msg.role, text))
        else:
            raise ApiError(
                422,
                "unsupported_feature",
                f"role {msg.role!r} is not supported",
                field=f"messages.{i}.role",
            )
    refuse_unsupported(body.model_extra, OPENAI_UNSUPPORTED)
    query = check_conversation(convo, body.tools, settings)
    user = identity.memory_user_id(body.user or request.headers.get(USER_HEADER), "user")
    turn = TurnRequest(
        endpoint="completions",
        user_id=user,
        thread_id=thread_id_of(request.headers.get(THREAD_HEADER), THREAD_HEADER),
        query=query,
        instructions="\n\n".join(system_parts),
        client_messages=convo,
        idempotency_key=idempotency_key_of(request),
        model=body.model if settings.gateway.pass_client_model else None,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        started_at=request.state.started_at,
        tenant=identity.tenant,
    )
    prepared = await service.prepare(turn)
    headers = turn_headers(prepared, provider.name)
    cid, created = new_id("chatcmpl-"), int(time.time())

    if not body.stream:
        out = await service.complete(prepared)
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": out.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": out.text},
                        "finish_reason": finish_reason(out.stop_reason),
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": out.usage.input_tokens,
                    "completion_tokens": out.usage.output_tokens,
                    "total_tokens": out.usage.input_tokens + out.usage.output_tokens,
                },
            },
            headers=turn_headers(prepared, provider.name),  # after the commit
        )

    first, events = await start_stream(service, prepared)
    model = provider.model_for("chat") if turn.model is None else turn.model
    include_usage = bool((body.stream_options or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def render(event: StreamEvent) -> Iterable[str]:
        if isinstance(event, TextDelta):
            yield sse(chunk({"content": event.text}, None))
        elif isinstance(event, StreamEnd):
            yield sse(chunk({}, finish_reason(event.stop_reason)))
            if include_usage:
                u = event.usage
                yield sse(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": {
                            "prompt_tokens": u.input_tokens,
                            "completion_tokens": u.output_tokens,
                            "total_tokens": u.input_tokens + u.output_tokens,
                        },
                    }
                )

    def on_error(err: ApiError) -> Iterable[str]:
        yield sse(err.body())

    return stream_response(
        first,
        events,
        render=render,
        on_error=on_error,
        headers=headers,
        head=[sse(chunk({"role": "assistant", "content": ""}, None))],
        # after the commit: an SSE comment (every parser skips it) with the final status
        tail=lambda: [sse_comment("mnemo " + json.dumps(memory_outcome(prepared))), sse("[DONE]")],
    )
