"""The memory service's event loop: uvloop, named, never a silent fallback (ADR 0031).

Most of the service's CPU per short-term RPC is the event loop and grpc.aio's own
machinery, not the handler (py-spy, docs/benchmarks.md); libuv's loop runs it for less.
``mnemo-memory serve`` and the in-process test/benchmark server both use it, so what the
tests and the benchmarks measure is what is deployed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind the memory service runs on."""
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
