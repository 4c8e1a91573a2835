"""Per-user preferences (a small key/value map the assistant always sees)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from mnemo.memory.v1 import memory_pb2

from ...core.errors import valid_id
from ..deps import Memory, MemoryUser
from ..schemas import PreferencesOut, PreferenceValue

router = APIRouter(prefix="/v1/users/{user_id}/preferences", tags=["preferences"])

PrefKey = Annotated[str, Path(description="preference name, e.g. `language`")]


@router.get("", response_model=PreferencesOut, summary="A user's preferences")
async def get_preferences(user: MemoryUser, memory: Memory) -> PreferencesOut:
    resp = await memory.get_preferences(memory_pb2.GetPreferencesRequest(user_id=user))
    return PreferencesOut(values=dict(resp.values))


@router.put("/{key}", response_model=PreferencesOut, summary="Set one preference")
async def set_preference(
    user: MemoryUser, memory: Memory, key: PrefKey, body: PreferenceValue
) -> PreferencesOut:
    resp = await memory.set_preference(
        memory_pb2.SetPreferenceRequest(user_id=user, key=valid_id(key, "key"), value=body.value),
    )
    return PreferencesOut(values=dict(resp.values))


@router.delete("/{key}", response_model=PreferencesOut, summary="Delete one preference")
async def delete_preference(user: MemoryUser, memory: Memory, key: PrefKey) -> PreferencesOut:
    resp = await memory.delete_preference(
        memory_pb2.DeletePreferenceRequest(user_id=user, key=valid_id(key, "key"))
    )
    return PreferencesOut(values=dict(resp.values))
