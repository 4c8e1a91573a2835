"""Chroma backend: embedded ``PersistentClient`` (``VECTOR__CHROMA_PATH``) or ``HttpClient``
to a ``chroma run`` server (``CHROMADB_URL``).

chromadb's client is synchronous, so every call runs on a small private thread pool.
Embeddings are always passed explicitly and the collection is created without an
embedding function: Chroma's default one would try to download a model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from mnemo_memory.embed import ModelInfo
from mnemo_memory.errors import UnavailableError

from .base import MemoryRecord, Records, VectorFilter, VectorHit, as_float32, stack_vectors
from .chroma_purge import purge_in_child

log = logging.getLogger(__name__)

MODEL_KEY = "mnemo_embedding_model"
#: records per ``get`` page when reading a user's candidates with their vectors
CANDIDATE_PAGE = 5000
DIM_KEY = "mnemo_embedding_dimension"


def chroma_where(flt: VectorFilter) -> dict[str, Any]:
    """The Chroma ``where`` clause of a filter (user id always first)."""
    clauses: list[dict[str, Any]] = [{"user_id": flt.user_id}]
    if flt.kinds:
        clauses.append({"kind": {"$in": list(flt.kinds)}})
    if flt.min_importance:
        clauses.append({"importance": {"$gte": int(flt.min_importance)}})
    if flt.since_ms:
        clauses.append({"valid_from_ms": {"$gte": int(flt.since_ms)}})
    if flt.until_ms:
        clauses.append({"valid_from_ms": {"$lte": int(flt.until_ms)}})
    if flt.thread_id:
        clauses.append({"thread_id": flt.thread_id})
    if not flt.include_superseded:
        clauses.append({"valid_to_ms": 0})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _hits(res: Any, row: int) -> list[VectorHit]:
    """The hits of query ``row`` of a Chroma ``query`` result, best first."""
    return [
        VectorHit(MemoryRecord.from_flat(i, doc or "", meta or {}), 1.0 - float(dist))
        for i, doc, meta, dist in zip(
            res["ids"][row],
            res["documents"][row],
            res["metadatas"][row],
            res["distances"][row],
            strict=True,
        )
    ]


def _is_connection_error(exc: BaseException) -> bool:
    mod = type(exc).__module__
    text = str(exc).lower()
    return (
        isinstance(exc, ConnectionError | TimeoutError | OSError)
        or mod.startswith(("httpx", "httpcore", "urllib3", "requests"))
        or "connect" in text
    )


class ChromaVectorStore:
    """One Chroma collection ``{VECTOR__COLLECTION_PREFIX}_memories`` for all users."""

    name = "chroma"

    def __init__(
        self,
        *,
        model: ModelInfo,
        path: str | None = None,
        url: str | None = None,
        collection_prefix: str = "mnemo",
        token: str | None = None,
    ) -> None:
        if not path and not url:
            raise ValueError("ChromaVectorStore needs a path (embedded) or a url (server)")
        self.model = model
        self.path = path
        self.url = url
        #: sent as ``Authorization: Bearer`` to the server (VECTOR__CHROMA_TOKEN)
        self._token = token
        self.collection_name = f"{collection_prefix}_memories"
        self._client: Any = None
        self._collection: Any = None
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chroma")

    @property
    def mode(self) -> str:
        return "server" if self.url else "embedded"

    # --- plumbing ---
    def _connect(self) -> Any:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        if self.url:
            parts = urlsplit(self.url if "://" in self.url else f"http://{self.url}")
            return chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or 8000,
                ssl=parts.scheme == "https",
                headers={"Authorization": f"Bearer {self._token}"} if self._token else None,
                settings=chroma_settings,
            )
        return chromadb.PersistentClient(path=str(self.path), settings=chroma_settings)

    def _collection_sync(self) -> Any:
        if self._collection is not None:
            return self._collection
        with self._lock:
            if self._collection is not None:
                return self._collection
            client = self._client or self._connect()
            self._client = client
            try:
                coll = client.get_collection(self.collection_name, embedding_function=None)
            except Exception as exc:  # NotFoundError differs between client modes
                if _is_connection_error(exc) and "does not exist" not in str(exc).lower():
                    raise
                coll = client.get_or_create_collection(
                    self.collection_name,
                    embedding_function=None,
                    metadata={
                        "hnsw:space": "cosine",
                        MODEL_KEY: self.model.model_id,
                        DIM_KEY: self.model.dimension,
                    },
                )
            meta = coll.metadata or {}
            self.model.check_against(
                meta.get(MODEL_KEY),
                meta.get(DIM_KEY),
                f"Chroma collection {self.collection_name!r}",
            )
            self._collection = coll
            return coll

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except Exception as exc:
            if self.url and _is_connection_error(exc):
                # drop the handle: the next call reconnects once the server is back
                self._collection = None
                self._client = None
                raise UnavailableError("vector_store", f"chroma at {self.url}: {exc}") from exc
            raise

    # --- interface ---
    async def open(self) -> None:
        await self._run(self._collection_sync)

    async def upsert(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        if not records:
            return
        vecs = as_float32(vectors)

        def call() -> None:
            self._collection_sync().upsert(
                ids=[r.id for r in records],
                embeddings=vecs,
                documents=[r.text for r in records],
                metadatas=[r.to_flat() for r in records],
            )

        await self._run(call)

    async def update_fields(self, records: list[MemoryRecord]) -> None:
        """Metadata only: re-inserting the vector into HNSW costs about three times as much,
        ``update`` skips ids that are gone instead of recreating them, and passing documents
        would make Chroma embed them with its default (downloading) embedding function."""
        if not records:
            return

        def call() -> None:
            self._collection_sync().update(
                ids=[r.id for r in records],
                metadatas=[r.to_flat() for r in records],
            )

        await self._run(call)

    async def get(self, ids: list[str]) -> list[MemoryRecord]:
        if not ids:
            return []

        def call() -> list[MemoryRecord]:
            res = self._collection_sync().get(ids=list(ids), include=["documents", "metadatas"])
            by_id = {
                i: MemoryRecord.from_flat(i, doc or "", meta or {})
                for i, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True)
            }
            return [by_id[i] for i in ids if i in by_id]

        return await self._run(call)  # type: ignore[no-any-return]

    async def delete(self, ids: list[str]) -> int:
        if not ids:
            return 0

        def call() -> int:
            coll = self._collection_sync()
            present = coll.get(ids=list(ids), include=[])["ids"]
            if present:
                coll.delete(ids=present)
            return len(present)

        return await self._run(call)  # type: ignore[no-any-return]

    async def query(self, vector: np.ndarray, flt: VectorFilter, k: int) -> list[VectorHit]:
        vec = as_float32(vector).reshape(1, -1)

        def call() -> list[VectorHit]:
            res = self._collection_sync().query(
                query_embeddings=vec,
                n_results=max(1, k),
                where=chroma_where(flt),
                include=["documents", "metadatas", "distances"],
            )
            return _hits(res, 0)

        return await self._run(call)  # type: ignore[no-any-return]

    async def query_within(
        self, vector: np.ndarray, flt: VectorFilter, k: int, ids: list[str]
    ) -> list[VectorHit]:
        """:meth:`query` among ``ids`` only — the user's memory ids, read from the keyword
        index — with Chroma's ``ids`` filter instead of the ``where`` metadata filter
        (ADR 0029: several times cheaper for a user with many memories). A stale id
        (deleted, superseded, another user's) cannot leak: every hit is checked against
        ``flt`` on its stored record; an id Chroma no longer holds makes it refuse the
        query, which then takes the metadata filter. No ``where`` is added: ids and
        where together are pathologically slow in Chroma 1.5."""
        if not ids:
            return []
        vec = as_float32(vector).reshape(1, -1)

        def call() -> list[VectorHit]:
            coll = self._collection_sync()
            include = ["documents", "metadatas", "distances"]
            try:
                res = coll.query(
                    query_embeddings=vec,
                    n_results=max(1, min(k, len(ids))),
                    ids=ids,
                    include=include,
                )
            except Exception as exc:
                if "error finding id" not in str(exc).lower():
                    raise
                # an id the store no longer holds (deleted, the index not yet in step):
                # Chroma refuses the whole query, so this one takes the metadata filter
                res = coll.query(
                    query_embeddings=vec,
                    n_results=max(1, k),
                    where=chroma_where(flt),
                    include=include,
                )
            return [hit for hit in _hits(res, 0) if flt.matches(hit.record)]

        return await self._run(call)  # type: ignore[no-any-return]

    async def query_many(
        self, vectors: np.ndarray, flt: VectorFilter, k: int
    ) -> list[list[VectorHit]]:
        """:meth:`query` for several vectors in one round trip."""
        vecs = as_float32(vectors).reshape(len(vectors), -1)
        if not len(vecs):
            return []

        def call() -> list[list[VectorHit]]:
            res = self._collection_sync().query(
                query_embeddings=vecs,
                n_results=max(1, k),
                where=chroma_where(flt),
                include=["documents", "metadatas", "distances"],
            )
            return [_hits(res, row) for row in range(len(res["ids"]))]

        return await self._run(call)  # type: ignore[no-any-return]

    def _all_matching(self, flt: VectorFilter) -> list[MemoryRecord]:
        res = self._collection_sync().get(
            where=chroma_where(flt), include=["documents", "metadatas"]
        )
        return [
            MemoryRecord.from_flat(i, doc or "", meta or {})
            for i, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True)
        ]

    async def list(
        self, flt: VectorFilter, offset: int, limit: int
    ) -> tuple[list[MemoryRecord], int]:
        def call() -> tuple[list[MemoryRecord], int]:
            # Chroma cannot sort; one user's memories are few enough to sort here
            records = sorted(
                self._all_matching(flt), key=lambda r: (r.created_at_ms, r.id), reverse=True
            )
            return records[offset : offset + limit], len(records)

        return await self._run(call)  # type: ignore[no-any-return]

    async def delete_user(self, user_id: str) -> dict[str, int]:
        def call() -> dict[str, int]:
            coll = self._collection_sync()
            res = coll.get(where={"user_id": user_id}, include=["metadatas"])
            counts: dict[str, int] = {}
            for meta in res["metadatas"]:
                kind = str((meta or {}).get("kind", "fact"))
                counts[kind] = counts.get(kind, 0) + 1
            if res["ids"]:
                coll.delete(ids=res["ids"])
            return counts

        return await self._run(call)  # type: ignore[no-any-return]

    async def count(self, user_id: str | None = None) -> dict[str, int]:
        def call() -> dict[str, int]:
            coll = self._collection_sync()
            if user_id is None:
                return {"total": int(coll.count())}
            res = coll.get(where={"user_id": user_id}, include=["metadatas"])
            counts: dict[str, int] = {"total": len(res["ids"])}
            for meta in res["metadatas"]:
                kind = str((meta or {}).get("kind", "fact"))
                counts[kind] = counts.get(kind, 0) + 1
            return counts

        return await self._run(call)  # type: ignore[no-any-return]

    async def candidates(self, flt: VectorFilter) -> tuple[Records, np.ndarray]:
        """Every record matching ``flt`` with its vector, by metadata filter (no HNSW):
        Chroma's filtered ANN misses some of a user's records when other users hold
        near-identical vectors (ADR 0016)."""

        def call() -> tuple[Records, np.ndarray]:
            coll = self._collection_sync()
            records: Records = []
            rows: list[Any] = []
            offset = 0
            while True:
                res = coll.get(
                    where=chroma_where(flt),
                    include=["documents", "metadatas", "embeddings"],
                    limit=CANDIDATE_PAGE,
                    offset=offset,
                )
                ids = res["ids"]
                for i, doc, meta, emb in zip(
                    ids, res["documents"], res["metadatas"], res["embeddings"], strict=True
                ):
                    records.append(MemoryRecord.from_flat(i, doc or "", meta or {}))
                    rows.append(emb)
                if len(ids) < CANDIDATE_PAGE:
                    return records, stack_vectors(rows, self.model.dimension)
                offset += CANDIDATE_PAGE

        return await self._run(call)  # type: ignore[no-any-return]

    async def all_matching(self, flt: VectorFilter) -> Records:
        """Every record matching ``flt`` (the keyword index's candidate set)."""
        return await self._run(self._all_matching, flt)  # type: ignore[no-any-return]

    async def purge(self) -> dict[str, int]:
        """Remove deleted records' bytes from the embedded store's files
        (:mod:`.chroma_purge`). Server mode: nothing the client API can reach."""
        if self.url or not self.path:
            return {}
        return await self._run(self._purge_sync)  # type: ignore[no-any-return]

    def _purge_sync(self) -> dict[str, int]:
        self._collection_sync()  # the collection exists (and is ours) before touching files
        return purge_in_child(str(self.path), self.collection_name)

    async def aclose(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._collection = None
        self._client = None
