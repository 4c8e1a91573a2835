"""Redis vector-index backend (seed 001's design): one HASH per memory and a RediSearch
index ``FT.CREATE ... VECTOR HNSW FLOAT32 DIM 384 DISTANCE_METRIC COSINE`` with TAG fields
for the user, kind and thread, and NUMERIC importance and timestamps.

Keys: ``{prefix}:mem:<memory_id>`` (memory ids are hashes that include the user id, so
they are unique; RediSearch indexes one shard, so no Cluster hash tag is needed); index
``{prefix}:idx:memories``; the model that built the index, and the index schema version,
are recorded in the hash ``{prefix}:idx:memories:model``. Needs RediSearch (Redis 8 /
Redis Stack).

TAG fields fold case unless declared ``CASESENSITIVE``: without it ``Alice`` and ``alice``
would share memories. Schema 1 lacked it; :meth:`RedisVectorStore.open` rebuilds such an
index in place (``FT.DROPINDEX`` keeps the hashes, ``FT.CREATE`` re-indexes them).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from mnemo_memory.embed import ModelInfo
from mnemo_memory.errors import UnavailableError
from mnemo_memory.stores.lua import LuaScript

from .base import (
    KINDS,
    MemoryRecord,
    Records,
    VectorFilter,
    VectorHit,
    as_float32,
    owns,
    stack_vectors,
)

log = logging.getLogger(__name__)

_TAG_SPECIAL = re.compile(r"([^A-Za-z0-9_])")
_FIELDS = [
    "user_id",
    "kind",
    "importance",
    "created_at_ms",
    "updated_at_ms",
    "valid_from_ms",
    "valid_to_ms",
    "thread_id",
    "source_message_ids",
    "superseded_by",
    "slot",
    "metadata",
    "text",
]
_PAGE = 1000
#: HSET only when the hash exists: a record erased meanwhile is not recreated
_UPDATE_IF_EXISTS = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], unpack(ARGV)) end"
)
#: the fields of each key (KEYS) at once: a recall reads ~100 candidates, one call instead
#: of a pipeline of ~100 HMGETs (fewer replies to parse, one script call per chunk)
_GET_MANY = LuaScript(
    "vector_get_many",
    "local out = {} for i, key in ipairs(KEYS) do out[i] = redis.call('HMGET', key, unpack(ARGV)) "
    "end return out",
)
#: keys per script call (Lua's unpack and the reply stay small)
_GET_CHUNK = 256
SCHEMA_VERSION = "2"  # 2: user_id/thread_id TAGs are CASESENSITIVE


def escape_tag(value: str) -> str:
    """Escape a TAG value for a RediSearch query (``.``/``-`` and friends are syntax)."""
    return _TAG_SPECIAL.sub(r"\\\1", value)


def redis_query(flt: VectorFilter) -> str:
    """The RediSearch filter expression of a filter (user id always first)."""
    parts = [f"@user_id:{{{escape_tag(flt.user_id)}}}"]
    if flt.kinds:
        parts.append("@kind:{" + "|".join(escape_tag(k) for k in flt.kinds) + "}")
    if flt.min_importance:
        parts.append(f"@importance:[{int(flt.min_importance)} +inf]")
    if flt.since_ms or flt.until_ms:
        lo = int(flt.since_ms) if flt.since_ms else "-inf"
        hi = int(flt.until_ms) if flt.until_ms else "+inf"
        parts.append(f"@valid_from_ms:[{lo} {hi}]")
    if flt.thread_id:
        parts.append(f"@thread_id:{{{escape_tag(flt.thread_id)}}}")
    if not flt.include_superseded:
        parts.append("@valid_to_ms:[0 0]")
    return " ".join(parts)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisVectorStore:
    """Facts and episodes in Redis hashes indexed by RediSearch."""

    name = "redis"

    def __init__(
        self,
        *,
        model: ModelInfo,
        prefix: str = "mnemo",
        redis: Any = None,
        url: str | None = None,
        socket_timeout_s: float = 5.0,
    ) -> None:
        """``redis``: a binary-safe RESP2 client (``create_redis(settings, binary=True)``,
        as ``build_vector_store`` passes); or ``url`` for a plain one (tests, benchmarks).
        Vectors are raw FLOAT32 bytes, FT.* replies flat lists."""
        self.model = model
        self.prefix = prefix
        self.index = f"{prefix}:idx:memories"
        self.model_key = f"{self.index}:model"
        if redis is None:
            if url is None:
                raise ValueError("RedisVectorStore needs a redis client or a url")
            redis = aioredis.Redis.from_url(
                url,
                decode_responses=False,
                protocol=2,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=2.0,
            )
        self.redis: aioredis.Redis = redis
        self._opened = False
        self._open_lock = asyncio.Lock()
        self._cluster = hasattr(redis, "get_nodes")  # redis.asyncio.RedisCluster

    def key(self, memory_id: str) -> str:
        return f"{self.prefix}:mem:{memory_id}"

    async def _call(self, *args: Any) -> Any:
        try:
            return await self.redis.execute_command(*args)  # type: ignore[no-untyped-call]
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise UnavailableError("vector_store", f"redis vector index: {exc}") from exc

    async def open(self) -> None:
        if self._opened:
            return
        async with self._open_lock:  # concurrent first calls must not rebuild twice
            if not self._opened:
                await self._open()

    async def _open(self) -> None:
        stored = await self._call("HGETALL", self.model_key)
        info = {_s(k): _s(v) for k, v in stored.items()} if stored else {}
        if info:
            self.model.check_against(
                info.get("model_id"), int(info.get("dimension", 0)), f"Redis index {self.index!r}"
            )
            if info.get("schema", "1") != SCHEMA_VERSION:
                log.warning(
                    "rebuilding the Redis vector index with case-sensitive id fields",
                    extra={"index": self.index, "from_schema": info.get("schema", "1")},
                )
                try:
                    await self._call("FT.DROPINDEX", self.index)  # the hashes stay
                except ResponseError as exc:
                    if "unknown index" not in str(exc).lower():
                        raise
        try:
            await self._call(
                "FT.CREATE",
                self.index,
                "ON",
                "HASH",
                "PREFIX",
                "1",
                f"{self.prefix}:mem:",
                "SCHEMA",
                "user_id",
                "TAG",
                "CASESENSITIVE",
                "kind",
                "TAG",
                "thread_id",
                "TAG",
                "CASESENSITIVE",
                "importance",
                "NUMERIC",
                "created_at_ms",
                "NUMERIC",
                "SORTABLE",
                "updated_at_ms",
                "NUMERIC",
                "valid_from_ms",
                "NUMERIC",
                "valid_to_ms",
                "NUMERIC",
                "embedding",
                "VECTOR",
                "HNSW",
                "6",
                "TYPE",
                "FLOAT32",
                "DIM",
                str(self.model.dimension),
                "DISTANCE_METRIC",
                "COSINE",
            )
        except ResponseError as exc:
            if "already exists" not in str(exc).lower():
                raise
        if info.get("schema") != SCHEMA_VERSION:
            if info:
                await self._wait_indexed()
            await self._call(
                "HSET",
                self.model_key,
                "model_id",
                info.get("model_id", self.model.model_id),
                "dimension",
                info.get("dimension", str(self.model.dimension)),
                "schema",
                SCHEMA_VERSION,
            )
        self._opened = True

    async def _wait_indexed(self, timeout_s: float = 60.0) -> None:
        """Wait (bounded) for a rebuilt index to cover the existing hashes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            raw = await self._call("FT.INFO", self.index)
            info = {_s(raw[i]): raw[i + 1] for i in range(0, len(raw) - 1, 2)}
            if _s(info.get("indexing", b"0")) in ("0", "0.0"):
                log.info("Redis vector index rebuilt", extra={"docs": _s(info.get("num_docs"))})
                return
            await asyncio.sleep(0.1)
        log.warning("Redis vector index still re-indexing; recall may miss memories meanwhile")

    async def upsert(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        if not records:
            return
        await self.open()
        vecs = as_float32(vectors)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for record, vec in zip(records, vecs, strict=True):
                    mapping: dict[str, Any] = {k: str(v) for k, v in record.to_flat().items()}
                    mapping["text"] = record.text
                    mapping["embedding"] = vec.tobytes()
                    key = self.key(record.id)
                    pipe.delete(key)
                    pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
                await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise UnavailableError("vector_store", f"redis vector index: {exc}") from exc

    async def update_fields(self, records: list[MemoryRecord]) -> None:
        """HSET of the metadata fields (text and embedding stay) on hashes that still
        exist, atomically."""
        if not records:
            return
        await self.open()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                for record in records:
                    fields: list[Any] = []
                    for k, v in record.to_flat().items():
                        fields += [k, str(v)]
                    pipe.eval(
                        _UPDATE_IF_EXISTS, 1, self.key(record.id), *fields, "text", record.text
                    )
                await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise UnavailableError("vector_store", f"redis vector index: {exc}") from exc

    async def _search(self, query: str, *extra: Any) -> list[tuple[str, dict[str, Any]]]:
        res = await self._call("FT.SEARCH", self.index, query, *extra, "DIALECT", "2")
        out = []
        for i in range(1, len(res), 2):
            fields = res[i + 1]
            out.append(
                (_s(res[i]), {_s(fields[j]): fields[j + 1] for j in range(0, len(fields), 2)})
            )
        return out

    def _record(self, key: str, fields: dict[str, Any]) -> MemoryRecord:
        memory_id = key.rsplit(":", 1)[-1]
        return MemoryRecord.from_flat(memory_id, _s(fields.get("text", b"")), fields)

    async def get(self, ids: list[str]) -> list[MemoryRecord]:
        if not ids:
            return []
        await self.open()
        keys = [self.key(memory_id) for memory_id in ids]
        try:
            if self._cluster:  # keys in different slots: no script may declare them all
                async with self.redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.hmget(key, *_FIELDS)
                    replies = await pipe.execute()
            else:
                replies = []
                for start in range(0, len(keys), _GET_CHUNK):
                    chunk = keys[start : start + _GET_CHUNK]
                    replies += await _GET_MANY.run(self.redis, chunk, _FIELDS)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise UnavailableError("vector_store", f"redis vector index: {exc}") from exc
        return [
            MemoryRecord.from_flat(
                memory_id, _s(values[-1] or b""), dict(zip(_FIELDS, values, strict=True))
            )
            for memory_id, values in zip(ids, replies, strict=True)
            if values and values[0] is not None
        ]

    async def delete(self, ids: list[str]) -> int:
        deleted = 0
        for record in await self.get(ids):
            deleted += int(await self._call("DEL", self.key(record.id)))
        return deleted

    async def query(self, vector: np.ndarray, flt: VectorFilter, k: int) -> list[VectorHit]:
        await self.open()
        blob = as_float32(vector).reshape(-1).tobytes()
        q = f"({redis_query(flt)})=>[KNN {max(1, k)} @embedding $vec AS dist]"
        rows = await self._search(
            q,
            "PARAMS",
            "2",
            "vec",
            blob,
            "SORTBY",
            "dist",
            "ASC",
            "RETURN",
            str(len(_FIELDS) + 1),
            *_FIELDS,
            "dist",
            "LIMIT",
            "0",
            str(max(1, k)),
        )
        hits = [
            VectorHit(self._record(key, f), 1.0 - float(_s(f.get("dist", b"1")))) for key, f in rows
        ]
        # belt and braces: the index must never hand one user another's memory
        return [h for h in hits if owns(h.record, flt.user_id)]

    async def query_many(
        self, vectors: np.ndarray, flt: VectorFilter, k: int
    ) -> list[list[VectorHit]]:
        """:meth:`query` for several vectors (one KNN query each)."""
        return [await self.query(v, flt, k) for v in as_float32(vectors)]

    async def list(
        self, flt: VectorFilter, offset: int, limit: int
    ) -> tuple[list[MemoryRecord], int]:
        await self.open()
        res = await self._call(
            "FT.SEARCH",
            self.index,
            redis_query(flt),
            "RETURN",
            str(len(_FIELDS)),
            *_FIELDS,
            "SORTBY",
            "created_at_ms",
            "DESC",
            "LIMIT",
            str(offset),
            str(limit),
            "DIALECT",
            "2",
        )
        total = int(res[0])
        records = []
        for i in range(1, len(res), 2):
            fields = res[i + 1]
            record = self._record(
                _s(res[i]), {_s(fields[j]): fields[j + 1] for j in range(0, len(fields), 2)}
            )
            if owns(record, flt.user_id):  # belt and braces, as in query()
                records.append(record)
        return records, total

    async def all_matching(self, flt: VectorFilter) -> Records:
        """Every record matching ``flt`` (the keyword index's candidate set)."""
        out: Records = []
        offset = 0
        while True:
            page, total = await self.list(flt, offset, _PAGE)
            out.extend(page)
            offset += _PAGE
            if offset >= total or not page:
                return out

    async def candidates(self, flt: VectorFilter) -> tuple[Records, np.ndarray]:
        """Every record matching ``flt`` with its vector: a plain filter query (no KNN),
        paged oldest first, so none of the user's records is left out (ADR 0016)."""
        await self.open()
        records: Records = []
        rows: list[bytes] = []
        offset = 0
        while True:
            res = await self._call(
                "FT.SEARCH",
                self.index,
                redis_query(flt),
                "RETURN",
                str(len(_FIELDS) + 1),
                *_FIELDS,
                "embedding",
                "SORTBY",
                "created_at_ms",
                "ASC",
                "LIMIT",
                str(offset),
                str(_PAGE),
                "DIALECT",
                "2",
            )
            total = int(res[0])
            for i in range(1, len(res), 2):
                fields = res[i + 1]
                f = {_s(fields[j]): fields[j + 1] for j in range(0, len(fields), 2)}
                record = self._record(_s(res[i]), f)
                blob = f.get("embedding")
                if owns(record, flt.user_id) and isinstance(blob, bytes):
                    records.append(record)
                    rows.append(blob)
            offset += _PAGE
            if offset >= total or len(res) <= 1:
                return records, stack_vectors(rows, self.model.dimension)

    async def delete_user(self, user_id: str) -> dict[str, int]:
        records = await self.all_matching(VectorFilter(user_id=user_id, include_superseded=True))
        counts: dict[str, int] = {}
        for start in range(0, len(records), 500):
            chunk = records[start : start + 500]
            await self._call("DEL", *[self.key(r.id) for r in chunk])
        for r in records:
            counts[r.kind] = counts.get(r.kind, 0) + 1
        return counts

    async def count(self, user_id: str | None = None) -> dict[str, int]:
        await self.open()
        if user_id is None:
            res = await self._call("FT.SEARCH", self.index, "*", "LIMIT", "0", "0")
            return {"total": int(res[0])}
        counts = {"total": 0}
        for kind in KINDS:
            q = f"@user_id:{{{escape_tag(user_id)}}} @kind:{{{kind}}}"
            res = await self._call("FT.SEARCH", self.index, q, "LIMIT", "0", "0", "DIALECT", "2")
            if int(res[0]):
                counts[kind] = int(res[0])
                counts["total"] += int(res[0])
        return counts

    async def aclose(self) -> None:
        await self.redis.aclose()
