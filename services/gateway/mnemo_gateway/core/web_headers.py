"""Security headers on every response, and ``HEAD`` answered wherever ``GET`` is.

Pure ASGI (like :mod:`.middleware`) so streamed answers pass through untouched.

* Every response: ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
  ``Referrer-Policy: no-referrer`` and a Content-Security-Policy: the pages (``/``,
  ``/docs``) may load scripts, styles and images from this gateway only and call only its
  API; everything else (JSON, streams) gets ``default-src 'none'``. ``frame-ancestors
  'none'`` everywhere: no page of the gateway can be framed (clickjacking).
* ``HEAD``: FastAPI routes answer only the methods they declare, so ``HEAD /`` was a 405.
  A ``HEAD`` request is run as ``GET`` and its body dropped (headers, ``Content-Length``
  included, are the ``GET``'s), so every ``GET`` route answers ``HEAD`` without appearing
  twice in the OpenAPI document.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the web page and Swagger UI: own scripts/styles only (no inline script); Swagger UI
#: sets inline styles and draws its icons as data: URIs
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"

PAGE_PATHS = frozenset({"/", "/docs"})

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class WebHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        csp = PAGE_CSP if scope["path"] in PAGE_PATHS else API_CSP

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _COMMON if k not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", csp.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, send_wrapper)
