"""``POST /v1/responses`` — the OpenAI Responses API: not supported yet, said clearly.

The route exists so an OpenAI client gets a definite 501 in OpenAI's error shape (the SDK
raises ``APIStatusError`` with status 501) instead of a 404 that reads like a wrong base
URL. Why not yet: see docs/api.md ("OpenAI Responses API").
"""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import CurrentIdentity
from .models import OpenAIError

router = APIRouter(tags=["openai-compatible"])

NOT_YET = (
    "the OpenAI Responses API (POST /v1/responses) is not supported by Mnemo yet; "
    "use Chat Completions (POST /v1/chat/completions), which carries the same memory"
)


@router.post("/v1/responses", summary="OpenAI Responses API: not supported yet (501)")
async def responses(identity: CurrentIdentity) -> None:
    raise OpenAIError(501, "not_implemented", NOT_YET, param=None)
