"""The web page at ``/`` and its static files (plain HTML/JS/CSS, works offline), and the
API docs at ``/docs``: Swagger UI from the assets the ``fastapi-offline`` package ships
(served here under ``/docs/assets``), so the page renders with no network."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
SWAGGER_DIR = Path(str(files("fastapi_offline") / "static"))
SWAGGER_ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)
docs_router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@docs_router.get("/docs")
async def docs() -> FileResponse:
    """Swagger UI over ``/openapi.json``: its page and starter script are ours (no inline
    script, so the page's CSP allows scripts from this gateway only)."""
    return FileResponse(STATIC_DIR / "docs" / "index.html", headers={"Cache-Control": "no-cache"})


@docs_router.get("/docs/init.js")
async def docs_init() -> FileResponse:
    return FileResponse(STATIC_DIR / "docs" / "init.js", headers={"Cache-Control": "no-cache"})


def swagger_assets() -> StaticFiles:
    """``swagger-ui-bundle.js``, ``swagger-ui.css`` and ``favicon.png``."""
    return StaticFiles(directory=SWAGGER_DIR)
