"""``POST /v1/responses`` — the OpenAI Responses API, with memory (text turns).

``client.responses.create(...)`` and ``client.responses.stream(...)`` of the ``openai`` SDK
work unchanged. The ``input`` messages are the conversation (the client's own history, as
with Chat Completions); Mnemo adds the user's memory to the instructions, answers through
the configured provider and commits the turn to the conversation's thread (ADR 0011, or
``X-Mnemo-Thread-Id``). Fields Mnemo cannot honour are refused (:mod:`..responses_wire`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Body, Request
from mnemo_common.ids import new_id
from mnemo_common.llm.base import StreamEnd, StreamEvent, TextDelta
from starlette.responses import JSONResponse, Response

from ...chat.fingerprint import openai_opening
from ...chat.service import TurnRequest
from ...core.errors import ApiError
from ..caller import conversation_thread, memory_user
from ..deps import Chat, CurrentIdentity, Provider, Settings
from ..responses_wire import (
    check_conversation,
    message_item,
    output_part,
    read_input,
    refuse_unhonoured,
    response_doc,
)
from ..sse import sse, start_stream, stream_response
from ..turns import idempotency_key_of, turn_headers

router = APIRouter(tags=["openai-compatible"])


def _number(body: dict[str, Any], name: str, low: float, high: float | None) -> Any:
    value = body.get(name)
    ok = value is None or (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value >= low
        and (high is None or value <= high)
    )
    if not ok:
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(422, "invalid_request", f"{name} must be a number {limit}", field=name)
    return value


@router.post("/v1/responses", summary="OpenAI Responses API (drop-in, with memory; text turns)")
async def responses(
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
    body: dict[str, Any] = Body(...),
) -> Response:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(422, "invalid_request", "model is required (a string)", field="model")
    refuse_unhonoured(body)
    max_tokens = _number(body, "max_output_tokens", 1, None)
    temperature = _number(body, "temperature", 0, 2)
    instructions_in = body.get("instructions")
    if instructions_in is not None and not isinstance(instructions_in, str):
        raise ApiError(
            422, "invalid_request", "instructions must be a string", field="instructions"
        )
    instructions, convo, flat = read_input(instructions_in, body.get("input"))
    query = check_conversation(convo, settings)
    user = memory_user(
        identity,
        request,
        ("user", body.get("user")),
        ("safety_identifier", body.get("safety_identifier")),
    )
    turn = TurnRequest(
        endpoint="responses",
        user_id=user,
        thread_id=conversation_thread(request, user, openai_opening(flat)),
        query=query,
        instructions=instructions,
        client_messages=convo,
        idempotency_key=idempotency_key_of(request),
        model=model if settings.gateway.pass_client_model else None,
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        temperature=temperature,
        started_at=request.state.started_at,
        tenant=identity.tenant,
    )
    prepared = await service.prepare(turn)
    headers = turn_headers(prepared, provider.name)
    rid, mid, created = new_id("resp_"), new_id("msg_"), int(time.time())

    if not body.get("stream"):
        out = await service.complete(prepared)
        doc = response_doc(
            body,
            response_id=rid,
            created=created,
            model=out.model,
            output=[message_item(mid, out.text, "completed")],
            stop_reason=out.stop_reason,
            usage=out.usage,
        )
        return JSONResponse(doc, headers=headers)

    first, events = await start_stream(service, prepared)
    name = provider.model_for("chat") if turn.model is None else turn.model
    seq = iter(range(1_000_000))
    parts: list[str] = []
    where = {"item_id": mid, "output_index": 0, "content_index": 0}

    def event(kind: str, **data: Any) -> str:
        return sse({"type": kind, "sequence_number": next(seq), **data}, kind)

    pending = response_doc(body, response_id=rid, created=created, model=name, output=[])

    def render(ev: StreamEvent) -> Iterable[str]:
        if isinstance(ev, TextDelta):
            parts.append(ev.text)
            yield event("response.output_text.delta", **where, delta=ev.text, logprobs=[])
        elif isinstance(ev, StreamEnd):
            text = "".join(parts)
            item = message_item(mid, text, "completed")
            yield event("response.output_text.done", **where, text=text, logprobs=[])
            yield event("response.content_part.done", **where, part=output_part(text))
            yield event("response.output_item.done", output_index=0, item=item)
            done = response_doc(
                body,
                response_id=rid,
                created=created,
                model=ev.model,
                output=[item],
                stop_reason=ev.stop_reason,
                usage=ev.usage,
            )
            kind = "response.completed" if done["status"] == "completed" else "response.incomplete"
            yield event(kind, response=done)

    def on_error(err: ApiError) -> Iterable[str]:
        doc = err.body()
        yield event(
            "error", code=err.code, message=err.message, param=err.field, error=doc["error"]
        )

    return stream_response(
        first,
        events,
        render=render,
        on_error=on_error,
        headers=headers,
        head=[
            event("response.created", response=pending),
            event("response.in_progress", response=pending),
            event(
                "response.output_item.added",
                output_index=0,
                item=message_item(mid, None, "in_progress"),
            ),
            event("response.content_part.added", **where, part=output_part("")),
        ],
    )
