"""Domain objects → protobuf messages (the servicers stay thin)."""

from __future__ import annotations

from mnemo.memory.v1 import memory_pb2

from mnemo_memory.stores.jobs import JobType
from mnemo_memory.stores.threads import StoredMessage, ThreadMeta

ROLES = {
    "user": memory_pb2.ROLE_USER,
    "assistant": memory_pb2.ROLE_ASSISTANT,
    "system": memory_pb2.ROLE_SYSTEM,
}
JOB_TYPES: dict[str, memory_pb2.JobType.ValueType] = {
    JobType.EXTRACT_FACTS: memory_pb2.JOB_TYPE_EXTRACT_FACTS,
    JobType.SUMMARIZE_THREAD: memory_pb2.JOB_TYPE_SUMMARIZE_THREAD,
    JobType.CREATE_EPISODE: memory_pb2.JOB_TYPE_CREATE_EPISODE,
}


def message_pb(m: StoredMessage) -> memory_pb2.Message:
    return memory_pb2.Message(
        id=m.id,
        role=ROLES.get(m.role, memory_pb2.ROLE_UNSPECIFIED),
        content=m.content,
        created_at_ms=m.created_at_ms,
    )


def thread_info_pb(t: ThreadMeta) -> memory_pb2.ThreadInfo:
    return memory_pb2.ThreadInfo(
        thread_id=t.thread_id,
        user_id=t.user_id,
        created_at_ms=t.created_at_ms,
        updated_at_ms=t.updated_at_ms,
        message_count=t.message_count,
        title=t.title,
        expires_at_ms=t.expires_at_ms,
        has_summary=t.has_summary,
        closed=t.closed,
    )
