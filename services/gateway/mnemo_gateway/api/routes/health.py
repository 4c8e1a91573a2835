"""Probes, metrics and what the gateway is (provider, auth mode) — no user data here."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from mnemo_common.metrics import render_latest
from starlette.responses import JSONResponse, Response

from ...core.auth import describe
from ...core.config import GatewaySettings
from ..deps import CurrentIdentity, Provider, Settings

router = APIRouter(tags=["health"])
#: ``/metrics`` on the main port; not mounted when GATEWAY__METRICS_PORT serves it elsewhere
metrics_router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def llm_configured(provider_name: str, settings: GatewaySettings) -> bool:
    if provider_name == "anthropic":
        key = settings.anthropic_api_key
        return key is not None and bool(key.get_secret_value())
    if provider_name == "openai-compatible":
        return bool(settings.llm.openai_base_url)
    return True


@router.get("/readyz", summary="Memory service SERVING and an LLM configured")
async def readyz(
    request: Request,
    settings: Settings,
    provider: Provider,
    memory: Literal["required", "optional"] = Query(
        "required",
        description="optional: ready while this gateway can answer, with memory or degraded "
        "without it (memory is still required when GATEWAY__RATE_LIMIT_FAIL_MODE=closed, "
        "which refuses turns while memory is down)",
    ),
) -> Response:
    checks: dict[str, Any] = {"llm": llm_configured(provider.name, settings)}
    client = request.app.state.memory
    checks["memory"] = "disabled" if client is None else await client.serving()
    gating = dict(checks)
    if memory == "optional" and settings.gateway.rate_limit_fail_mode == "open":
        gating.pop("memory")  # answers continue degraded (X-Mnemo-Memory: degraded)
    ready = all(v is True or v == "disabled" for v in gating.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@metrics_router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)


@router.get("/v1/info", summary="Which LLM provider and model answer, and the auth mode")
async def info(settings: Settings, provider: Provider) -> dict[str, Any]:
    return {
        "provider": provider.name,
        "offline": provider.name == "offline",
        "model": provider.model_for("chat"),
        "auth_mode": settings.auth.mode.value,
        "memory_enabled": settings.gateway.memory_enabled,
    }


@router.get("/v1/me", summary="Who the credential says the caller is")
async def me(identity: CurrentIdentity) -> dict[str, Any]:
    return describe(identity)
