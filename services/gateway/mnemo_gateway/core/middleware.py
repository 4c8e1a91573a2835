"""ASGI middleware: request id, body size limit, unexpected errors, request metrics.

Pure ASGI (not BaseHTTPMiddleware) so streamed answers pass through untouched and the
latency covers the whole stream. Unexpected exceptions are logged and answered (JSON 500)
here, inside the request id's scope, so the log line and the response both carry the id.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from mnemo_common.logging import request_id_var
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics as m
from .errors import ApiError, internal_error

log = logging.getLogger(__name__)

#: a client's X-Request-Id is kept only when it is this safe (it goes into a response header,
#: gRPC metadata and log lines); anything else gets a fresh id like the ones generated here
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(value: str | None) -> str:
    """The client's request id when it is safe, else a new one (32 hex digits)."""
    if value and REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


class _BodyTooLarge(Exception):
    pass


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        rid = request_id_of(headers.get("x-request-id"))
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["started_at"] = started
        status = {"code": 500, "started": False, "too_large": False}
        limit = self.max_body_bytes
        too_large = ApiError(
            413, "request_too_large", f"the request body is larger than {limit} bytes"
        )

        async def forward(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        async def send_wrapper(message: Message) -> None:
            if status["too_large"]:
                # the app answered a body it could not read (FastAPI wraps the exception
                # raised in receive into a 400): the answer is the 413 instead
                if not status["started"]:
                    await too_large.to_response()(scope, receive, forward)
                return
            await forward(message)

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    status["too_large"] = True
                    raise _BodyTooLarge
            return message

        try:
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise _BodyTooLarge
            await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge:
            if not status["started"]:
                await too_large.to_response()(scope, receive, forward)
        except Exception:
            log.exception(
                "unhandled error", extra={"method": scope["method"], "path": scope["path"]}
            )
            if status["started"]:
                raise  # too late for an error answer: the server drops the connection
            await internal_error().to_response()(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            m.HTTP_REQUESTS.labels(route, scope["method"], str(status["code"])).inc()
            m.HTTP_LATENCY.labels(route, scope["method"]).observe(time.perf_counter() - started)
            request_id_var.reset(token)


def _route_template(scope: MutableMapping[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # unknown paths share one label so scanners cannot blow up the metric's cardinality
    return str(path) if path else "unmatched"
