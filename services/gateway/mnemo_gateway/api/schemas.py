"""Response and request bodies of the memory control endpoints, and their protobuf mapping."""

from __future__ import annotations

from typing import Any, Literal

from mnemo.memory.v1 import memory_pb2
from pydantic import BaseModel, Field

from ..core.auth import Identity

KindName = Literal["fact", "preference", "event", "episode", "message"]
#: what a client may add or set: message memories are kept from the conversation only
WritableKind = Literal["fact", "preference", "event", "episode"]

KIND_TO_PB: dict[str, Any] = {
    "fact": memory_pb2.MEMORY_KIND_FACT,
    "preference": memory_pb2.MEMORY_KIND_PREFERENCE,
    "event": memory_pb2.MEMORY_KIND_EVENT,
    "episode": memory_pb2.MEMORY_KIND_EPISODE,
    "message": memory_pb2.MEMORY_KIND_MESSAGE,
}
PB_TO_KIND = {v: k for k, v in KIND_TO_PB.items()}
PB_TO_ROLE = {
    memory_pb2.ROLE_USER: "user",
    memory_pb2.ROLE_ASSISTANT: "assistant",
    memory_pb2.ROLE_SYSTEM: "system",
}


class MemoryOut(BaseModel):
    id: str
    kind: str
    text: str
    importance: int
    created_at_ms: int
    updated_at_ms: int
    valid_from_ms: int
    valid_to_ms: int = Field(description="0 = still valid")
    source_thread_id: str = ""
    superseded_by: str = ""
    metadata: dict[str, str] = {}

    @classmethod
    def from_pb(cls, mem: memory_pb2.Memory) -> MemoryOut:
        return cls(
            id=mem.id,
            kind=PB_TO_KIND.get(mem.kind, "fact"),
            text=mem.text,
            importance=mem.importance,
            created_at_ms=mem.created_at_ms,
            updated_at_ms=mem.updated_at_ms,
            valid_from_ms=mem.valid_from_ms,
            valid_to_ms=mem.valid_to_ms,
            source_thread_id=mem.source_thread_id,
            superseded_by=mem.superseded_by,
            metadata=dict(mem.metadata),
        )


class ScoredMemoryOut(BaseModel):
    memory: MemoryOut
    score: float
    vector_score: float
    keyword_score: float


class MemoryList(BaseModel):
    memories: list[MemoryOut]
    next_page_token: str = ""


class SearchResults(BaseModel):
    results: list[ScoredMemoryOut]
    context_tokens: int = 0


class MemoryCreate(BaseModel):
    text: str = Field(min_length=1, max_length=32_768)
    kind: WritableKind = "fact"
    importance: int = Field(0, ge=0, le=10, description="1..10; 0 = the default (5)")
    source_thread_id: str | None = None


class MemoryPatch(BaseModel):
    text: str | None = Field(None, min_length=1, max_length=32_768)
    importance: int | None = Field(None, ge=1, le=10)
    kind: WritableKind | None = None


class Deleted(BaseModel):
    deleted: bool
    messages_deleted: int | None = None


class PreferencesOut(BaseModel):
    values: dict[str, str]


class PreferenceValue(BaseModel):
    value: str = Field(max_length=16_384)


class MessageOut(BaseModel):
    id: str
    role: str
    content: str
    created_at_ms: int

    @classmethod
    def from_pb(cls, msg: memory_pb2.Message) -> MessageOut:
        return cls(
            id=msg.id,
            role=PB_TO_ROLE.get(msg.role, "user"),
            content=msg.content,
            created_at_ms=msg.created_at_ms,
        )


class ThreadOut(BaseModel):
    thread_id: str
    user_id: str
    created_at_ms: int
    updated_at_ms: int
    message_count: int
    title: str
    expires_at_ms: int
    has_summary: bool
    closed: bool

    @classmethod
    def from_pb(cls, info: memory_pb2.ThreadInfo, identity: Identity) -> ThreadOut:
        return cls(
            thread_id=info.thread_id,
            user_id=identity.public_user_id(info.user_id),
            created_at_ms=info.created_at_ms,
            updated_at_ms=info.updated_at_ms,
            message_count=info.message_count,
            title=info.title,
            expires_at_ms=info.expires_at_ms,
            has_summary=info.has_summary,
            closed=info.closed,
        )


class ThreadList(BaseModel):
    threads: list[ThreadOut]
    next_page_token: str = ""


class ThreadDetail(BaseModel):
    thread: ThreadOut
    messages: list[MessageOut]
    summary: str = ""


class ThreadClosed(BaseModel):
    episode_enqueued: bool


class ErasureReceiptOut(BaseModel):
    user_id: str
    erased_at_ms: int
    counts: dict[str, int]
    total: int
    pending: list[str] = Field(
        default_factory=list,
        description="stores not erased yet (answer 202): the erasure finishes by itself "
        "when they are back; the same DELETE again returns the whole receipt",
    )


class UserStatsOut(BaseModel):
    threads: int
    messages: int
    approx_bytes: int
    facts: int
    episodes: int
    preferences: int
