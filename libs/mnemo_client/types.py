"""The JSON shapes the gateway answers, as TypedDicts (docs/api.md and /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

Kind = Literal["fact", "preference", "event", "episode", "message"]


class Me(TypedDict):
    """``GET /v1/me``: who the credential says the caller is."""

    auth_mode: str  # none | api-key | jwt
    user_id: str | None  # the one user this credential is (jwt, a pinned key)
    tenant: str | None
    default_user_id: str | None  # auth none: the user of requests that name none


class Usage(TypedDict):
    input_tokens: int
    output_tokens: int


class ChatReply(TypedDict):
    response: str
    thread_id: str
    user_id: str
    model: str
    provider: str
    memory: str  # ok | degraded | off
    committed: bool
    missing: list[str]
    usage: Usage


class Memory(TypedDict):
    id: str
    kind: str
    text: str
    importance: int
    created_at_ms: int
    updated_at_ms: int
    valid_from_ms: int
    valid_to_ms: int
    source_thread_id: str
    superseded_by: str
    metadata: dict[str, str]


class ScoredMemory(TypedDict):
    memory: Memory
    score: float
    vector_score: float
    keyword_score: float


class MemoryPage(TypedDict):
    memories: list[Memory]
    next_page_token: str


class SearchResults(TypedDict):
    results: list[ScoredMemory]
    context_tokens: int


class Thread(TypedDict):
    thread_id: str
    user_id: str
    created_at_ms: int
    updated_at_ms: int
    message_count: int
    title: str
    expires_at_ms: int
    has_summary: bool
    closed: bool


class ThreadPage(TypedDict):
    threads: list[Thread]
    next_page_token: str


class Message(TypedDict):
    id: str
    role: str
    content: str
    created_at_ms: int


class ThreadDetail(TypedDict):
    thread: Thread
    messages: list[Message]
    summary: str


class ErasureReceipt(TypedDict):
    user_id: str
    erased_at_ms: int
    counts: dict[str, int]
    total: int
    pending: list[str]


class Export(TypedDict):
    user_id: str
    exported_at_ms: int
    sections: dict[str, list[Any]]


class ChatEvent(TypedDict):
    """One event of a streamed chat: ``start`` (thread_id, memory, ...), ``delta``
    (``text``), ``done`` (the whole :class:`ChatReply`)."""

    event: Literal["start", "delta", "done"]
    data: dict[str, Any]
