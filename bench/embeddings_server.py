"""A local OpenAI-compatible embeddings endpoint serving Mnemo's own embedder.

    python -m bench.embeddings_server PORT

``POST /v1/embeddings`` (``{"model": ..., "input": str | [str]}``) answers in OpenAI's
shape with the vectors of :class:`mnemo_memory.embed.Embedder` (all-MiniLM-L6-v2 from the
local files, the runtime of ``EMBEDDING__BACKEND``; nothing downloads). ``bench/peers.py``
points agent-memory-server at it, so both systems embed with the same model on the same
machine.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def create_app() -> Starlette:
    from mnemo_memory.config import build_settings
    from mnemo_memory.embed import Embedder

    embedder = Embedder.from_settings(build_settings())

    async def embeddings(request: Request) -> JSONResponse:
        doc: Any = await request.json()
        texts = doc.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return JSONResponse(
                {"error": {"message": "input must be a string or a list of strings"}}, 400
            )
        vectors = await embedder.encode(texts)
        return JSONResponse(
            {
                "object": "list",
                "model": doc.get("model", embedder.info.model_id),
                "data": [
                    {"object": "embedding", "index": i, "embedding": v.tolist()}
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": 0, "total_tokens": 0},
            }
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await embedder.aload()
        yield

    return Starlette(
        routes=[Route("/v1/embeddings", embeddings, methods=["POST"])], lifespan=lifespan
    )


def main(argv: list[str]) -> int:
    uvicorn.run(create_app(), host="127.0.0.1", port=int(argv[0]), log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
