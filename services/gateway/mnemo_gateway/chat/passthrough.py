"""The drop-in endpoints' answer: forward as sent, translate, or answer offline.

* Client and upstream speak the same protocol (Anthropic → ``anthropic``, OpenAI →
  ``openai-compatible``): the client's JSON body is forwarded as sent, with only the memory
  context appended to its system prompt and the model name per
  ``GATEWAY__PASS_CLIENT_MODEL``; the upstream's status, body and SSE bytes come back
  unchanged (frame by frame), its response headers too, plus Mnemo's ``X-Mnemo-*``.
* Different protocols: the request is translated (:mod:`.translate`, 422 for what has no
  faithful counterpart) and the answer re-rendered (:mod:`.render`).
* The offline provider: the body flattened to text (:func:`.conversation.offline_request`).

The turn is remembered once the model gives its final answer (no tool calls): the user's
text, the final text and a compact record of the exchange's tool calls (ADR 0010).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from mnemo_common.llm._support import kind_for_status
from mnemo_common.llm.base import (
    ChatRequest,
    LLMError,
    LLMErrorKind,
    LLMProvider,
    StreamEnd,
    TextDelta,
)
from starlette.responses import Response, StreamingResponse

from ..api.turns import memory_outcome, turn_headers
from ..core import metrics as m
from ..core.config import GatewaySettings
from ..core.errors import ApiError, from_llm
from .answer import (
    Answer,
    AnswerBuilder,
    AnswerEvent,
    AnthropicStreamReader,
    OpenAIStreamReader,
    SSESplitter,
    ToolStart,
    answer_from_anthropic,
    answer_from_openai,
)
from .conversation import (
    Exchange,
    Protocol,
    add_memory,
    check_messages,
    check_strings,
    offline_request,
    read_exchange,
    split_stored_answer,
    stored_answer,
    tool_record,
)
from .prompt import build_system_prompt, memory_context
from .render import (
    SSE_HEADERS,
    AnthropicStreamWriter,
    OpenAIStreamWriter,
    anthropic_doc,
    openai_doc,
    sse,
    sse_comment,
)
from .service import ChatService, PreparedTurn
from .translate import anthropic_to_openai, openai_to_anthropic, refuse

log = logging.getLogger(__name__)

#: client request headers that are part of the request's meaning (the Anthropic SDK sends
#: ``betas``, ``user_profile_id`` and ``workspace_id`` as these), forwarded with the body to a
#: same-protocol upstream; across protocols they are refused naming the SDK's field
FORWARDED_REQUEST_HEADERS = {
    "anthropic-beta": "betas",
    "anthropic-user-profile-id": "user_profile_id",
    "anthropic-workspace-id": "workspace_id",
}


@dataclass
class DropInCall:
    """A validated drop-in request: the client's body as sent, and what Mnemo reads of it."""

    protocol: Protocol
    body: dict[str, Any]
    exchange: Exchange
    headers: dict[str, str]
    #: the request body's bytes, forwarded as they are when Mnemo changes nothing
    raw: bytes | None = None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


def read_call(
    protocol: Protocol, body: Any, headers: Mapping[str, str], raw: bytes | None = None
) -> DropInCall:
    """Validate what Mnemo needs of ``body`` (422 naming the field otherwise); ``raw`` is
    its encoded form as the client sent it."""
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_request", "the body must be a JSON object", field="body")
    check_strings(body)
    messages = check_messages(body)
    kept = {k: v for k in FORWARDED_REQUEST_HEADERS if (v := headers.get(k)) is not None}
    return DropInCall(protocol, body, read_exchange(protocol, messages), kept, raw)


