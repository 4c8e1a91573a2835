"""The vector-store interface of long-term memory and the record it stores.

Two implementations (``chroma.py``, ``redis_index.py``) keep the same contract, tested by
one parametrised suite. Every query and listing takes a :class:`VectorFilter` whose
``user_id`` is mandatory: there is no way to search across users.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeGuard

import numpy as np

from mnemo_memory.errors import NotFoundError

#: kinds of long-term memory (the proto's MemoryKind without the prefix)
KINDS = ("fact", "preference", "event", "episode", "message")


def _json_list(value: str) -> tuple[str, ...]:
    # most records have none: skip the JSON decoder (recall decodes ~100 records a query)
    return tuple(json.loads(value)) if value and value != "[]" else ()


def _json_map(value: str) -> dict[str, str]:
    return dict(json.loads(value)) if value and value != "{}" else {}


def _text(v: Any) -> str:
    """A stored field as text (Redis gives bytes, Chroma str or numbers, None = absent)."""
    if type(v) is str:
        return v
    if isinstance(v, bytes):
        return v.decode()
    return "" if v is None else str(v)


def _int(v: Any) -> int:
    """A stored numeric field (int, float, or its text; absent or "" = 0)."""
    if type(v) is int:
        return v
    if isinstance(v, bytes):
        v = v.decode()
    if not v:
        return 0
    try:
        return int(v)
    except ValueError:
        return int(float(v))


@dataclass(frozen=True)
class MemoryRecord:
    """One fact or episode as stored (timestamps in epoch milliseconds)."""

    id: str
    user_id: str
    text: str
    kind: str = "fact"
    importance: int = 5
    created_at_ms: int = 0
    updated_at_ms: int = 0
    valid_from_ms: int = 0
    valid_to_ms: int = 0  # 0 = still valid
    source_thread_id: str = ""
    source_message_ids: tuple[str, ...] = ()
    superseded_by: str = ""
    # "subject attribute" slot for contradiction detection ("user|lives_in"), may be ""
    slot: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> MemoryRecord:
        return replace(self, **changes)

    def to_flat(self) -> dict[str, str | int]:
        """Scalar fields for stores whose metadata cannot hold lists or maps."""
        return {
            "user_id": self.user_id,
            "kind": self.kind,
            "importance": int(self.importance),
            "created_at_ms": int(self.created_at_ms),
            "updated_at_ms": int(self.updated_at_ms),
            "valid_from_ms": int(self.valid_from_ms),
            "valid_to_ms": int(self.valid_to_ms),
            "thread_id": self.source_thread_id,
            "source_message_ids": json.dumps(list(self.source_message_ids)),
            "superseded_by": self.superseded_by,
            "slot": self.slot,
            "metadata": json.dumps(self.metadata, sort_keys=True),
        }

    @classmethod
    def from_flat(cls, record_id: str, text: str, flat: dict[str, Any]) -> MemoryRecord:
        """The record of :meth:`to_flat`'s fields: Chroma's typed metadata or Redis' bytes.
        Recall decodes ~100 candidates a query, so this skips the frozen dataclass'
        per-field ``__init__`` (one ``object.__setattr__`` each) and fills ``__dict__``."""
        get = flat.get
        rec = object.__new__(cls)
        rec.__dict__.update(
            id=record_id,
            user_id=_text(get("user_id")),
            text=text,
            kind=_text(get("kind")) or "fact",
            importance=_int(get("importance")),
            created_at_ms=_int(get("created_at_ms")),
            updated_at_ms=_int(get("updated_at_ms")),
            valid_from_ms=_int(get("valid_from_ms")),
            valid_to_ms=_int(get("valid_to_ms")),
            source_thread_id=_text(get("thread_id")),
            source_message_ids=_json_list(_text(get("source_message_ids"))),
            superseded_by=_text(get("superseded_by")),
            slot=_text(get("slot")),
            metadata=_json_map(_text(get("metadata"))),
        )
        return rec

    def to_json(self) -> dict[str, Any]:
        """A JSON-able document (export)."""
        doc = self.__dict__.copy()
        doc["source_message_ids"] = list(self.source_message_ids)
        return doc


#: a list of records (an alias: the stores' ``list`` method shadows the builtin in classes)
Records = list[MemoryRecord]


def owns(record: MemoryRecord | None, user_id: str) -> TypeGuard[MemoryRecord]:
    """Is ``record`` one of ``user_id``'s memories? The one ownership predicate: every read
    by id, and (belt and braces) every search hit, goes through it."""
    return record is not None and record.user_id == user_id


def ensure_owner(record: MemoryRecord | None, user_id: str, memory_id: str) -> MemoryRecord:
    """``record`` when it is ``user_id``'s; NotFoundError otherwise: another user's memory
    answers exactly like a missing one (no existence oracle)."""
    if not owns(record, user_id):
        raise NotFoundError(f"memory {memory_id} not found")
    return record


@dataclass(frozen=True)
class VectorFilter:
    """Which memories a query or listing may see. ``user_id`` is required."""

    user_id: str
    kinds: tuple[str, ...] = ()  # empty = all kinds
    min_importance: int = 0  # 0 = no minimum
    since_ms: int = 0  # valid_from_ms >= since (0 = unbounded)
    until_ms: int = 0  # valid_from_ms <= until (0 = unbounded)
    thread_id: str = ""  # empty = all threads
    include_superseded: bool = False  # False = only valid_to_ms == 0

    def __post_init__(self) -> None:
        if not self.user_id:
            raise ValueError("VectorFilter.user_id is required")

    def matches(self, r: MemoryRecord) -> bool:
        """The same predicate in Python (used by tests and in-memory post-filtering)."""
        return (
            owns(r, self.user_id)
            and (not self.kinds or r.kind in self.kinds)
            and r.importance >= self.min_importance
            and (not self.since_ms or r.valid_from_ms >= self.since_ms)
            and (not self.until_ms or r.valid_from_ms <= self.until_ms)
            and (not self.thread_id or r.source_thread_id == self.thread_id)
            and (self.include_superseded or r.valid_to_ms == 0)
        )


@dataclass(frozen=True)
class VectorHit:
    record: MemoryRecord
    similarity: float  # cosine similarity, -1..1 (higher is closer)


class VectorStore(Protocol):
    """Async interface both backends implement. Unreachable backend → UnavailableError."""

    name: str

    async def open(self) -> None:
        """Create or open the collection/index; ModelMismatchError if built by another model."""
        ...

    async def upsert(self, records: list[MemoryRecord], vectors: np.ndarray) -> None: ...

    async def update_fields(self, records: list[MemoryRecord]) -> None:
        """Rewrite the metadata of stored records (every field but ``text``), keeping their
        text and vector: for supersede and merge, which leave the embedded text alone. Ids
        no longer stored are skipped, never recreated (a record erased meanwhile stays
        erased)."""
        ...

    async def get(self, ids: list[str]) -> list[MemoryRecord]:
        """Records by id (missing ids are skipped), any user: callers check ownership."""
        ...

    async def delete(self, ids: list[str]) -> int: ...

    async def query(self, vector: np.ndarray, flt: VectorFilter, k: int) -> list[VectorHit]:
        """Up to ``k`` nearest records matching ``flt``, closest first."""
        ...

    async def query_many(
        self, vectors: np.ndarray, flt: VectorFilter, k: int
    ) -> list[list[VectorHit]]:
        """:meth:`query` for each row of ``vectors``."""
        ...

    async def all_matching(self, flt: VectorFilter) -> list[MemoryRecord]:
        """Every record matching ``flt`` (the keyword index's candidate set)."""
        ...

    async def candidates(self, flt: VectorFilter) -> tuple[list[MemoryRecord], np.ndarray]:
        """Every record matching ``flt`` with its stored vector (rows in record order),
        read by the metadata filter alone: no ANN, so none of the user's records is missed
        however many near-identical vectors other users hold (dedup and supersede score
        them exactly with :func:`exact_similarities`; ADR 0016)."""
        ...

    async def list(
        self, flt: VectorFilter, offset: int, limit: int
    ) -> tuple[list[MemoryRecord], int]:
        """A page of matching records, newest (created_at_ms) first, and the total."""
        ...

    async def delete_user(self, user_id: str) -> dict[str, int]:
        """Delete every record of the user; counts by kind."""
        ...

    async def count(self, user_id: str | None = None) -> dict[str, int]:
        """Counts by kind (one user, or all records with ``user_id=None``)."""
        ...

    async def aclose(self) -> None: ...


def as_float32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))


def stack_vectors(rows: list[Any], dimension: int) -> np.ndarray:
    """``rows`` (arrays, lists or FLOAT32 bytes) as one ``(n, dimension)`` float32 matrix."""
    if not rows:
        return np.zeros((0, dimension), dtype=np.float32)
    return as_float32(
        np.stack([np.frombuffer(r, dtype=np.float32) if isinstance(r, bytes) else r for r in rows])
    ).reshape(len(rows), dimension)


def exact_similarities(queries: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine similarity of every query row with every candidate row (exact, no index):
    ``(len(queries), len(matrix))``. Rows need not be normalised."""
    q = as_float32(queries).reshape(len(queries), -1)
    m = as_float32(matrix).reshape(len(matrix), q.shape[1] if len(q) else -1)
    if not len(q) or not len(m):
        return np.zeros((len(q), len(m)), dtype=np.float32)
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    mn = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    sims: np.ndarray = qn @ mn.T
    return sims
