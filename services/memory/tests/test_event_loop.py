"""The memory service runs on uvloop (ADR 0031), deployed and in the tests alike.

Most of a short-term RPC's CPU in the service is the event loop and grpc.aio's machinery
(py-spy, docs/benchmarks.md); asyncio's own loop costs more of it per call.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import tomllib
from pathlib import Path
from typing import Any

import uvloop
from mnemo.memory.v1 import memory_pb2 as pb

ROOT = Path(__file__).resolve().parents[3]


def test_the_in_process_server_serves_on_uvloop(memory_server_factory: Any) -> None:
    server = memory_server_factory(longterm=None)

    async def loop_of(_handles: Any) -> Any:
        return asyncio.get_running_loop()

    assert isinstance(server.run(loop_of), uvloop.Loop)
    reply = server.stub().PrepareTurn(
        pb.PrepareTurnRequest(user_id="u", thread_id="t", query="hi"), timeout=10
    )
    assert reply.thread_id == "t"


def test_mnemo_memory_serve_runs_the_server_on_uvloop(monkeypatch: Any) -> None:
    import mnemo_memory.__main__ as entry
    import mnemo_memory.server

    seen: list[Any] = []

    async def fake_serve(settings: Any) -> int:
        seen.append(asyncio.get_running_loop())
        return 0

    monkeypatch.setattr(mnemo_memory.server, "serve", fake_serve)
    assert entry.main(["serve"]) == 0
    assert len(seen) == 1 and isinstance(seen[0], uvloop.Loop), seen


def test_uvloop_is_a_pinned_memory_service_dependency() -> None:
    """The memory image installs libs/ and services/memory/: uvloop must be listed there,
    at the constraints' version."""
    deps = tomllib.loads((ROOT / "services/memory/pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    pinned = [d for d in deps if d.split("==")[0] == "uvloop"]
    assert pinned, "uvloop is not a dependency of the memory service"
    assert pinned[0] in (ROOT / "constraints.txt").read_text().split()
    assert pinned[0] == f"uvloop=={importlib.metadata.version('uvloop')}"
