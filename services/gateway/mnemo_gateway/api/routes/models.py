"""``GET /v1/models`` and ``GET /v1/models/{id}`` in the Anthropic or the OpenAI shape.

Both SDKs call the same paths; the Anthropic SDK always sends ``anthropic-version``, so a
request with that header gets Anthropic's shape (``ModelInfo``, a page with ``has_more``,
``first_id``, ``last_id``), any other gets OpenAI's (``{"object": "list", "data"}``).

Which models: the upstream's list when the provider has one (translated when the client
speaks the other vendor's protocol), else the configured chat model. With
``GATEWAY__PASS_CLIENT_MODEL=false`` (default) only the configured chat model is listed: it
answers every call whatever model the client names.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from mnemo_common.llm.base import LLMProvider
from mnemo_common.text import control_char_problem
from starlette.responses import JSONResponse

from ...chat.upstream import Upstream, Vendor
from ...core.config import GatewaySettings
from ...core.errors import ApiError
from ..deps import CurrentIdentity, Provider, Settings, UpstreamAPI

log = logging.getLogger(__name__)

router = APIRouter(tags=["models"])

SOURCE_HEADER = "X-Mnemo-Models"


def client_vendor(request: Request) -> Vendor:
    """The protocol the client speaks (the Anthropic SDK sends ``anthropic-version``)."""
    return "anthropic" if request.headers.get("anthropic-version") else "openai"


def _epoch(created_at: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(created_at).replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _rfc3339(created: Any) -> str:
    seconds = created if isinstance(created, int | float) else 0
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render(entry: dict[str, Any], source: Vendor | None, vendor: Vendor) -> dict[str, Any]:
    """One model as ``vendor`` describes models; an entry of that vendor's upstream as is."""
    if source == vendor:
        return entry
    if vendor == "anthropic":
        return {
            "type": "model",
            "id": entry["id"],
            "display_name": entry.get("display_name") or entry["id"],
            "created_at": entry.get("created_at") or _rfc3339(entry.get("created")),
            "lifecycle": "active",
        }
    return {
        "id": entry["id"],
        "object": "model",
        "created": entry["created"] if "created" in entry else _epoch(entry.get("created_at")),
        "owned_by": entry.get("owned_by") or (source or "mnemo"),
    }


async def _upstream_models(upstream: Upstream) -> list[dict[str, Any]] | None:
    """The provider's model list, or None when it has none (or did not answer)."""
    if upstream.vendor is None:
        return None
    params = {"limit": 1000} if upstream.vendor == "anthropic" else None
    try:
        reply = await upstream.request("GET", "models", params=params)
    except ApiError as err:
        log.warning(
            "upstream model list failed; listing the configured model", extra={"code": err.code}
        )
        return None
    data = reply.body.get("data") if isinstance(reply.body, dict) else None
    if reply.status != 200 or not isinstance(data, list):
        log.info(
            "upstream has no model list; listing the configured model",
            extra={"status": reply.status},
        )
        return None
    return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]


async def catalogue(
    upstream: Upstream, provider: LLMProvider, settings: GatewaySettings
) -> tuple[list[dict[str, Any]], Vendor | None]:
    """(models, the vendor whose shape they are in; None = made here)."""
    configured = provider.model_for("chat")
    listed = await _upstream_models(upstream)
    if listed is None:
        return [
            {"id": configured, "owned_by": "mnemo" if provider.name == "offline" else provider.name}
        ], None
    if not settings.gateway.pass_client_model:
        listed = [m for m in listed if m["id"] == configured] or [{"id": configured}]
    elif configured not in {m["id"] for m in listed}:
        listed = [{"id": configured}, *listed]
    return listed, upstream.vendor


def model_not_found(model_id: str, vendor: Vendor) -> ApiError:
    if vendor == "openai":
        return OpenAIError(
            404, "model_not_found", f"The model '{model_id}' does not exist", param="model"
        )
    return ApiError(404, "not_found", f"model: {model_id}", field="model_id")


class OpenAIError(ApiError):
    """An error in the gateway's shape that is also OpenAI's (``type`` and ``param``)."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None) -> None:
        super().__init__(status, code, message, field=param)
        self.param = param

    def body(self) -> dict[str, Any]:
        doc = super().body()
        doc["error"]["type"] = "invalid_request_error"
        doc["error"]["param"] = self.param
        return doc


@router.get("/v1/models", summary="The models clients may name (Anthropic or OpenAI shape)")
async def list_models(
    request: Request,
    identity: CurrentIdentity,
    provider: Provider,
    settings: Settings,
    upstream: UpstreamAPI,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    after_id: str | None = None,
    before_id: str | None = None,
) -> JSONResponse:
    vendor = client_vendor(request)
    models, source = await catalogue(upstream, provider, settings)
    data = [render(m, source, vendor) for m in models]
    headers = {SOURCE_HEADER: "upstream" if source else "configured"}
    if vendor == "openai":
        return JSONResponse({"object": "list", "data": data}, headers=headers)
    ids = [m["id"] for m in data]
    start, end = 0, len(data)
    for name, cursor in (("after_id", after_id), ("before_id", before_id)):
        if cursor is not None and cursor not in ids:
            raise ApiError(404, "not_found", f"{name}: no model {cursor!r}", field=name)
    if after_id is not None:
        start = ids.index(after_id) + 1
    if before_id is not None:
        end = ids.index(before_id)
        start = max(start, end - limit)
    page = data[start:end][:limit]
    body = {
        "data": page,
        # more in the direction of travel: older pages with before_id, newer ones otherwise
        "has_more": start > 0 if before_id is not None else start + len(page) < end,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }
    return JSONResponse(body, headers=headers)


@router.get("/v1/models/{model_id:path}", summary="One model (Anthropic or OpenAI shape)")
async def retrieve_model(
    request: Request,
    identity: CurrentIdentity,
    provider: Provider,
    settings: Settings,
    upstream: UpstreamAPI,
    model_id: Annotated[str, Path(description="the model's id")],
) -> JSONResponse:
    problem = control_char_problem(model_id, surrogates=False)
    if problem:  # the one path parameter that is not an id (ids refuse these themselves)
        raise ApiError(422, "invalid_text", f"model_id: {problem}", field="model_id")
    vendor = client_vendor(request)
    models, source = await catalogue(upstream, provider, settings)
    for model in models:
        if model["id"] == model_id:
            return JSONResponse(
                render(model, source, vendor),
                headers={SOURCE_HEADER: "upstream" if source else "configured"},
            )
    raise model_not_found(model_id, vendor)