async def answer(
    call: DropInCall,
    prepare: Any,
    service: ChatService,
    provider: LLMProvider,
    settings: GatewaySettings,
) -> Response:
    """Answer ``call``; ``prepare`` is the route's ``service.prepare(turn)`` awaitable
    factory, run only after the request is known to be translatable."""
    upstream: Protocol | None = getattr(provider, "protocol", None)
    client_model = str(call.body.get("model", ""))
    model = client_model if settings.gateway.pass_client_model else provider.model_for("chat")
    body: dict[str, Any] | None
    if upstream == call.protocol:
        body = {**call.body, "model": model}
    elif upstream is not None and call.headers:
        name = next(iter(call.headers))
        raise refuse(FORWARDED_REQUEST_HEADERS[name], f"the {name} header")
    elif upstream == "openai":
        body = anthropic_to_openai(call.body, model)
    elif upstream == "anthropic":
        body = openai_to_anthropic(call.body, model, settings.llm.max_tokens)
    else:
        body = None
    prepared: PreparedTurn = await prepare()
    run = _Run(call, prepared, service, provider, upstream, model)
    if prepared.replay is not None:
        text = split_stored_answer(prepared.replay.assistant_message.content)
        prepared.committed = True
        return await run.rendered(_single(Answer(text, model=model, stop_reason="end_turn")))
    memory = build_system_prompt("", prepared.context, include_history=False)
    if body is None or upstream is None:
        return await run.rendered(_offline_events(call, prepared, provider, memory))
    body = add_memory(upstream, body, memory)
    payload: dict[str, Any] | bytes = body
    unchanged = not memory and upstream == call.protocol and call.body.get("model") == model
    if unchanged and call.raw is not None:
        payload = call.raw  # nothing to add: the client's bytes, not a re-encoding
    try:
        forwarded = await provider.forward(payload, stream=call.stream, headers=call.headers)  # type: ignore[attr-defined]
    except LLMError as err:
        raise run.failed(err) from err
    if forwarded.status >= 400:
        return run.upstream_error(forwarded.status, forwarded.content, forwarded.headers)
    same = upstream == call.protocol
    if not call.stream:
        try:
            doc = json.loads(forwarded.content or b"{}")
        except ValueError:  # not ours to judge: returned as sent, nothing to remember
            doc = {"stop_reason": "tool_use"}
        result = answer_from_anthropic(doc) if upstream == "anthropic" else answer_from_openai(doc)
        run.first_token()
        await run.finish(result)
        if same:
            return Response(forwarded.content, 200, headers={**forwarded.headers, **run.headers})
        return run.document(result)
    assert forwarded.chunks is not None
    if same:
        return run.raw_stream(forwarded)
    return await run.rendered(_translated_events(forwarded, upstream), own_stream=forwarded)


def _single(result: Answer) -> AsyncIterator[AnswerEvent]:
    async def events() -> AsyncIterator[AnswerEvent]:
        if result.text:
            yield TextDelta(result.text)
        yield StreamEnd(result.model, result.usage, result.stop_reason, result.stop_sequence)

    return events()


async def _offline_events(
    call: DropInCall, prepared: PreparedTurn, provider: LLMProvider, memory: str
) -> AsyncIterator[AnswerEvent]:
    system, messages, max_tokens, stop = offline_request(call.protocol, call.body)
    request = ChatRequest(
        system="\n\n".join(p for p in (system, memory) if p),
        messages=messages,
        max_tokens=max_tokens,
        stop=stop,
        memory=memory_context(prepared.context),
    )
    async for event in provider.stream(request):
        yield event


async def _translated_events(forwarded: Any, upstream: Protocol) -> AsyncIterator[AnswerEvent]:
    reader = AnthropicStreamReader() if upstream == "anthropic" else OpenAIStreamReader()
    splitter = SSESplitter()
    async for chunk in forwarded.chunks:
        for frame in splitter.feed(chunk):
            for event in reader.read(frame):
                yield event
            if reader.error is not None:
                error = reader.error.get("error") or {}
                raise LLMError(
                    LLMErrorKind.UNAVAILABLE,
                    str(error.get("message") or "the model failed mid-stream"),
                    provider=upstream,
                )


