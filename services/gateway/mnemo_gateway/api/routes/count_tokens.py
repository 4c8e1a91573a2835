"""``POST /v1/messages/count_tokens`` — what a Messages call would cost, memory included.

The count is of the request Mnemo would send: the client's body with the user's memory
added to ``system`` (and the configured model unless ``GATEWAY__PASS_CLIENT_MODEL``). It is
forwarded to an Anthropic upstream, which counts it exactly; with any other provider it is
estimated here (:mod:`mnemo_common.tokens`, ~4 characters per token) and the answer says so
(``X-Mnemo-Token-Count: estimated``). The memory lookup is a read-only preview: it stores
nothing and does not count against the user's rate limit.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

import grpc
from fastapi import APIRouter, Request
from mnemo.memory.v1 import memory_pb2
from mnemo_common.tokens import estimate_message_tokens, estimate_tokens
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from ...chat.fingerprint import anthropic_opening
from ...chat.prompt import build_system_prompt
from ...core.errors import ApiError, from_grpc
from ...memory.client import MemoryUnavailable
from ..caller import conversation_thread, memory_user
from ..deps import Chat, CurrentIdentity, Provider, Settings, UpstreamAPI
from ..turns import MEMORY_HEADER, THREAD_HEADER, check_text

log = logging.getLogger(__name__)

router = APIRouter(tags=["anthropic-compatible"])

COUNT_HEADER = "X-Mnemo-Token-Count"


class CountMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class CountTokensBody(BaseModel):
    """The Anthropic count_tokens request (other fields are forwarded as sent)."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[CountMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = None


def _text(content: str | list[dict[str, Any]], field: str) -> str:
    if isinstance(content, str):
        return check_text(content, field)
    parts = [str(b.get("text", "")) for b in content if b.get("type") == "text"]
    return check_text("\n".join(parts), field)


def with_memory(system: str | list[dict[str, Any]] | None, memory: str) -> Any:
    """``system`` as Mnemo sends it: the memory sections after the client's text (a string
    stays a string; a block list keeps its blocks, ``cache_control`` included, plus one)."""
    if not memory:
        return system
    if system is None or isinstance(system, str):
        return "\n\n".join(p for p in ((system or "").strip(), memory) if p)
    return [*system, {"type": "text", "text": memory}]


def estimate(body: dict[str, Any]) -> int:
    """The offline estimate of a Messages request's input tokens."""
    system = body.get("system")
    total = estimate_tokens(system if isinstance(system, str) else json.dumps(system or ""))
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, list) and all(b.get("type") == "text" for b in content):
            content = "\n".join(str(b.get("text", "")) for b in content)
        total += estimate_message_tokens(
            content if isinstance(content, str) else json.dumps(content)
        )
    if body.get("tools"):
        total += estimate_tokens(json.dumps(body["tools"]))
    return total


@router.post(
    "/v1/messages/count_tokens",
    summary="Anthropic token count of a Messages request, with the memory Mnemo would add",
)
async def count_tokens(
    body: CountTokensBody,
    request: Request,
    identity: CurrentIdentity,
    service: Chat,
    provider: Provider,
    settings: Settings,
    upstream: UpstreamAPI,
) -> JSONResponse:
    raw = body.model_dump(exclude_unset=True)
    # the user as for /v1/messages; metadata is Mnemo's here (count_tokens upstream has none)
    metadata = raw.pop("metadata", None)
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    user = memory_user(identity, request, ("metadata.user_id", user_id))
    thread = conversation_thread(request, user, anthropic_opening(body.system, raw["messages"]))
    last = next((m for m in reversed(body.messages) if m.role == "user"), None)
    query = _text(last.content, "messages") if last else ""
    context, status = None, "off"
    if service.memory is not None:
        try:
            context = await service.memory.prepare_turn(
                memory_pb2.PrepareTurnRequest(
                    user_id=user,
                    thread_id=thread,
                    query=query,
                    token_budget=service.token_budget,
                    recall=memory_pb2.RecallOptions(disabled=not query.strip()),
                    exclude_history=True,
                    count_rate_limit=False,
                )
            )
            status = "ok"
        except MemoryUnavailable as exc:
            status = "degraded"
            log.warning("count_tokens without memory", extra={"reason": exc.reason})
        except grpc.aio.AioRpcError as err:
            raise from_grpc(err) from err
    memory = build_system_prompt("", context, include_history=False)
    sent = dict(raw, system=with_memory(body.system, memory))
    if sent["system"] is None:
        sent.pop("system")
    if not settings.gateway.pass_client_model:
        sent["model"] = provider.model_for("chat")
    headers = {THREAD_HEADER: thread, MEMORY_HEADER: status}
    if upstream.vendor == "anthropic":
        reply = await upstream.request(
            "POST", "messages/count_tokens", json=sent, client_headers=request.headers
        )
        if reply.body is None:
            raise ApiError(502, "llm_error", f"anthropic: count_tokens answered {reply.status}")
        return JSONResponse(
            reply.body, status_code=reply.status, headers={**headers, COUNT_HEADER: "upstream"}
        )
    return JSONResponse(
        {"input_tokens": estimate(sent)}, headers={**headers, COUNT_HEADER: "estimated"}
    )
