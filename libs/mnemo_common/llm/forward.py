"""Raw pass-through of a vendor request body, for the gateway's drop-in endpoints.

The gateway forwards an Anthropic client's ``POST /v1/messages`` body to the Anthropic
provider (and an OpenAI client's Chat Completions body to the OpenAI-compatible one) as
sent, so every field — known to Mnemo or not — reaches the model. The request still goes
through the provider's SDK client: its key, base URL, timeout and retries (429/5xx with
backoff and ``retry-after``) apply, but no typed parameters stand between the client's JSON
and the wire, and the response comes back as bytes (a JSON document, an error body, or the
SSE stream).

Both SDKs come from the same generator: ``client.post(path, cast_to=httpx2.Response,
content=...)`` is their documented way to make a request the typed methods do not model.
The body goes as bytes: the client's own bytes when Mnemo changed nothing, else one
``json.dumps`` of the dict — the SDK's ``body=`` path would copy the whole tree and encode
it again with its own encoder on every request.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai

from .. import metrics
from ._support import map_sdk_error
from .base import LLMError, LLMErrorKind

#: response headers that describe the hop, not the answer: never copied to the client
HOP_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "date",
        "keep-alive",
        "server",
        "set-cookie",
        "transfer-encoding",
        "x-request-id",
    }
)

_FORWARDS = metrics.counter(
    "mnemo_llm_forwarded_requests_total",
    "Drop-in requests forwarded as sent to the LLM API, by provider and upstream status",
    ("provider", "status"),
)
_FORWARD_LATENCY = metrics.histogram(
    "mnemo_llm_forward_headers_seconds",
    "Time until the LLM API's response headers of a forwarded request (SDK retries included)",
    ("provider",),
)


@dataclass
class Forwarded:
    """The upstream's answer to a forwarded request.

    ``status`` >= 400 is the vendor's error (``content`` holds its body); otherwise
    ``content`` is the JSON document, or ``chunks`` yields the SSE stream's bytes.
    """

    status: int
    headers: dict[str, str]
    content: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    _response: Any = field(default=None, repr=False)

    async def aclose(self) -> None:
        """Release the upstream connection (a stream the client abandoned)."""
        if self._response is not None:
            await self._response.aclose()


def answer_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The upstream's response headers worth returning to the client (rate limits, ids)."""
    return {k: v for k, v in headers.items() if k.lower() not in HOP_HEADERS}


async def forward(
    client: anthropic.AsyncAnthropic | openai.AsyncOpenAI,
    provider: str,
    path: str,
    body: dict[str, Any] | bytes,
    *,
    stream: bool,
    headers: Mapping[str, str] | None = None,
) -> Forwarded:
    """POST ``body`` (a JSON object, or its encoded bytes to send as they are) to ``path``
    through ``client`` and return the raw answer.

    Vendor errors (after the SDK's retries) come back as a :class:`Forwarded` with their
    status and body; a connection failure or timeout raises :class:`LLMError`.
    """
    options: dict[str, Any] = {"headers": {**(headers or {}), "Content-Type": "application/json"}}
    content = body if isinstance(body, bytes) else encode_body(body)
    if stream:
        options["headers"]["X-Stainless-Raw-Response"] = "stream"  # leave the body unread
    started = time.perf_counter()
    try:
        response: httpx2.Response = await client.post(  # type: ignore[call-overload]
            path,
            cast_to=httpx2.Response,
            content=content,
            options=options,
            stream=stream,
            stream_cls=None,
        )
    except (anthropic.APIStatusError, openai.APIStatusError) as exc:
        _FORWARDS.labels(provider, str(exc.status_code)).inc()
        return Forwarded(
            exc.status_code, answer_headers(exc.response.headers), exc.response.content
        )
    except (anthropic.AnthropicError, openai.OpenAIError) as exc:
        mapped = map_sdk_error(exc, provider)
        _FORWARDS.labels(provider, mapped.kind.value).inc()
        raise mapped from exc
    finally:
        _FORWARD_LATENCY.labels(provider).observe(time.perf_counter() - started)
    _FORWARDS.labels(provider, str(response.status_code)).inc()
    kept = answer_headers(response.headers)
    if not stream:
        return Forwarded(response.status_code, kept, response.content)
    return Forwarded(
        response.status_code, kept, chunks=_chunks(response, provider), _response=response
    )


def encode_body(body: dict[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON (what the SDKs send for ``body=``)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def _chunks(response: httpx2.Response, provider: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx2.HTTPError as exc:
        raise LLMError(
            LLMErrorKind.UNAVAILABLE, f"the stream broke off: {exc}", provider=provider
        ) from exc
    finally:
        await response.aclose()