class _Run:
    """One drop-in answer in progress: headers, metrics, the commit."""

    def __init__(
        self,
        call: DropInCall,
        prepared: PreparedTurn,
        service: ChatService,
        provider: LLMProvider,
        upstream: Protocol | None,
        model: str,
    ) -> None:
        self.call, self.prepared, self.service, self.provider = call, prepared, service, provider
        self.upstream, self.model = upstream, model
        self._first = False

    @property
    def headers(self) -> dict[str, str]:
        """The X-Mnemo-* headers as of now: taken after the commit for a document (so a
        turn that was not stored says ``degraded``), before it for a stream, which then
        ends with :meth:`outcome_frame`."""
        return turn_headers(self.prepared, self.provider.name)

    def outcome_frame(self) -> str:
        """The turn's final memory status, after the commit, just before the stream's
        terminal frame: Anthropic ``event: mnemo`` (clients skip unknown events), OpenAI
        an SSE comment (every parser skips it; a data frame would break the SDKs)."""
        outcome = memory_outcome(self.prepared)
        if self.call.protocol == "anthropic":
            return sse({"type": "mnemo", **outcome}, "mnemo")
        return sse_comment("mnemo " + json.dumps(outcome))

    def first_token(self) -> None:
        if not self._first:
            self._first = True
            m.TIME_TO_FIRST_TOKEN.labels(
                self.prepared.turn.endpoint, str(self.call.stream).lower()
            ).observe(time.perf_counter() - self.prepared.turn.started_at)

    async def finish(self, result: Answer) -> None:
        """Count tokens; remember the turn when this is the final answer (ADR 0010)."""
        m.LLM_TOKENS.labels("in", self.provider.name).inc(result.usage.input_tokens)
        m.LLM_TOKENS.labels("out", self.provider.name).inc(result.usage.output_tokens)
        if self.prepared.replay is not None or not result.is_final:
            return
        if not self.prepared.turn.query.strip():
            return  # no user text in the whole conversation: nothing to remember it by
        exchange = self.call.exchange
        text = exchange.prefill + result.text
        record = tool_record(exchange.steps)
        if record:
            self.prepared.turn.metadata["tool_calls"] = str(len(exchange.steps))
        answer = stored_answer(text, record)
        self.prepared.committed = await self.service.commit(
            self.prepared, answer, result.model or self.model
        )

    def failed(self, err: LLMError) -> ApiError:
        m.LLM_ERRORS.labels(err.kind.value, err.provider).inc()
        return from_llm(err)

    def upstream_error(self, status: int, content: bytes, headers: dict[str, str]) -> Response:
        """The upstream's error with its status; its body as sent when the client speaks
        its protocol. A refused key (401/403) is the gateway's, never the client's: 502."""
        try:
            doc = json.loads(content)
        except ValueError:
            doc = {}
        error = (doc.get("error") if isinstance(doc, dict) else None) or {}
        message = str(error.get("message") or content[:200].decode("utf-8", "replace"))
        kind = kind_for_status(status)
        m.LLM_ERRORS.labels(kind.value, self.provider.name).inc()
        if kind is LLMErrorKind.AUTH:
            err = LLMError(kind, message, provider=self.provider.name, status_code=status)
            return from_llm(err).to_response()
        if self.upstream == self.call.protocol:
            return Response(content, status, headers={**headers, **self.headers})
        code = str(error.get("type") or error.get("code") or "llm_error")
        return ApiError(status, code, f"{self.provider.name}: {message}").to_response()

    def document(self, result: Answer) -> Response:
        doc = anthropic_doc(result) if self.call.protocol == "anthropic" else openai_doc(result)
        return Response(json.dumps(doc), 200, headers=self.headers, media_type="application/json")

    def _writer(self) -> AnthropicStreamWriter | OpenAIStreamWriter:
        if self.call.protocol == "anthropic":
            return AnthropicStreamWriter(self.model)
        options = self.call.body.get("stream_options") or {}
        return OpenAIStreamWriter(self.model, include_usage=bool(options.get("include_usage")))

    async def rendered(
        self, events: AsyncIterator[AnswerEvent], own_stream: Any = None
    ) -> Response:
        """``events`` as the client's document or stream."""
        if not self.call.stream:
            builder = AnswerBuilder(self.model)
            try:
                async for event in events:
                    builder.add(event)
            except LLMError as err:
                raise self.failed(err) from err
            result = builder.result()
            self.first_token()
            await self.finish(result)
            return self.document(result)
        writer = self._writer()

        async def body() -> AsyncIterator[str]:
            builder = AnswerBuilder(self.model)
            try:
                for frame in writer.head():
                    yield frame
                try:
                    async for event in events:
                        if isinstance(event, TextDelta | ToolStart):
                            self.first_token()
                        builder.add(event)
                        frames = list(writer.write(event))
                        if isinstance(event, StreamEnd):
                            await self.finish(builder.result())
                            frames.insert(len(frames) - 1, self.outcome_frame())
                        for frame in frames:
                            yield frame
                except LLMError as err:
                    yield writer.error(self.failed(err).body())
            finally:
                with anyio.CancelScope(shield=True):
                    if own_stream is not None:
                        await own_stream.aclose()
                    await events.aclose()  # type: ignore[attr-defined]

        return StreamingResponse(
            body(), media_type="text/event-stream", headers={**SSE_HEADERS, **self.headers}
        )

    def raw_stream(self, forwarded: Any) -> Response:
        """The upstream's SSE bytes, whole frames (those of one upstream read in one write);
        the terminal frame waits for the commit."""
        reader = AnthropicStreamReader() if self.upstream == "anthropic" else OpenAIStreamReader()
        writer = self._writer()

        async def body() -> AsyncIterator[bytes]:
            splitter, builder = SSESplitter(), AnswerBuilder(self.model)
            try:
                try:
                    async for chunk in forwarded.chunks:
                        # the frames of one upstream read leave in one write (same bytes)
                        out: list[bytes] = []
                        for frame in splitter.feed(chunk):
                            for event in reader.read(frame):
                                if isinstance(event, TextDelta | ToolStart):
                                    self.first_token()
                                builder.add(event)
                            if reader.terminal(frame) and reader.error is None:
                                if out:  # what came before the end does not wait for the commit
                                    yield b"".join(out)
                                    out = []
                                await self.finish(builder.result())
                                out.append(self.outcome_frame().encode())
                            out.append(frame)
                        if out:
                            yield b"".join(out)
                except LLMError as err:
                    yield writer.error(self.failed(err).body()).encode()
                    return
                if rest := splitter.rest():
                    yield rest
            finally:
                with anyio.CancelScope(shield=True):
                    await forwarded.aclose()

        headers = {k: v for k, v in forwarded.headers.items() if k.lower() != "content-type"}
        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={**headers, **SSE_HEADERS, **self.headers},
        )
