"""The MCP server at ``/mcp``: Mnemo's memory as tools for assistants and IDEs.

Streamable HTTP (the official ``mcp`` SDK), stateless and answering JSON: every POST stands
alone, so any gateway replica serves any request and nothing is held between them.

Who the caller is comes from the HTTP request exactly as on the REST API: the same
credential (``Authorization: Bearer`` / ``x-api-key``) checked by the same
:class:`~mnemo_gateway.core.auth.Authenticator`, and the user it acts for resolved by
:meth:`Identity.memory_user_id` from the ``X-Mnemo-User-Id`` header (the drop-in routes'
header): a JWT or a key pinned to a user is that user (naming another is a 403), a tenant
key names a user of its tenant, and auth ``none`` falls back to the default user. No tool
takes a user id argument, so a model cannot be talked into reading someone else's memory.

A request refused before MCP starts (no or bad credential, a forbidden user, a foreign
``Origin``) gets the API's own JSON error body and status. Inside MCP, a failure of the
memory service is a tool error (``isError``) whose text starts with the API's ``code`` and
whose structured content is the API's error body plus its HTTP ``status``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

import grpc
from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, CallToolResult, TextContent, ToolAnnotations
from mnemo.memory.v1 import memory_pb2
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from .api.deps import new_thread_id
from .api.routes import memories, preferences, threads
from .api.schemas import KindName, MemoryCreate, MemoryPatch, PreferenceValue, WritableKind
from .api.turns import USER_HEADER
from .chat.prompt import build_system_prompt
from .core.auth import Authenticator, Identity
from .core.errors import ApiError, from_grpc
from .memory.client import MemoryClient, MemoryUnavailable

MCP_PATH = "/mcp"
SERVER_NAME = "mnemo"
INSTRUCTIONS = (
    "Mnemo is the user's long-term memory. Call search_memories (or memory_context) before "
    "answering questions about the user; call add_memory when the user tells you something "
    "durable about themselves, correct_memory when a memory is wrong, and delete_memory when "
    "asked to forget."
)
NO_CONTEXT = "(nothing remembered for this query)"

Query = Annotated[str, Field(min_length=1, max_length=4096, description="what to look for")]
MemoryId = Annotated[str, Field(min_length=1, max_length=128, description="id of the memory")]
Kinds = Annotated[list[KindName] | None, Field(description="only these kinds (default: all)")]


def resolve_caller(
    authenticator: Authenticator, headers: Mapping[str, str]
) -> tuple[Identity, str]:
    """(identity, memory-service user id) of an MCP HTTP request; raises :class:`ApiError`."""
    identity = authenticator.authenticate(headers)
    return identity, identity.memory_user_id(headers.get(USER_HEADER) or None, USER_HEADER)


def _origin_error(headers: Mapping[str, str]) -> ApiError | None:
    """A browser page of another site calling /mcp (DNS rebinding, the MCP spec's Origin
    rule): refused. Clients that are not browsers send no ``Origin``."""
    origin = headers.get("origin")
    if not origin:
        return None
    if urlsplit(origin).netloc.lower() == headers.get("host", "").lower():
        return None
    return ApiError(403, "forbidden_origin", f"cross-origin MCP requests are refused ({origin})")


def _ok(model: BaseModel | dict[str, Any]) -> CallToolResult:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(data, ensure_ascii=False))],
        structured_content=data,
    )


def tool_error(exc: ApiError) -> CallToolResult:
    """An API error as an MCP tool error: ``"<code>: <message>"`` plus the API body."""
    body = exc.body()
    body["error"]["status"] = exc.status
    return CallToolResult(
        content=[TextContent(type="text", text=f"{exc.code}: {exc.message}")],
        structured_content=body,
        is_error=True,
    )


def _app_memory(app: FastAPI) -> MemoryClient:
    memory: MemoryClient | None = app.state.memory
    if memory is None:
        raise ApiError(
            503,
            "memory_disabled",
            "memory is disabled on this gateway (GATEWAY__MEMORY_ENABLED=false)",
        )
    return memory


def build_server(app: FastAPI) -> MCPServer:
    """The MCP tools and prompt, each resolving the caller from its HTTP request."""
    server: MCPServer = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, version=app.version)

    def caller(ctx: Context) -> tuple[Identity, str]:
        headers = ctx.headers
        if headers is None:  # pragma: no cover - only HTTP reaches this server
            raise ApiError(401, "unauthenticated", "MCP requests must come over HTTP")
        return resolve_caller(app.state.authenticator, headers)

    async def run(ctx: Context, call: Callable[[Identity, str], Awaitable[Any]]) -> CallToolResult:
        try:
            identity, user = caller(ctx)
            return _ok(await call(identity, user))
        except ApiError as exc:
            return tool_error(exc)

    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    writes = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    destructive = ToolAnnotations(
        read_only_hint=False, destructive_hint=True, open_world_hint=False
    )

    @server.tool(annotations=read_only)
    async def search_memories(
        query: Query,
        ctx: Context,
        top_k: Annotated[int, Field(ge=1, le=100)] = 10,
        kinds: Kinds = None,
    ) -> CallToolResult:
        """Search what Mnemo remembers about the user (hybrid vector + keyword), best first."""
        return await run(
            ctx,
            lambda _i, user: memories.search_memories(
                user, _app_memory(app), q=query, top_k=top_k, kind=kinds
            ),
        )

    @server.tool(annotations=read_only)
    async def list_memories(
        ctx: Context,
        kinds: Kinds = None,
        page_size: Annotated[int, Field(ge=1, le=1000)] = 50,
        page_token: str = "",
    ) -> CallToolResult:
        """The user's memories, newest first (pass next_page_token back for more)."""
        return await run(
            ctx,
            lambda _i, user: memories.list_memories(
                user, _app_memory(app), kind=kinds, page_size=page_size, page_token=page_token
            ),
        )

    @server.tool(annotations=writes)
    async def add_memory(
        text: Annotated[str, Field(min_length=1, max_length=32_768)],
        ctx: Context,
        kind: WritableKind = "fact",
        importance: Annotated[int, Field(ge=0, le=10, description="1..10; 0 = default")] = 0,
    ) -> CallToolResult:
        """Remember something about the user (a fact, a preference, an event)."""
        body = MemoryCreate(text=text, kind=kind, importance=importance)
        return await run(ctx, lambda _i, user: memories.add_memory(user, _app_memory(app), body))

    @server.tool(annotations=writes)
    async def correct_memory(
        memory_id: MemoryId,
        ctx: Context,
        text: Annotated[str | None, Field(min_length=1, max_length=32_768)] = None,
        importance: Annotated[int | None, Field(ge=1, le=10)] = None,
        kind: WritableKind | None = None,
    ) -> CallToolResult:
        """Correct a memory: new text, importance or kind (at least one)."""
        body = MemoryPatch(text=text, importance=importance, kind=kind)
        return await run(
            ctx,
            lambda _i, user: memories.update_memory(user, _app_memory(app), memory_id, body),
        )

    @server.tool(annotations=destructive)
    async def delete_memory(memory_id: MemoryId, ctx: Context) -> CallToolResult:
        """Forget one memory (and the message memories that quote its source)."""
        return await run(
            ctx, lambda _i, user: memories.delete_memory(user, _app_memory(app), memory_id)
        )

    @server.tool(annotations=read_only)
    async def list_threads(
        ctx: Context,
        page_size: Annotated[int, Field(ge=1, le=500)] = 20,
        page_token: str = "",
    ) -> CallToolResult:
        """The user's conversation threads, most recent first."""
        return await run(
            ctx,
            lambda identity, user: threads.list_threads(
                user, _app_memory(app), identity, page_size=page_size, page_token=page_token
            ),
        )

    @server.tool(annotations=read_only)
    async def get_preferences(ctx: Context) -> CallToolResult:
        """The user's preferences (a key/value map every answer sees)."""
        return await run(ctx, lambda _i, user: preferences.get_preferences(user, _app_memory(app)))

    @server.tool(annotations=writes)
    async def set_preference(
        key: Annotated[str, Field(min_length=1, max_length=128, description="e.g. language")],
        value: Annotated[str, Field(max_length=16_384)],
        ctx: Context,
    ) -> CallToolResult:
        """Set one preference; returns all of them."""
        body = PreferenceValue(value=value)
        return await run(
            ctx, lambda _i, user: preferences.set_preference(user, _app_memory(app), key, body)
        )

    @server.tool(annotations=destructive)
    async def delete_preference(
        key: Annotated[str, Field(min_length=1, max_length=128)], ctx: Context
    ) -> CallToolResult:
        """Delete one preference; returns the rest."""
        return await run(
            ctx, lambda _i, user: preferences.delete_preference(user, _app_memory(app), key)
        )

    async def context_text(user: str, query: str) -> str:
        memory = _app_memory(app)
        try:
            prepared = await memory.prepare_turn(
                memory_pb2.PrepareTurnRequest(
                    user_id=user,
                    thread_id=new_thread_id(),  # a new thread: no history, no summary
                    query=query,
                    token_budget=app.state.chat.token_budget,
                    exclude_history=True,
                    count_rate_limit=False,  # a read-only preview, as count_tokens
                )
            )
        except MemoryUnavailable as exc:
            raise ApiError(
                503, "memory_unavailable", f"the memory service is unavailable ({exc.reason})"
            ) from exc
        except grpc.aio.AioRpcError as err:
            raise from_grpc(err) from err
        return build_system_prompt("", prepared, include_history=False) or NO_CONTEXT

    @server.tool(annotations=read_only)
    async def memory_context(query: Query, ctx: Context) -> CallToolResult:
        """The memory Mnemo would give the model for this message in a new conversation
        (recalled memories and preferences), as the system-prompt text."""

        async def call(_i: Identity, user: str) -> dict[str, Any]:
            return {"context": await context_text(user, query)}

        return await run(ctx, call)

    @server.prompt(name="memory_context", title="Mnemo memory for a message")
    async def memory_context_prompt(query: str, ctx: Context) -> str:
        """What Mnemo remembers that is relevant to ``query``, as one user message."""
        try:
            _identity, user = caller(ctx)
            if not query.strip():
                raise ApiError(422, "invalid_request", "query must not be empty", field="query")
            text = await context_text(user, query)
        except ApiError as exc:
            body = exc.body()["error"] | {"status": exc.status}
            code = INVALID_PARAMS if exc.status in (400, 422) else INTERNAL_ERROR
            raise MCPError(code, f"{exc.code}: {exc.message}", body) from None
        return f"Context from Mnemo, the user's memory:\n\n{text}\n\nMessage: {query}"

    return server


class McpEndpoint:
    """The ASGI app at ``/mcp``: refuses what the REST API would refuse, then hands the
    request to the SDK's session manager (started by :func:`install`'s lifespan)."""

    def __init__(self, app: FastAPI, manager: StreamableHTTPSessionManager) -> None:
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Request(scope).headers
        try:
            error = _origin_error(headers)
            if error is not None:
                raise error
            resolve_caller(self.app.state.authenticator, headers)
        except ApiError as exc:
            await exc.to_response()(scope, receive, send)
            return
        await self.manager.handle_request(scope, receive, send)


def install(app: FastAPI) -> None:
    """Serve MCP at ``/mcp`` on ``app`` and run its session manager in the app's lifespan."""
    server = build_server(app)
    # builds the SDK's session manager (its Starlette app is not used: the route below
    # authenticates first). Host checks off: the gateway runs behind any host name, and
    # _origin_error refuses the cross-site browser requests they guard against.
    server.streamable_http_app(
        json_response=True,
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager
    app.router.routes.append(
        Route(MCP_PATH, endpoint=McpEndpoint(app, manager), methods=["GET", "POST", "DELETE"])
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state, manager.run():
            yield state

    app.router.lifespan_context = lifespan
