"""One chat turn, the seeds' context-provider pattern over gRPC.

``prepare`` is ``invoking()``: PrepareTurn (rate limit, ownership, history, summary,
preferences, recalled memories) and the system prompt built from it. The LLM call follows.
``commit`` is ``invoked()``: CommitTurn with the turn's idempotency key, only after the
answer is complete — a failed or aborted LLM call stores nothing.

A retry of a turn already stored under its idempotency key is answered with the stored
answer, without calling the LLM again; the same key with another message is a 409.

When the memory service cannot answer, the turn is answered statelessly and marked
degraded (header, metric, log line); verdicts of the memory service (rate limit, someone
else's thread, a bad id) are errors for the caller.

``PreparedTurn.memory`` is the turn's honest memory status, final once the turn is done:
``degraded`` whenever part of memory was missing (``missing``: the memory service, or a
component PrepareTurn reported in ``degraded`` such as the vector store while the embedding
model loads) or the answer was not stored (``committed`` false; counted in
``mnemo_gateway_turns_unstored_total{reason}``). Every endpoint reads it after the commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import grpc
from mnemo.memory.v1 import memory_pb2
from mnemo_common.llm.base import (
    ChatMessage,
    ChatRequest,
    ChatResult,
    LLMError,
    LLMProvider,
    StreamEnd,
    StreamEvent,
    TextDelta,
    Usage,
)
from mnemo_common.tokens import estimate_message_tokens, estimate_tokens

from ..core import metrics as m
from ..core.errors import ApiError, from_grpc, from_llm
from ..memory.client import MemoryClient, MemoryUnavailable
from .prompt import build_system_prompt, memory_context

log = logging.getLogger(__name__)

MemoryStatus = Literal["ok", "degraded", "off"]


@dataclass
class TurnRequest:
    """What an endpoint asks for, already authenticated and validated."""

    endpoint: str  # chat | messages | completions (metric label)
    user_id: str  # memory-service user id
    thread_id: str
    query: str  # the new user message
    instructions: str  # the caller's system prompt / instructions
    # the client's own conversation (drop-in endpoints), last item the new user message;
    # None = /v1/chat, where history comes from memory
    client_messages: Sequence[ChatMessage] | None
    idempotency_key: str
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    recall: bool = True
    metadata: dict[str, str] = field(default_factory=dict)
    # the caller's api-key tenant: its rate-limit windows count the turn too
    tenant: str | None = None
    started_at: float = field(default_factory=time.perf_counter)


#: ``missing`` entry of a turn the memory service could not serve at all
MEMORY_SERVICE = "memory_service"
#: ``missing`` entry of a turn whose answer was not stored
NOT_STORED = "not_stored"


@dataclass
class PreparedTurn:
    turn: TurnRequest
    llm_request: ChatRequest
    # ok | degraded | off; becomes degraded when the commit fails (read it after the turn)
    memory: MemoryStatus
    context: memory_pb2.PrepareTurnResponse | None = None
    degraded_reason: str | None = None
    thread_exists: bool = False
    # set by ChatService.complete/stream/commit once the answer is stored
    committed: bool = False
    # what memory lacked for this turn: memory_service, the components PrepareTurn
    # reported (vector_store, ...), not_stored
    missing: list[str] = field(default_factory=list)
    # the stored answer when the turn was already committed under its idempotency key
    replay: memory_pb2.Replay | None = None


@dataclass
class TurnOutcome:
    text: str
    model: str
    usage: Usage
    stop_reason: str | None
    memory: MemoryStatus
    committed: bool


class ChatService:
    """Runs turns against one memory client (or none) and one LLM provider."""

    def __init__(
        self,
        memory: MemoryClient | None,
        provider: LLMProvider,
        *,
        token_budget: int = 0,
        max_message_bytes: int = 0,
        rate_limit_fail_closed: bool = False,
    ) -> None:
        self.memory = memory
        # GATEWAY__RATE_LIMIT_FAIL_MODE=closed: refuse turns whose limits cannot be checked
        self.rate_limit_fail_closed = rate_limit_fail_closed
        self.provider = provider
        self.token_budget = token_budget
        self.max_message_bytes = max_message_bytes  # 0 = no limit

    # --- invoking() ------------------------------------------------------------------------

    async def prepare(self, turn: TurnRequest) -> PreparedTurn:
        """Fetch memory for the turn and build the LLM request (degrading when needed)."""
        context: memory_pb2.PrepareTurnResponse | None = None
        status: MemoryStatus = "off"
        reason = None
        missing: list[str] = []
        if self.memory is not None:
            try:
                context = await self.memory.prepare_turn(
                    memory_pb2.PrepareTurnRequest(
                        user_id=turn.user_id,
                        thread_id=turn.thread_id,
                        query=turn.query,
                        token_budget=self.token_budget,
                        recall=memory_pb2.RecallOptions(disabled=not turn.recall),
                        exclude_history=turn.client_messages is not None,
                        count_rate_limit=True,
                        idempotency_key=turn.idempotency_key,
                        tenant=turn.tenant or "",
                    )
                )
                status = "ok"
                missing = list(context.degraded)
                if missing:
                    # the service answered without a component (recall while the model
                    # loads, the vector store down): the answer lacks that memory
                    status, reason = "degraded", ",".join(missing)
                    for component in missing:
                        m.DEGRADED_ANSWERS.labels(component).inc()
            except MemoryUnavailable as exc:
                if self.rate_limit_fail_closed:
                    # the limits live in the memory service: unchecked means refused
                    m.RATE_LIMIT_UNCHECKED.labels("refused").inc()
                    raise ApiError(
                        503,
                        "rate_limit_unavailable",
                        "the rate limit cannot be checked while the memory service is "
                        f"unavailable ({exc.reason}); GATEWAY__RATE_LIMIT_FAIL_MODE=closed",
                        headers={"Retry-After": "5"},
                    ) from exc
                m.RATE_LIMIT_UNCHECKED.labels("admitted").inc()
                status, reason = "degraded", exc.reason
                missing = [MEMORY_SERVICE]
                m.DEGRADED_ANSWERS.labels(exc.reason).inc()
                log.warning(
                    "memory service unavailable; answering without memory",
                    extra={
                        "reason": exc.reason,
                        "endpoint": turn.endpoint,
                        "thread_id": turn.thread_id,
                    },
                )
            except grpc.aio.AioRpcError as err:
                raise from_grpc(err) from err
        if turn.client_messages is not None:
            messages = list(turn.client_messages)
        else:
            messages = [ChatMessage("user", turn.query)]
        system = build_system_prompt(
            turn.instructions, context, include_history=turn.client_messages is None
        )
        llm_request = ChatRequest(
            system=system,
            messages=messages,
            model=turn.model,
            purpose="chat",
            max_tokens=turn.max_tokens,
            temperature=turn.temperature,
            memory=memory_context(context),
        )
        prepared = PreparedTurn(
            turn,
            llm_request,
            status,
            context,
            reason,
            bool(context and context.thread_exists),
            missing=missing,
        )
        if context is not None and context.HasField("replay"):
            if context.replay.user_message.content != turn.query:
                raise ApiError(
                    409,
                    "idempotency_conflict",
                    "this idempotency key was already used for another message in this thread",
                    field="idempotency_key",
                )
            prepared.replay = context.replay
            m.REPLAYED_TURNS.labels(turn.endpoint).inc()
        return prepared

    # --- the LLM call ----------------------------------------------------------------------

    def _replayed(self, prepared: PreparedTurn) -> tuple[str, str, Usage]:
        """(text, model, usage) of the stored answer of a replayed turn (no LLM call)."""
        assert prepared.replay is not None
        answer = prepared.replay.assistant_message
        model = self.provider.model_for("chat")
        usage = Usage(estimate_tokens(prepared.turn.query), estimate_tokens(answer.content))
        prepared.committed = True
        return answer.content, model, usage

    async def complete(self, prepared: PreparedTurn) -> TurnOutcome:
        """Non-streamed answer, then commit. LLM failures raise ApiError; nothing stored."""
        if prepared.replay is not None:
            text, model, usage = self._replayed(prepared)
            return TurnOutcome(text, model, usage, "end_turn", prepared.memory, True)
        try:
            result: ChatResult = await self.provider.complete(prepared.llm_request)
        except LLMError as err:
            raise self._llm_failed(prepared, err) from err
        self._observe_first_token(prepared, stream=False)
        usage = self._usage(prepared, result.text, result.usage)
        committed = await self.commit(prepared, result.text, result.model)
        return TurnOutcome(
            result.text, result.model, usage, result.stop_reason, prepared.memory, committed
        )

    async def stream(self, prepared: PreparedTurn) -> AsyncIterator[StreamEvent]:
        """Text deltas, then (after the commit) one StreamEnd. Raises ApiError on LLM
        failure; an aborted stream (client gone) never reaches the commit."""
        if prepared.replay is not None:
            text, model, usage = self._replayed(prepared)
            yield TextDelta(text)
            yield StreamEnd(model=model, usage=usage, stop_reason="end_turn")
            return
        parts: list[str] = []
        end: StreamEnd | None = None
        try:
            async for event in self.provider.stream(prepared.llm_request):
                if isinstance(event, TextDelta):
                    if not parts:
                        self._observe_first_token(prepared, stream=True)
                    parts.append(event.text)
                    yield event
                elif isinstance(event, StreamEnd):
                    end = event
        except LLMError as err:
            raise self._llm_failed(prepared, err) from err
        text = "".join(parts)
        model = end.model if end else self.provider.model_for("chat")
        usage = self._usage(prepared, text, end.usage if end else Usage())
        prepared.committed = await self.commit(prepared, text, model)
        yield StreamEnd(model=model, usage=usage, stop_reason=end.stop_reason if end else None)

    # --- invoked() -------------------------------------------------------------------------

    async def commit(self, prepared: PreparedTurn, answer: str, model: str) -> bool:
        """Store the exchange (idempotent); failures are logged and counted, never raised.

        Sets ``prepared.committed``; a turn that is not stored turns ``prepared.memory``
        to ``degraded`` (``not_stored`` in ``missing``) so every endpoint reports it.
        """
        if self.memory is None:
            return False
        if prepared.context is None:  # PrepareTurn failed: nothing to store it with
            self._not_stored(prepared, "memory_unavailable")
            return False
        turn = prepared.turn
        try:
            await self.memory.commit_turn(
                memory_pb2.CommitTurnRequest(
                    user_id=turn.user_id,
                    thread_id=turn.thread_id,
                    idempotency_key=turn.idempotency_key,
                    user_message=turn.query,
                    assistant_message=self._storable(answer, turn.thread_id),
                    metadata={
                        "model": model,
                        "provider": self.provider.name,
                        "endpoint": turn.endpoint,
                        **turn.metadata,
                    },
                )
            )
        except MemoryUnavailable as exc:
            m.DEGRADED_ANSWERS.labels("commit_" + exc.reason).inc()
            log.warning(
                "memory service unavailable; the turn was answered but not stored",
                extra={"reason": exc.reason, "thread_id": turn.thread_id},
            )
            self._not_stored(prepared, "commit_" + exc.reason)
            return False
        except grpc.aio.AioRpcError as err:
            log.error(
                "CommitTurn refused; the turn was answered but not stored",
                extra={
                    "code": err.code().name,
                    "details": err.details(),
                    "thread_id": turn.thread_id,
                },
            )
            self._not_stored(prepared, "commit_refused")
            return False
        m.COMMITTED_TURNS.labels(turn.endpoint).inc()
        prepared.committed = True
        return True

    @staticmethod
    def _not_stored(prepared: PreparedTurn, reason: str) -> None:
        prepared.committed = False
        prepared.memory = "degraded"
        if NOT_STORED not in prepared.missing:
            prepared.missing.append(NOT_STORED)
        m.UNSTORED_TURNS.labels(reason, prepared.turn.endpoint).inc()

    # --- helpers ---------------------------------------------------------------------------

    def _storable(self, answer: str, thread_id: str) -> str:
        """The answer as stored: cut to ``MEMORY__MAX_MESSAGE_BYTES`` (on a character
        boundary, marked) when longer, so a long answer never costs the whole turn — the
        memory service would refuse it, and the user's message with it."""
        limit = self.max_message_bytes
        raw = answer.encode("utf-8")
        if not limit or len(raw) <= limit:
            return answer
        marker = f"\n[… answer truncated for memory: {len(raw)} bytes]"
        keep = raw[: max(0, limit - len(marker.encode("utf-8")))].decode("utf-8", "ignore")
        m.TRUNCATED_ANSWERS.inc()
        log.warning(
            "answer longer than MEMORY__MAX_MESSAGE_BYTES: stored truncated",
            extra={"bytes": len(raw), "limit": limit, "thread_id": thread_id},
        )
        return keep + marker

    def _llm_failed(self, prepared: PreparedTurn, err: LLMError) -> ApiError:
        m.LLM_ERRORS.labels(err.kind.value, err.provider).inc()
        log.warning(
            "LLM call failed; nothing stored",
            extra={
                "kind": err.kind.value,
                "provider": err.provider,
                "status_code": err.status_code,
                "endpoint": prepared.turn.endpoint,
            },
        )
        return from_llm(err)

    def _observe_first_token(self, prepared: PreparedTurn, *, stream: bool) -> None:
        m.TIME_TO_FIRST_TOKEN.labels(prepared.turn.endpoint, str(stream).lower()).observe(
            time.perf_counter() - prepared.turn.started_at
        )

    def _usage(self, prepared: PreparedTurn, text: str, usage: Usage) -> Usage:
        # providers that report nothing (some OpenAI-compatible servers) get the estimate
        req = prepared.llm_request
        inp = usage.input_tokens or estimate_tokens(req.system) + sum(
            estimate_message_tokens(msg.content) for msg in req.messages
        )
        out = usage.output_tokens or estimate_tokens(text)
        m.LLM_TOKENS.labels("in", self.provider.name).inc(inp)
        m.LLM_TOKENS.labels("out", self.provider.name).inc(out)
        return Usage(inp, out)
