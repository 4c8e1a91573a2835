"""Records of thread history: stored messages, thread metadata, append results."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class StoredMessage:
    id: str
    role: str  # "user" | "assistant" | "system"
    content: str
    created_at_ms: int
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: str) -> StoredMessage:
        doc = json.loads(raw)
        return cls(
            id=doc["id"],
            role=doc["role"],
            content=doc["content"],
            created_at_ms=int(doc.get("created_at_ms", 0)),
            metadata=doc.get("metadata") or {},
        )

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "created_at_ms": self.created_at_ms,
        }
        if self.metadata:
            doc["metadata"] = self.metadata
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class ThreadMeta:
    thread_id: str
    user_id: str
    created_at_ms: int
    updated_at_ms: int
    message_count: int
    title: str
    expires_at_ms: int
    has_summary: bool
    closed: bool
    total_messages: int = 0

    @classmethod
    def from_hash(
        cls, h: dict[str, str], *, pttl_ms: int, has_summary: bool, now: int
    ) -> ThreadMeta:
        return cls(
            thread_id=h.get("thread_id", ""),
            user_id=h.get("user_id", ""),
            created_at_ms=int(h.get("created_at_ms", 0)),
            updated_at_ms=int(h.get("updated_at_ms", 0)),
            message_count=int(h.get("message_count", 0)),
            title=h.get("title", ""),
            expires_at_ms=now + pttl_ms if pttl_ms > 0 else 0,
            has_summary=has_summary,
            closed=h.get("closed") == "1",
            total_messages=int(h.get("total_messages", 0)),
        )


@dataclass(frozen=True)
class AppendResult:
    thread_id: str
    message_ids: list[str]
    duplicate: bool
    message_count: int
    created: bool
    enqueued_jobs: list[str]  # job types


def message_ids_for(thread_id: str, idempotency_key: str) -> list[str]:
    """Ids of a turn's two messages, derived from the idempotency key so a replay
    answers with the ids of the turn that was stored."""
    digest = hashlib.sha256(f"{thread_id}\x00{idempotency_key}".encode()).hexdigest()[:24]
    return [f"m{digest}u", f"m{digest}a"]
