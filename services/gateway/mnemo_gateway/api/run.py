"""The one flow behind every chat endpoint: :func:`run_turn`.

A chat route only adapts: it reads its vendor's request into a :class:`TurnRequest`
(through :meth:`TurnContext.turn`) and names how the answer goes back on the wire — a
:class:`Reply` for the endpoints Mnemo answers itself (``/v1/chat``, ``/v1/responses``), the
:class:`~mnemo_gateway.chat.passthrough.DropInCall` for the drop-in ones (``/v1/messages``,
``/v1/chat/completions``), whose body is forwarded or translated as sent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from mnemo_common.llm.base import LLMProvider, StreamEvent
from starlette.responses import JSONResponse, Response

from ..chat import passthrough
from ..chat.conversation import Protocol
from ..chat.passthrough import DropInCall
from ..chat.service import ChatService, PreparedTurn, TurnOutcome, TurnRequest
from ..core.auth import Identity
from ..core.config import GatewaySettings
from ..core.errors import ApiError
from .deps import Chat, CurrentIdentity, Provider, Settings
from .sse import start_stream, stream_response
from .turns import check_prompt_size, idempotency_key_of, turn_headers


@dataclass
class TurnContext:
    """What every chat route needs of its request, resolved once by FastAPI."""

    request: Request
    identity: Identity
    service: ChatService
    provider: LLMProvider
    settings: GatewaySettings

    def turn(
        self,
        endpoint: str,
        *,
        user_id: str,
        thread_id: str,
        query: str,
        model: str | None,
        idempotency_key: str | None = None,
        **fields: Any,
    ) -> TurnRequest:
        """The turn of this request; the fields every endpoint fills alike are set here
        (the client's model only when ``GATEWAY__PASS_CLIENT_MODEL``)."""
        return TurnRequest(
            endpoint=endpoint,
            user_id=user_id,
            thread_id=thread_id,
            query=query,
            idempotency_key=idempotency_key_of(self.request, idempotency_key),
            model=model if self.settings.gateway.pass_client_model else None,
            started_at=self.request.state.started_at,
            tenant=self.identity.tenant,
            **fields,
        )

    async def drop_in_call(self, protocol: Protocol) -> DropInCall:
        """The drop-in request as sent (422 naming a field Mnemo cannot read; 413 when the
        new user message is past the prompt limits)."""
        raw = await self.request.body()
        # FastAPI parsed the body already (request.json() is cached); ``raw`` goes upstream
        # unchanged when Mnemo adds nothing (ADR 0023)
        call = passthrough.read_call(protocol, await self.request.json(), self.request.headers, raw)
        check_prompt_size(call.exchange.user_text, self.settings, "messages")
        return call

    def drop_in_turn(
        self, endpoint: str, call: DropInCall, *, user_id: str, thread_id: str, **fields: Any
    ) -> TurnRequest:
        """The turn of a drop-in request: the client's messages are the conversation."""
        text = call.exchange.user_text
        return self.turn(
            endpoint,
            user_id=user_id,
            thread_id=thread_id,
            query=text,
            instructions="",
            client_messages=(),
            recall=bool(text.strip()),
            **fields,
        )


async def get_turn_context(
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
) -> TurnContext:
    return TurnContext(request, identity, service, provider, settings)


TurnCtx = Annotated[TurnContext, Depends(get_turn_context)]


class Reply(ABC):
    """How Mnemo's own answer to a turn goes back in one vendor's wire format."""

    def __init__(self, stream: bool) -> None:
        self.stream = stream

    @abstractmethod
    def document(self, prepared: PreparedTurn, out: TurnOutcome) -> dict[str, Any]:
        """The non-streamed answer (after the commit)."""

    @abstractmethod
    def head(self, prepared: PreparedTurn) -> list[str]:
        """The SSE frames sent before the first LLM event (the stream has started)."""

    @abstractmethod
    def render(self, event: StreamEvent) -> Iterable[str]:
        """The SSE frames of one LLM event."""

    @abstractmethod
    def on_error(self, err: ApiError) -> Iterable[str]:
        """The SSE frames of a failure once the stream has started."""


async def run_turn(ctx: TurnContext, turn: TurnRequest, reply: Reply | DropInCall) -> Response:
    """Prepare ``turn`` (memory), answer it (LLM), commit it, and send it back as
    ``reply`` says — JSON or Server-Sent Events, the ``X-Mnemo-*`` headers on either."""
    service, provider = ctx.service, ctx.provider
    if isinstance(reply, DropInCall):
        return await passthrough.answer(
            reply, lambda: service.prepare(turn), service, provider, ctx.settings
        )
    prepared = await service.prepare(turn)
    if not reply.stream:
        out = await service.complete(prepared)
        # after the commit: the header says degraded when the turn was not stored
        headers = turn_headers(prepared, provider.name)
        return JSONResponse(reply.document(prepared, out), headers=headers)
    headers = turn_headers(prepared, provider.name)
    first, events = await start_stream(service, prepared)
    return stream_response(
        first,
        events,
        head=reply.head(prepared),
        render=reply.render,
        on_error=reply.on_error,
        headers=headers,
    )
