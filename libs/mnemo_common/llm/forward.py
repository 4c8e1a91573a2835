"""Raw pass-through of a vendor request body, for the gateway's drop-in endpoints.

The gateway forwards an Anthropic client's ``POST /v1/messages`` body to the Anthropic
provider (and an OpenAI client's Chat Completions body to the OpenAI-compatible one) as
sent, so every field — known to Mnemo or not — reaches the model. The provider's SDK
client still decides how the request is made: its key, base URL, headers
(``anthropic-version``), timeout and retry policy (429/5xx with backoff and
``retry-after``) apply, but no typed parameters stand between the client's JSON and the
wire, and the response comes back as bytes (a JSON document, an error body, or the SSE
stream).

The SDK builds the request once per client (:class:`_Wire`, ADR 0026); each forwarded
request reuses it on the SDK's connection pool, without the SDK's per-call option models
and response wrappers. A client with custom auth or middleware goes through the SDK's
``client.post(path, cast_to=httpx2.Response, content=...)``. The body goes as bytes: the
client's own bytes when Mnemo changed nothing, else one ``json.dumps`` of the dict.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import anthropic
import anyio
import httpx2
import openai

from .. import metrics
from ._support import map_sdk_error
from .aio_wire import AioSession, reproducible
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
    through ``client``'s connection pool and return the raw answer.

    Vendor errors (after the retries) come back as a :class:`Forwarded` with their status
    and body; a connection failure or timeout raises :class:`LLMError`.
    """
    content = body if isinstance(body, bytes) else encode_body(body)
    wire = _wire(client, path)
    started = time.perf_counter()
    try:
        if wire is None:  # an SDK feature the direct path does not reproduce
            response = await _sdk_post(client, path, content, stream, headers)
        else:
            response = await wire.send(content, stream, headers)
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
    if not stream or response.status_code >= 400:
        try:
            await response.aread()
        except httpx2.HTTPError as exc:
            raise LLMError(
                LLMErrorKind.UNAVAILABLE, f"the answer broke off: {exc}", provider=provider
            ) from exc
        return Forwarded(response.status_code, kept, response.content)
    return Forwarded(
        response.status_code, kept, chunks=_chunks(response, provider), _response=response
    )


class _Wire:
    """One SDK client's forwarding request, built once: its URL, headers (key,
    ``anthropic-version``, the SDK's own) and timeout come from the SDK itself
    (``_build_request``), and its retry policy (which statuses, backoff, ``retry-after``)
    is the SDK's (``_should_retry``, ``_calculate_retry_timeout``). Per request only the
    body, the retry count and the idempotency key change, so the SDK's per-call option
    models, copies and response wrappers are not built on the hot path."""

    def __init__(self, client: Any, path: str, options: Any, template: httpx2.Request) -> None:
        self.client, self.options = client, options
        self.http: httpx2.AsyncClient = client._client
        self.url = template.url
        self.extensions = template.extensions
        skip = {"host", "content-length"}
        self.headers = [(k, v) for k, v in template.headers.items() if k not in skip]
        self.idempotency = client._idempotency_header
        self.module: Any = anthropic if isinstance(client, anthropic.AsyncAnthropic) else openai
        #: the same exchange on aiohttp when it reproduces the httpx2 client's (ADR 0028)
        self.aio: AioSession | None = None
        if reproducible(self.http):
            self.aio = AioSession(self.http, self.extensions)

    async def send(self, content: bytes, stream: bool, extra: Mapping[str, str] | None) -> Any:
        """The last attempt's response (a retryable status once retries are spent): an
        ``httpx2.Response``, or its aiohttp counterpart :class:`~.aio_wire.AioResponse`."""
        max_retries: int = self.client.max_retries
        key = self.client._idempotency_key() if self.idempotency else None
        for retries_taken in range(max_retries + 1):
            headers = httpx2.Headers(self.headers)
            headers["x-stainless-retry-count"] = str(retries_taken)
            if key is not None:
                headers[self.idempotency] = key
            if extra:
                headers.update(extra)
            remaining = max_retries - retries_taken
            try:
                response = await self._attempt(headers, content)
            except (httpx2.TimeoutException, TimeoutError) as err:
                if remaining > 0:
                    await self._sleep(remaining, None)
                    continue
                raise self.module.APITimeoutError(request=self._request(headers)) from err
            except Exception as err:
                if remaining > 0:
                    await self._sleep(remaining, None)
                    continue
                raise self.module.APIConnectionError(request=self._request(headers)) from err
            if response.is_success or remaining <= 0 or not self.client._should_retry(response):
                return response
            await response.aclose()
            await self._sleep(remaining, response.headers)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, headers: httpx2.Headers, content: bytes) -> Any:
        """One attempt's response (headers read, body not): on aiohttp when it reproduces
        the SDK's client, else on that client."""
        if self.aio is not None:
            return await self.aio.post(str(self.url), headers.multi_items(), content)
        request = self.http.build_request(
            "POST", self.url, content=content, headers=headers, extensions=self.extensions
        )
        return await self.http.send(request, stream=True)

    def _request(self, headers: httpx2.Headers) -> httpx2.Request:
        """The attempt as an httpx2 request, for the SDK's connection errors."""
        return self.http.build_request("POST", self.url, headers=headers)

    async def aclose(self) -> None:
        if self.aio is not None:
            await self.aio.aclose()

    async def _sleep(self, remaining: int, headers: httpx2.Headers | None) -> None:
        await anyio.sleep(self.client._calculate_retry_timeout(remaining, self.options, headers))


def _wire(client: Any, path: str) -> _Wire | None:
    """The direct forwarding request of ``client`` (None: the SDK path is needed, e.g. a
    client with custom auth or middleware)."""
    wires: dict[str, _Wire | None] = client.__dict__.setdefault("_mnemo_wires", {})
    if path in wires:
        return wires[path]
    module: Any = anthropic if isinstance(client, anthropic.AsyncAnthropic) else openai
    options = module._models.FinalRequestOptions.construct(method="post", url=path, content=b"")
    auth = client._custom_auth
    if callable(auth) and not isinstance(auth, httpx2.Auth):
        auth = auth(options.security)
    wire = None
    if auth is None and not getattr(client, "_middleware", ()):
        wire = _Wire(client, path, options, client._build_request(options))
    wires[path] = wire
    return wire


async def close_wires(client: Any) -> None:
    """Close the aiohttp sessions of ``client``'s forwarding requests (with the client)."""
    for wire in client.__dict__.pop("_mnemo_wires", {}).values():
        if wire is not None:
            await wire.aclose()


async def _sdk_post(
    client: Any, path: str, content: bytes, stream: bool, headers: Mapping[str, str] | None
) -> httpx2.Response:
    options: dict[str, Any] = {"headers": {**(headers or {}), "Content-Type": "application/json"}}
    if stream:
        options["headers"]["X-Stainless-Raw-Response"] = "stream"  # leave the body unread
    response: httpx2.Response = await client.post(
        path,
        cast_to=httpx2.Response,
        content=content,
        options=options,
        stream=stream,
        stream_cls=None,
    )
    return response


def encode_body(body: dict[str, Any]) -> bytes:
    """``body`` as compact UTF-8 JSON (what the SDKs send for ``body=``)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def _chunks(response: Any, provider: str) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx2.HTTPError as exc:
        raise LLMError(
            LLMErrorKind.UNAVAILABLE, f"the stream broke off: {exc}", provider=provider
        ) from exc
    finally:
        await response.aclose()
