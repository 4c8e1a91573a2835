"""Typed errors of the Mnemo API: every failure carries the API's ``code`` and HTTP status.

The gateway answers every error as ``{"type": "error", "error": {"code", "type", "message",
"field"?}}`` (docs/api.md, Errors); :func:`error_from` turns one into the subclass of
:class:`MnemoError` for its status, so callers can catch a kind of failure
(``except mnemo_client.NotFound``) or look at ``exc.code`` for the exact reason.
"""

from __future__ import annotations

from typing import Any

import httpx


class MnemoError(Exception):
    """An error answer of the gateway (or no answer at all: :class:`GatewayUnreachable`)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        retry_after_s: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}" if status else f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after_s = retry_after_s
        self.body = body


class GatewayUnreachable(MnemoError):
    """No HTTP answer: nothing listens at the URL, DNS failed, or the connection timed out."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, "unreachable", f"cannot reach the gateway at {url}: {reason}")
        self.url = url
        self.reason = reason


class InvalidRequest(MnemoError):
    """400 / 413 / 422: the request was refused; ``field`` names what was wrong."""


class AuthenticationError(MnemoError):
    """401: no credential, or one the gateway does not accept."""


class PermissionDenied(MnemoError):
    """403: the credential may not touch that user's data."""


class NotFound(MnemoError):
    """404: no such memory, thread or route."""


class Conflict(MnemoError):
    """409: e.g. an idempotency key reused for another message."""


class RateLimited(MnemoError):
    """429: over a rate limit; ``retry_after_s`` says when to try again."""


class ServiceUnavailable(MnemoError):
    """503: memory (or the LLM) is unavailable for now; ``retry_after_s`` when known."""


class ServerError(MnemoError):
    """Any other 5xx."""


_BY_STATUS: dict[int, type[MnemoError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status: int) -> type[MnemoError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else MnemoError


def error_from(status: int, body: Any, headers: httpx.Headers | None = None) -> MnemoError:
    """The typed error for an error answer (``body``: its parsed JSON, or its text)."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or "error")
        message = str(err.get("message") or "")
        field = err.get("field")
    else:
        code, message, field = "http_error", str(body)[:500], None
    retry = None
    if headers is not None and headers.get("retry-after"):
        try:
            retry = float(headers["retry-after"])
        except ValueError:
            retry = None
    return error_class(status)(status, code, message, field=field, retry_after_s=retry, body=body)


def response_error(resp: httpx.Response) -> MnemoError:
    try:
        body: Any = resp.json()
    except ValueError:
        body = resp.text
    return error_from(resp.status_code, body, resp.headers)
