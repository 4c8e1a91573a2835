"""Long-term memories of a user: list, search, add, correct, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from mnemo.memory.v1 import memory_pb2

from ...core.errors import ApiError
from ..deps import Memory, MemoryUser
from ..schemas import (
    KIND_TO_PB,
    Deleted,
    KindName,
    MemoryCreate,
    MemoryList,
    MemoryOut,
    MemoryPatch,
    ScoredMemoryOut,
    SearchResults,
)
from ..turns import checked_id

router = APIRouter(prefix="/v1/users/{user_id}/memories", tags=["memories"])

MemoryId = Annotated[str, Path(description="id of the memory")]


def _filter(
    kinds: list[KindName] | None,
    thread_id: str | None,
    min_importance: int,
    include_superseded: bool,
) -> memory_pb2.MemoryFilter:
    return memory_pb2.MemoryFilter(
        kinds=[KIND_TO_PB[k] for k in kinds or []],
        thread_id=checked_id(thread_id, "thread_id") or "",
        min_importance=min_importance,
        include_superseded=include_superseded,
    )


@router.get("", response_model=MemoryList, summary="List a user's memories (newest first)")
async def list_memories(
    user: MemoryUser,
    memory: Memory,
    kind: Annotated[list[KindName] | None, Query()] = None,
    thread_id: str | None = None,
    min_importance: Annotated[int, Query(ge=0, le=10)] = 0,
    include_superseded: bool = False,
    page_size: Annotated[int, Query(ge=0, le=1000)] = 0,
    page_token: str = "",
) -> MemoryList:
    resp = await memory.list_memories(
        memory_pb2.ListMemoriesRequest(
            user_id=user,
            filter=_filter(kind, thread_id, min_importance, include_superseded),
            page_size=page_size,
            page_token=page_token,
        ),
    )
    return MemoryList(
        memories=[MemoryOut.from_pb(x) for x in resp.memories], next_page_token=resp.next_page_token
    )


@router.get("/search", response_model=SearchResults, summary="Search a user's memories")
async def search_memories(
    user: MemoryUser,
    memory: Memory,
    q: Annotated[str, Query(min_length=1, max_length=4096, description="what to look for")],
    top_k: Annotated[int, Query(ge=0, le=100)] = 0,
    kind: Annotated[list[KindName] | None, Query()] = None,
    thread_id: str | None = None,
    min_importance: Annotated[int, Query(ge=0, le=10)] = 0,
) -> SearchResults:
    resp = await memory.search_memories(
        memory_pb2.SearchMemoriesRequest(
            user_id=user,
            query=q,
            top_k=top_k,
            filter=_filter(kind, thread_id, min_importance, False),
        ),
    )
    return SearchResults(
        results=[
            ScoredMemoryOut(
                memory=MemoryOut.from_pb(r.memory),
                score=r.score,
                vector_score=r.vector_score,
                keyword_score=r.keyword_score,
            )
            for r in resp.results
        ],
        context_tokens=resp.context_tokens,
    )


@router.post("", response_model=MemoryOut, status_code=201, summary="Tell Mnemo a fact")
async def add_memory(user: MemoryUser, memory: Memory, body: MemoryCreate) -> MemoryOut:
    resp = await memory.add_memory(
        memory_pb2.AddMemoryRequest(
            user_id=user,
            text=body.text,
            kind=KIND_TO_PB[body.kind],
            importance=body.importance,
            source_thread_id=checked_id(body.source_thread_id, "source_thread_id") or "",
        ),
    )
    return MemoryOut.from_pb(resp)


@router.patch("/{memory_id}", response_model=MemoryOut, summary="Correct a memory")
async def update_memory(
    user: MemoryUser, memory: Memory, memory_id: MemoryId, body: MemoryPatch
) -> MemoryOut:
    if body.text is None and body.importance is None and body.kind is None:
        raise ApiError(422, "empty_update", "send at least one of text, importance, kind")
    req = memory_pb2.UpdateMemoryRequest(
        user_id=user, memory_id=checked_id(memory_id, "memory_id") or ""
    )
    if body.text is not None:
        req.text = body.text
    if body.importance is not None:
        req.importance = body.importance
    if body.kind is not None:
        req.kind = KIND_TO_PB[body.kind]
    return MemoryOut.from_pb(await memory.update_memory(req))


@router.delete("/{memory_id}", response_model=Deleted, summary="Forget one memory")
async def delete_memory(user: MemoryUser, memory: Memory, memory_id: MemoryId) -> Deleted:
    resp = await memory.delete_memory(
        memory_pb2.DeleteMemoryRequest(
            user_id=user, memory_id=checked_id(memory_id, "memory_id") or ""
        ),
    )
    if not resp.deleted:
        raise ApiError(
            404, "not_found", f"no memory {memory_id!r} for this user", field="memory_id"
        )
    return Deleted(deleted=True)
