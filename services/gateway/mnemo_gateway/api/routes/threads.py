"""A user's conversation threads: list, read, close, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from mnemo.memory.v1 import memory_pb2

from ...core.errors import ApiError, valid_id
from ..deps import CurrentIdentity, Memory, MemoryUser
from ..schemas import Deleted, MessageOut, ThreadClosed, ThreadDetail, ThreadList, ThreadOut

router = APIRouter(prefix="/v1/users/{user_id}/threads", tags=["threads"])

ThreadId = Annotated[str, Path(description="id of the thread")]


@router.get("", response_model=ThreadList, summary="A user's threads, most recent first")
async def list_threads(
    user: MemoryUser,
    memory: Memory,
    identity: CurrentIdentity,
    page_size: Annotated[int, Query(ge=0, le=500)] = 0,
    page_token: str = "",
) -> ThreadList:
    resp = await memory.list_threads(
        memory_pb2.ListThreadsRequest(user_id=user, page_size=page_size, page_token=page_token),
    )
    return ThreadList(
        threads=[ThreadOut.from_pb(t, identity) for t in resp.threads],
        next_page_token=resp.next_page_token,
    )


@router.get("/{thread_id}", response_model=ThreadDetail, summary="One thread with its messages")
async def get_thread(
    user: MemoryUser,
    memory: Memory,
    identity: CurrentIdentity,
    thread_id: ThreadId,
    limit: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> ThreadDetail:
    resp = await memory.get_thread(
        memory_pb2.GetThreadRequest(
            user_id=user, thread_id=valid_id(thread_id, "thread_id"), limit=limit
        ),
    )
    return ThreadDetail(
        thread=ThreadOut.from_pb(resp.thread, identity),
        messages=[MessageOut.from_pb(x) for x in resp.messages],
        summary=resp.summary,
    )


@router.post(
    "/{thread_id}/close",
    response_model=ThreadClosed,
    summary="Mark a conversation finished (it becomes an episode)",
)
async def close_thread(user: MemoryUser, memory: Memory, thread_id: ThreadId) -> ThreadClosed:
    resp = await memory.close_thread(
        memory_pb2.CloseThreadRequest(user_id=user, thread_id=valid_id(thread_id, "thread_id"))
    )
    return ThreadClosed(episode_enqueued=resp.episode_enqueued)


@router.delete("/{thread_id}", response_model=Deleted, summary="Delete a thread")
async def delete_thread(user: MemoryUser, memory: Memory, thread_id: ThreadId) -> Deleted:
    resp = await memory.delete_thread(
        memory_pb2.DeleteThreadRequest(user_id=user, thread_id=valid_id(thread_id, "thread_id"))
    )
    if not resp.deleted:
        raise ApiError(
            404, "not_found", f"no thread {thread_id!r} for this user", field="thread_id"
        )
    return Deleted(deleted=True, messages_deleted=resp.messages_deleted)
