"""The forwarded request's HTTP exchange on aiohttp (ADR 0028), when it reproduces the SDK's.

:class:`~.forward._Wire` sends the request the SDK built once (ADR 0026). The SDK's own
``httpx2`` client speaks HTTP/1.1 in pure Python (h11, httpcore2); :class:`AioSession`
sends the same request (URL, every header, body bytes), with the same retry policy, on an
aiohttp session (C HTTP parser) configured from that httpx2 client: its TLS context
(certificate verification as the SDK set it), connection limit, keep-alive expiry, socket
options (the SDKs' TCP keep-alive), redirects and timeouts (``connect`` and ``read`` per
socket operation, as httpx applies them).

:func:`reproducible` says when that holds; any client setting aiohttp would not honour the
same way (a proxy, from the client or the environment; a custom ``http_client`` or
transport; HTTP/2; a local address or Unix socket; connection retries; an httpx ``auth``
or event hooks) keeps the httpx2 path.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp
import httpx2

#: the SDKs' own default client classes: any other ``http_client`` is the caller's, kept
_SDK_CLIENTS = ("AsyncHttpxClientWrapper",)


def reproducible(http: httpx2.AsyncClient) -> bool:
    """True when an aiohttp session can make this client's exchange as it makes it (False
    too when httpx2's internals read here have changed: the httpx2 path is kept)."""
    try:
        return _reproducible(http)
    except AttributeError:
        return False


def _reproducible(http: httpx2.AsyncClient) -> bool:
    if type(http).__name__ not in _SDK_CLIENTS:
        return False
    transport = getattr(http, "_transport", None)
    if type(transport) is not httpx2.AsyncHTTPTransport:
        return False
    # proxies (given, or read from HTTP(S)_PROXY / ALL_PROXY) are mounted transports;
    # NO_PROXY hosts are mounted as None: the default transport, as here
    if any(mounted is not None for mounted in http._mounts.values()):
        return False
    if http.auth is not None or any(http.event_hooks.values()):
        return False
    pool = transport._pool
    return (
        pool._proxy is None
        and not pool._http2
        and pool._local_address is None
        and pool._uds is None
        and pool._retries == 0
    )


def _socket_factory(options: Sequence[Any]) -> Callable[[Any], socket.socket]:
    """Sockets with the httpx2 pool's ``socket_options`` (the SDKs set TCP keep-alive)."""

    def make(addr_info: Any) -> socket.socket:
        family, kind, proto = addr_info[:3]
        sock = socket.socket(family=family, type=kind, proto=proto)
        try:
            for option in options:
                sock.setsockopt(*option)
        except OSError:
            sock.close()
            raise
        return sock

    return make


class AioResponse:
    """The part of ``httpx2.Response`` :mod:`.forward` and the SDK's retry policy read;
    aiohttp's failures while reading come out as ``httpx2.ReadError``/``ReadTimeout``."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code = response.status
        self.headers = httpx2.Headers(list(response.raw_headers))
        self.is_success = 200 <= response.status < 300
        self.content = b""

    async def aread(self) -> bytes:
        try:
            self.content = await self._response.read()
        except TimeoutError as exc:
            raise httpx2.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientError as exc:
            raise httpx2.ReadError(str(exc) or type(exc).__name__) from exc
        finally:
            self._response.release()
        return self.content

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise httpx2.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientError as exc:
            raise httpx2.ReadError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        """Back to the pool when the body was read, else the connection is closed."""
        self._response.release()


class AioSession:
    """One SDK client's aiohttp session, opened on first use (inside the event loop)."""

    def __init__(self, http: httpx2.AsyncClient, extensions: dict[str, Any]) -> None:
        pool = http._transport._pool  # type: ignore[attr-defined]
        self._ssl = pool._ssl_context
        self._limit: int = pool._max_connections or 0
        self._keepalive: float = pool._keepalive_expiry or 15.0
        self._socket_options = list(pool._socket_options or ())
        t = extensions.get("timeout") or {}
        # httpx applies connect/read per socket operation; aiohttp's ``connect`` bounds the
        # wait for a pooled connection plus connecting: httpx's pool + connect timeouts
        pool_wait, connect = t.get("pool"), t.get("connect")
        self.timeout = aiohttp.ClientTimeout(
            total=None,
            connect=None if pool_wait is None or connect is None else pool_wait + connect,
            sock_connect=connect,
            sock_read=t.get("read"),
        )
        self._redirects: bool = http.follow_redirects
        self._max_redirects: int = http.max_redirects
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=0,
                keepalive_timeout=self._keepalive,
                ssl=self._ssl,
                socket_factory=_socket_factory(self._socket_options),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                auto_decompress=True,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def post(self, url: str, headers: list[tuple[str, str]], content: bytes) -> AioResponse:
        """One attempt; raises ``TimeoutError`` or ``aiohttp.ClientError``."""
        response = await self.session().post(
            url,
            data=content,
            headers=headers,
            allow_redirects=self._redirects,
            max_redirects=self._max_redirects,
        )
        return AioResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
