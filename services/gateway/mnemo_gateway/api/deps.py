"""Typed dependencies: settings, the caller's identity, the memory client, the chat service.

Every route that touches a user's data takes ``user_id`` from the path and resolves it with
:data:`MemoryUser` — the identity decides (403 for someone else's data in jwt mode, tenant
namespacing in api-key mode), never the request alone.

The dependencies are ``async def`` although they do not await: FastAPI runs a plain ``def``
dependency in its thread pool, a thread hop per dependency per request (measured: the
largest single cost of a drop-in pass-through request under load).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from mnemo_common.ids import new_id
from mnemo_common.llm.base import LLMProvider

from ..chat.service import ChatService
from ..chat.upstream import Upstream
from ..core.auth import Authenticator, Identity
from ..core.config import GatewaySettings
from ..core.errors import ApiError
from ..memory.client import MemoryClient


async def get_settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def get_identity(request: Request) -> Identity:
    """The authenticated caller (401 without a valid credential)."""
    cached = getattr(request.state, "identity", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    auth: Authenticator = request.app.state.authenticator
    identity = auth.authenticate(request.headers)
    request.state.identity = identity
    return identity


async def get_memory(request: Request) -> MemoryClient:
    memory: MemoryClient | None = request.app.state.memory
    if memory is None:
        raise ApiError(
            503,
            "memory_disabled",
            "memory is disabled on this gateway (GATEWAY__MEMORY_ENABLED=false)",
        )
    return memory


async def get_chat_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat
    return service


async def get_provider(request: Request) -> LLMProvider:
    provider: LLMProvider = request.app.state.provider
    return provider


def get_upstream(request: Request) -> Upstream:
    upstream: Upstream = request.app.state.upstream
    return upstream


Settings = Annotated[GatewaySettings, Depends(get_settings)]
CurrentIdentity = Annotated[Identity, Depends(get_identity)]
Memory = Annotated[MemoryClient, Depends(get_memory)]
Chat = Annotated[ChatService, Depends(get_chat_service)]
Provider = Annotated[LLMProvider, Depends(get_provider)]
UpstreamAPI = Annotated[Upstream, Depends(get_upstream)]


async def memory_user(
    identity: CurrentIdentity,
    user_id: Annotated[str, Path(description="the user, or `me` for the caller's own user")],
) -> str:
    """The memory-service user id of the ``{user_id}`` path segment."""
    return identity.memory_user_id(user_id, "user_id")


MemoryUser = Annotated[str, Depends(memory_user)]


def new_thread_id() -> str:
    return new_id("th_")


def new_idempotency_key() -> str:
    return new_id("turn_")
