"""The FastAPI application: ``create_app(settings)`` wires clients, routers and errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from mnemo_common import metrics
from mnemo_common.llm.base import LLMProvider
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount

from .api.openapi import truthful_openapi
from .api.routes import (
    anthropic,
    chat,
    count_tokens,
    health,
    memories,
    models,
    openai,
    preferences,
    responses,
    threads,
    users,
    web,
)
from .chat.service import ChatService
from .chat.upstream import Upstream
from .core.auth import Authenticator
from .core.config import AuthMode, GatewaySettings, get_settings
from .core.errors import ApiError
from .core.middleware import GatewayMiddleware
from .core.text_guard import TextGuardMiddleware
from .core.web_headers import WebHeadersMiddleware
from .mcp_server import install as install_mcp
from .memory.client import MemoryClient

log = logging.getLogger(__name__)

#: the uvicorn runtime of every gateway (``mnemo-gateway``, the tests, the benchmarks): the
#: libuv event loop and the C HTTP parser, pinned dependencies of the gateway, named rather
#: than left to uvicorn's "auto" so a missing one fails at start-up instead of silently
#: costing CPU per request (ADR 0028)
SERVER_LOOP, SERVER_HTTP = "uvloop", "httptools"

DESCRIPTION = """Chat with memory. `POST /v1/chat` (seed shape), drop-in `POST /v1/messages`
(Anthropic, with `count_tokens`), `POST /v1/chat/completions` and `POST /v1/responses`
(OpenAI), `GET /v1/models` in both shapes, and memory control under
`/v1/users/{user_id}/...` (`me` = the caller). Every error is
`{"type": "error", "error": {"code", "type", "message", "field"?}}`."""


def _build_provider(settings: GatewaySettings) -> LLMProvider:
    from mnemo_common.llm import build_provider

    return build_provider(settings)


def create_app(
    settings: GatewaySettings | None = None, *, provider: LLMProvider | None = None
) -> FastAPI:
    """The gateway app. ``provider`` overrides ``build_provider(settings)`` (tests)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        llm = provider or _build_provider(settings)
        memory = None
        if settings.gateway.memory_enabled:
            memory = MemoryClient(
                settings.gateway.memory_addr,
                timeout_s=settings.gateway.memory_timeout_s,
                admin_timeout_s=settings.gateway.memory_admin_timeout_s,
                breaker_failures=settings.gateway.breaker_failures,
                breaker_cooldown_s=settings.gateway.breaker_cooldown_s,
                token=token.get_secret_value()
                if (token := settings.gateway.memory_token)
                else None,
                wire_addr=settings.gateway.memory_wire_addr,
            )
        app.state.provider = llm
        app.state.upstream = Upstream(settings, llm.name)  # models, count_tokens
        app.state.memory = memory
        app.state.chat = ChatService(
            memory,
            llm,
            token_budget=settings.gateway.context_token_budget,
            max_message_bytes=settings.memory.max_message_bytes,
            rate_limit_fail_closed=settings.gateway.rate_limit_fail_mode == "closed",
        )
        metrics_port = settings.gateway.metrics_port
        # its own port keeps /metrics off the public one (the Ingress routes GATEWAY__PORT)
        metrics_server = (
            metrics.start_metrics_server(metrics_port, settings.gateway.metrics_host)
            if metrics_port
            else None
        )
        log.info(
            "gateway ready",
            extra={
                "provider": llm.name,
                "model": llm.model_for("chat"),
                "memory_addr": settings.gateway.memory_addr if memory else None,
                "memory_wire_addr": (settings.gateway.memory_wire_addr or None) if memory else None,
                "metrics_port": metrics_port or settings.gateway.port,
                "auth_mode": settings.auth.mode.value,
                "offline": llm.name == "offline",
            },
        )
        if llm.name == "offline":
            log.warning(
                "LLM provider is OFFLINE: answers are generated locally from memory "
                "(set ANTHROPIC_API_KEY for real answers)"
            )
        try:
            yield
        finally:
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.shutdown)  # waits for its poll loop
                metrics_server.server_close()
            if memory is not None:
                await memory.aclose()
            await app.state.upstream.aclose()
            if provider is None:
                await llm.aclose()

    app = FastAPI(
        title="Mnemo gateway",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served offline by web.docs_router
        redoc_url=None,
    )
    app.state.settings = settings
    app.openapi = partial(truthful_openapi, app)  # type: ignore[method-assign]
    app.state.authenticator = Authenticator(
        settings.auth,
        settings.gateway.default_user_id if settings.auth.mode is AuthMode.NONE else None,
    )
    for module in (health, chat, anthropic, openai, memories, preferences, threads, users):
        app.include_router(module.router)
    for module in (models, count_tokens, responses):  # the rest of the drop-in surface
        app.include_router(module.router)
    if not settings.gateway.metrics_port:
        app.include_router(health.metrics_router)
    if settings.gateway.web_ui:
        app.include_router(web.router)
        app.mount("/static", StaticFiles(directory=web.STATIC_DIR), name="static")
    install_mcp(app)  # MCP at /mcp (streamable HTTP), same auth as the REST API
    app.include_router(web.docs_router)
    app.mount(web.SWAGGER_ASSETS, web.swagger_assets(), name="docs-assets")
    _install_error_handlers(app)
    app.add_middleware(TextGuardMiddleware)  # inside: the body limit applies while it reads
    app.add_middleware(GatewayMiddleware, max_body_bytes=settings.gateway.max_body_bytes)
    app.add_middleware(WebHeadersMiddleware)  # outermost: HEAD as GET, security headers
    return app


def allowed_methods(app: FastAPI, path: str) -> str:
    """The ``Allow`` header of ``path``: the methods some route answers there (routers
    included, each asked as the router would), and ``HEAD`` wherever ``GET`` is
    (:mod:`.core.web_headers`)."""
    methods: set[str] = set()
    for route in app.router.routes:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            scope = {"type": "http", "path": path, "method": method, "root_path": ""}
            if route.matches(scope)[0] is Match.FULL:
                # a mount (static files) matches any method and serves GET only
                methods.add("GET" if isinstance(route, Mount) else method)
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return exc.to_response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first: dict[str, Any] = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            return ApiError(
                400,
                "invalid_json",
                "the request body is not valid JSON: "
                f"{first.get('ctx', {}).get('error', 'parse error')}",
            ).to_response()
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or None
        message = f"{field}: {first.get('msg')}" if field else str(first.get("msg", "invalid"))
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem(s))"
        return ApiError(422, "invalid_request", message, field=field).to_response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method of the path, not only the first route's
            headers["Allow"] = allowed_methods(app, request.url.path)
        return ApiError(exc.status_code, code, str(exc.detail), headers=headers).to_response()

    # unexpected exceptions are answered by GatewayMiddleware (it has the request id)
