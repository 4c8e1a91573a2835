"""Protobuf ↔ domain translation: the one boundary module of the memory service.

The servicers (``servicer*.py``) call it; ``stores/`` and ``longterm/`` take and return
domain types only (records, filters, :class:`~.longterm.ranking.Ranked`, kinds as strings).
"""

from __future__ import annotations

from mnemo.memory.v1 import memory_pb2

from mnemo_memory.errors import InvalidArgumentError
from mnemo_memory.longterm.ranking import Ranked
from mnemo_memory.stores.jobs import JobType
from mnemo_memory.stores.keys import checked_id
from mnemo_memory.stores.threads import StoredMessage, ThreadMeta
from mnemo_memory.stores.vector import MemoryRecord, VectorFilter

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


# --- long-term memory: records, filters, kinds ---
KIND_TO_PB = {
    "fact": memory_pb2.MEMORY_KIND_FACT,
    "preference": memory_pb2.MEMORY_KIND_PREFERENCE,
    "event": memory_pb2.MEMORY_KIND_EVENT,
    "episode": memory_pb2.MEMORY_KIND_EPISODE,
    "message": memory_pb2.MEMORY_KIND_MESSAGE,
}
PB_TO_KIND: dict[int, str] = {v: k for k, v in KIND_TO_PB.items()}
MAX_TOP_K = 100  # results one search or recall may ask for


def kind_from_pb(value: int, default: str = "fact") -> str:
    """Domain kind of a MemoryKind (UNSPECIFIED → ``default``)."""
    return PB_TO_KIND.get(value, default)


def filter_from_pb(
    user_id: str, f: memory_pb2.MemoryFilter | None, field: str = "filter"
) -> VectorFilter:
    """The store filter of a request's MemoryFilter; ``user_id`` always set. A bad thread
    id or importance is INVALID_ARGUMENT naming ``field`` (e.g. ``recall.filter.thread_id``)."""
    if f is None:
        return VectorFilter(user_id=user_id)
    if f.thread_id:
        checked_id(f.thread_id, f"{field}.thread_id")
    if not 0 <= f.min_importance <= 10:
        raise InvalidArgumentError(f"{field}.min_importance", "must be between 0 and 10")
    return VectorFilter(
        user_id=user_id,
        kinds=tuple(sorted({PB_TO_KIND[k] for k in f.kinds if k in PB_TO_KIND})),
        min_importance=max(0, int(f.min_importance)),
        since_ms=max(0, int(f.since_ms)),
        until_ms=max(0, int(f.until_ms)),
        thread_id=f.thread_id,
        include_superseded=bool(f.include_superseded),
    )


def record_to_pb(r: MemoryRecord) -> memory_pb2.Memory:
    return memory_pb2.Memory(
        id=r.id,
        user_id=r.user_id,
        kind=KIND_TO_PB.get(r.kind, memory_pb2.MEMORY_KIND_FACT),
        text=r.text,
        importance=r.importance,
        created_at_ms=r.created_at_ms,
        updated_at_ms=r.updated_at_ms,
        valid_from_ms=r.valid_from_ms,
        valid_to_ms=r.valid_to_ms,
        source_thread_id=r.source_thread_id,
        source_message_ids=list(r.source_message_ids),
        superseded_by=r.superseded_by,
        metadata={k: str(v) for k, v in r.metadata.items()},
    )


def ranked_to_pb(r: Ranked) -> memory_pb2.ScoredMemory:
    return memory_pb2.ScoredMemory(
        memory=record_to_pb(r.record),
        score=r.score,
        vector_score=r.vector_score,
        keyword_score=r.keyword_score,
    )


def check_recall(options: memory_pb2.RecallOptions) -> None:
    """Refuse PrepareTurn recall options that search could not honour (before any work:
    recall errors later only degrade the answer)."""
    if not 0 <= options.top_k <= MAX_TOP_K:
        raise InvalidArgumentError("recall.top_k", f"must be between 0 and {MAX_TOP_K}")
    if options.HasField("filter"):
        filter_from_pb("-", options.filter, "recall.filter")


def recall_filter(user_id: str, options: memory_pb2.RecallOptions) -> VectorFilter:
    """The store filter of PrepareTurn's recall options (checked by :func:`check_recall`)."""
    return filter_from_pb(user_id, options.filter if options.HasField("filter") else None)
