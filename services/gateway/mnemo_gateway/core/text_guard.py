"""ASGI middleware: refuse control characters in any string of a request (422, naming it).

Every JSON body string (keys too) and every query parameter is checked against
:mod:`mnemo_common.text` before a route sees the request, so no endpoint — Mnemo's own,
the drop-in ones, any added later — can store a NUL or another control character (one in
a memory made every later turn of its user fail to store). Path parameters are ids, which
their own validation already limits to safe characters. A body that is not JSON is left to
the route (``invalid_json``); the body size limit is enforced outside, while it is read.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from mnemo_common.text import control_char_problem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError


def find_bad_string(value: Any, path: str = "") -> tuple[str, str] | None:
    """(dotted field path, problem) of the first string in ``value`` that cannot be stored."""
    if isinstance(value, str):
        problem = control_char_problem(value, surrogates=False)  # routes name those
        return (path, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            problem = control_char_problem(str(key), surrogates=False)
            if problem:
                return child, f"(a key) {problem}"
            found = find_bad_string(item, child)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = find_bad_string(item, f"{path}.{i}" if path else str(i))
            if found:
                return found
    return None


def _refusal(field: str, problem: str) -> ApiError:
    return ApiError(422, "invalid_text", f"{field or 'body'}: {problem}", field=field or None)


class TextGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        for name, value in parse_qsl(query, keep_blank_values=True):
            found = find_bad_string({name: value})
            if found:
                await _refusal(*found).to_response()(scope, receive, send)
                return
        if scope.get("method") not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        if body:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None  # the route answers invalid_json (or reads another format)
            found = find_bad_string(doc) if doc is not None else None
            if found:
                await _refusal(*found).to_response()(scope, receive, send)
                return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive callable yielding ``messages``, then whatever ``then`` yields (disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
