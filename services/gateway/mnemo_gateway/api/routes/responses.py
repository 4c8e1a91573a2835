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

from fastapi import APIRouter, Body
from mnemo_common.ids import new_id
from mnemo_common.llm.base import StreamEnd, StreamEvent, TextDelta
from starlette.responses import Response

from ...chat.fingerprint import openai_opening
from ...chat.service import PreparedTurn, TurnOutcome
from ...core.errors import ApiError
from ..caller import conversation_thread, memory_user
from ..responses_wire import (
    check_conversation,
    message_item,
    output_part,
    read_input,
    refuse_unhonoured,
    response_doc,
)
from ..run import Reply, TurnContext, TurnCtx, run_turn
from ..sse import sse

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


def _options(body: dict[str, Any]) -> tuple[str, Any, Any]:
    """``model``, ``max_output_tokens`` and ``temperature``, checked; what Mnemo cannot
    honour refused (422 naming the field)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(422, "invalid_request", "model is required (a string)", field="model")
    refuse_unhonoured(body)
    return model, _number(body, "max_output_tokens", 1, None), _number(body, "temperature", 0, 2)


def _instructions(body: dict[str, Any]) -> str | None:
    value = body.get("instructions")
    if value is not None and not isinstance(value, str):
        raise ApiError(
            422, "invalid_request", "instructions must be a string", field="instructions"
        )
    return value


@router.post("/v1/responses", summary="OpenAI Responses API (drop-in, with memory; text turns)")
async def responses(ctx: TurnCtx, body: dict[str, Any] = Body(...)) -> Response:
    model, max_tokens, temperature = _options(body)
    instructions, convo, flat = read_input(_instructions(body), body.get("input"))
    query = check_conversation(convo, ctx.settings)
    user = memory_user(
        ctx.identity,
        ctx.request,
        ("user", body.get("user")),
        ("safety_identifier", body.get("safety_identifier")),
    )
    turn = ctx.turn(
        "responses",
        user_id=user,
        thread_id=conversation_thread(ctx.request, user, openai_opening(flat)),
        query=query,
        model=model,
        instructions=instructions,
        client_messages=convo,
        max_tokens=int(max_tokens) if max_tokens is not None else None,
        temperature=temperature,
    )
    return await run_turn(ctx, turn, ResponsesReply(ctx, body))


class ResponsesReply(Reply):
    """/v1/responses' answer: a Response object, or its ``response.*`` event stream."""

    def __init__(self, ctx: TurnContext, body: dict[str, Any]) -> None:
        super().__init__(bool(body.get("stream")))
        self.body, self.provider = body, ctx.provider
        self.rid, self.mid, self.created = new_id("resp_"), new_id("msg_"), int(time.time())
        self.seq = iter(range(1_000_000))
        self.parts: list[str] = []
        self.where = {"item_id": self.mid, "output_index": 0, "content_index": 0}

    def _doc(self, model: str, output: list[dict[str, Any]], **end: Any) -> dict[str, Any]:
        return response_doc(
            self.body, response_id=self.rid, created=self.created, model=model, output=output, **end
        )

    def _event(self, kind: str, **data: Any) -> str:
        return sse({"type": kind, "sequence_number": next(self.seq), **data}, kind)

    def document(self, prepared: PreparedTurn, out: TurnOutcome) -> dict[str, Any]:
        item = message_item(self.mid, out.text, "completed")
        return self._doc(out.model, [item], stop_reason=out.stop_reason, usage=out.usage)

    def head(self, prepared: PreparedTurn) -> list[str]:
        model = prepared.turn.model
        pending = self._doc(self.provider.model_for("chat") if model is None else model, [])
        return [
            self._event("response.created", response=pending),
            self._event("response.in_progress", response=pending),
            self._event(
                "response.output_item.added",
                output_index=0,
                item=message_item(self.mid, None, "in_progress"),
            ),
            self._event("response.content_part.added", **self.where, part=output_part("")),
        ]

    def render(self, ev: StreamEvent) -> Iterable[str]:
        where = self.where
        if isinstance(ev, TextDelta):
            self.parts.append(ev.text)
            yield self._event("response.output_text.delta", **where, delta=ev.text, logprobs=[])
        elif isinstance(ev, StreamEnd):
            text = "".join(self.parts)
            item = message_item(self.mid, text, "completed")
            yield self._event("response.output_text.done", **where, text=text, logprobs=[])
            yield self._event("response.content_part.done", **where, part=output_part(text))
            yield self._event("response.output_item.done", output_index=0, item=item)
            done = self._doc(ev.model, [item], stop_reason=ev.stop_reason, usage=ev.usage)
            kind = "response.completed" if done["status"] == "completed" else "response.incomplete"
            yield self._event(kind, response=done)

    def on_error(self, err: ApiError) -> Iterable[str]:
        yield self._event(
            "error", code=err.code, message=err.message, param=err.field, error=err.body()["error"]
        )
