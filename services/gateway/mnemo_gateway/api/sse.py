"""Server-Sent Events plumbing shared by the three chat endpoints.

The first LLM event is awaited *before* the HTTP response starts, so an LLM that fails
straight away (429, 529, timeout) gets a real HTTP error status; later failures can only be
reported inside the stream (each endpoint in its own vendor's error format).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import anyio
from mnemo_common.llm.base import StreamEvent
from starlette.responses import StreamingResponse

from ..chat.render import SSE_HEADERS, sse, sse_comment
from ..chat.service import ChatService, PreparedTurn
from ..core.errors import ApiError

__all__ = ["SSE_HEADERS", "sse", "sse_comment", "start_stream", "stream_response"]


async def start_stream(
    service: ChatService, prepared: PreparedTurn
) -> tuple[list[StreamEvent], AsyncIterator[StreamEvent]]:
    """Start the LLM stream and wait for its first event (raises ApiError on failure)."""
    events = service.stream(prepared)
    try:
        first = await events.__anext__()
    except StopAsyncIteration:
        return [], events
    return [first], events


def stream_response(
    first: list[StreamEvent],
    events: AsyncIterator[StreamEvent],
    *,
    head: Iterable[str],
    render: Callable[[StreamEvent], Iterable[str]],
    on_error: Callable[[ApiError], Iterable[str]],
    tail: Callable[[], Iterable[str]] = lambda: (),
    headers: dict[str, str] | None = None,
) -> StreamingResponse:
    """An SSE response: ``head`` frames, each event rendered, then ``tail`` frames."""

    async def body() -> AsyncIterator[str]:
        try:
            for frame in head:
                yield frame
            for event in first:
                for frame in render(event):
                    yield frame
            try:
                async for event in events:
                    for frame in render(event):
                        yield frame
            except ApiError as err:
                for frame in on_error(err):
                    yield frame
                return
            for frame in tail():
                yield frame
        finally:
            # the client may be gone: close the LLM stream without committing anything
            with anyio.CancelScope(shield=True):
                await events.aclose()  # type: ignore[attr-defined]

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})}
    )
