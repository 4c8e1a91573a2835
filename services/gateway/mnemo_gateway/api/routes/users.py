"""The user as a whole: export everything, erase everything, usage stats."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Response
from mnemo.memory.v1 import memory_pb2

from ..deps import CurrentIdentity, Memory, MemoryUser
from ..schemas import ErasureReceiptOut, UserStatsOut

router = APIRouter(prefix="/v1/users/{user_id}", tags=["users"])


@router.get("/export", summary="Everything Mnemo holds about a user, as one JSON document")
async def export_user(
    user: MemoryUser, memory: Memory, identity: CurrentIdentity
) -> dict[str, Any]:
    sections: dict[str, list[Any]] = {}
    async for chunk in memory.export_user(user):
        try:
            doc = json.loads(chunk.json or b"null")
        except ValueError:
            doc = chunk.json.decode("utf-8", "replace")
        sections.setdefault(chunk.section or "other", []).append(
            _public(doc, user, identity.public_user_id(user))
        )
    return {
        "user_id": identity.public_user_id(user),
        "exported_at_ms": int(time.time() * 1000),
        "sections": sections,
    }


def _public(doc: Any, memory_user: str, public_user: str) -> Any:
    """``doc`` with every ``user_id`` naming ``memory_user`` (the mode- and tenant-
    namespaced id) replaced by the id the caller knows."""
    if isinstance(doc, dict):
        return {
            k: public_user
            if k == "user_id" and v == memory_user
            else _public(v, memory_user, public_user)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_public(v, memory_user, public_user) for v in doc]
    return doc


@router.delete(
    "",
    response_model=ErasureReceiptOut,
    summary="Erase every trace of a user; returns the receipt (202 while a store is pending)",
    responses={202: {"model": ErasureReceiptOut, "description": "erasure pending"}},
)
async def forget_user(
    user: MemoryUser, memory: Memory, identity: CurrentIdentity, response: Response
) -> ErasureReceiptOut:
    resp = await memory.forget_user(memory_pb2.ForgetUserRequest(user_id=user))
    r = resp.receipt
    if r.pending:
        response.status_code = 202
    return ErasureReceiptOut(
        user_id=identity.public_user_id(r.user_id or user),
        erased_at_ms=r.erased_at_ms,
        counts=dict(r.counts),
        total=r.total,
        pending=list(r.pending),
    )


@router.get("/stats", response_model=UserStatsOut, summary="How much is held about a user")
async def user_stats(user: MemoryUser, memory: Memory) -> UserStatsOut:
    resp = await memory.get_stats(memory_pb2.GetStatsRequest(user_id=user))
    u = resp.user
    return UserStatsOut(
        threads=u.threads,
        messages=u.messages,
        approx_bytes=u.approx_bytes,
        facts=u.facts,
        episodes=u.episodes,
        preferences=u.preferences,
    )
