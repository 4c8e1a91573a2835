"""The gateway runs on uvloop and httptools (ADR 0028), not on what uvicorn's "auto" finds.

The pure-Python fallbacks (asyncio's loop, h11) cost the gateway about 1.5 to 2 ms of CPU per
drop-in request (docs/benchmarks.md); they are what uvicorn picks silently when the two
packages are missing, as they were from the gateway image before they were pinned.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import uvloop
from mnemo_gateway.main import SERVER_HTTP, SERVER_LOOP
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

ROOT = Path(__file__).resolve().parents[3]


def test_a_running_gateway_serves_on_uvloop_with_httptools(gateway_factory: Any) -> None:
    gw = gateway_factory()
    assert httpx.get(gw.url + "/healthz", timeout=10).status_code == 200
    server = gw._server
    assert server.config.http_protocol_class is HttpToolsProtocol
    loop = server.servers[0].get_loop()
    assert isinstance(loop, uvloop.Loop), type(loop)


def test_the_entry_point_asks_uvicorn_for_uvloop_and_httptools() -> None:
    config = uvicorn.Config("mnemo_gateway.main:create_app", loop=SERVER_LOOP, http=SERVER_HTTP)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    loop = config.get_loop_factory()()
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    source = (ROOT / "services/gateway/mnemo_gateway/__main__.py").read_text()
    assert "loop=SERVER_LOOP" in source and "http=SERVER_HTTP" in source


def test_uvloop_and_httptools_are_pinned_gateway_dependencies() -> None:
    """The gateway image installs only libs/ and services/gateway/: both must be listed
    there, at the constraints' versions, so the image has them."""
    deps = tomllib.loads((ROOT / "services/gateway/pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    constraints = (ROOT / "constraints.txt").read_text().split()
    for name in ("uvloop", "httptools"):
        pinned = [d for d in deps if d.split("==")[0] == name]
        assert pinned, f"{name} is not a dependency of the gateway"
        assert pinned[0] in constraints, f"{pinned[0]} differs from constraints.txt"
        assert pinned[0] == f"{name}=={importlib.metadata.version(name)}"
