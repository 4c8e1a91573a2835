"""What each client call sends and how its answer is read: shared by the sync and the async
client, so the two cannot drift apart."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from .errors import GatewayUnreachable, MnemoError, error_from, response_error
from .types import ChatEvent, Kind

DEFAULT_URL = "http://127.0.0.1:8000"
#: the path alias for "the user the credential acts for" (docs/api.md)
ME = "me"


def base_url(url: str | None) -> str:
    return (url or os.environ.get("MNEMO_URL") or DEFAULT_URL).rstrip("/")


def headers(api_key: str | None) -> dict[str, str]:
    key = api_key if api_key is not None else os.environ.get("MNEMO_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


@dataclass
class Req:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    empty_ok: bool = field(default=False)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class Requests:
    """Request builders for one user (``me`` = the credential's own user)."""

    def __init__(self, user: str) -> None:
        self.user = user

    def _u(self, rest: str, user: str | None) -> str:
        return f"/v1/users/{quote(user or self.user, safe='')}{rest}"

    def me(self) -> Req:
        return Req("GET", "/v1/me")

    def chat(
        self,
        prompt: str,
        *,
        thread_id: str | None,
        user: str | None,
        stream: bool,
        **options: Any,
    ) -> Req:
        who = user or self.user
        body = _drop_none(
            {
                "prompt": prompt,
                "thread_id": thread_id,
                "user_id": None if who == ME else who,
                "stream": stream,
                **options,
            }
        )
        return Req("POST", "/v1/chat", json=body)

    def list_memories(
        self, user: str | None, kinds: Iterable[Kind] | None, page_size: int, page_token: str
    ) -> Req:
        params = _drop_none(
            {
                "kind": list(kinds) if kinds else None,
                "page_size": page_size or None,
                "page_token": page_token or None,
            }
        )
        return Req("GET", self._u("/memories", user), params=params)

    def search(self, query: str, user: str | None, top_k: int, kinds: Iterable[Kind] | None) -> Req:
        params = _drop_none(
            {"q": query, "top_k": top_k or None, "kind": list(kinds) if kinds else None}
        )
        return Req("GET", self._u("/memories/search", user), params=params)

    def add(self, text: str, user: str | None, kind: Kind, importance: int) -> Req:
        body = {"text": text, "kind": kind, "importance": importance}
        return Req("POST", self._u("/memories", user), json=body)

    def correct(self, memory_id: str, user: str | None, **changes: Any) -> Req:
        path = self._u(f"/memories/{quote(memory_id, safe='')}", user)
        return Req("PATCH", path, json=_drop_none(changes))

    def delete(self, memory_id: str, user: str | None) -> Req:
        return Req("DELETE", self._u(f"/memories/{quote(memory_id, safe='')}", user))

    def preferences(self, user: str | None) -> Req:
        return Req("GET", self._u("/preferences", user))

    def set_preference(self, key: str, value: str, user: str | None) -> Req:
        path = self._u(f"/preferences/{quote(key, safe='')}", user)
        return Req("PUT", path, json={"value": value})

    def delete_preference(self, key: str, user: str | None) -> Req:
        return Req("DELETE", self._u(f"/preferences/{quote(key, safe='')}", user))

    def threads(self, user: str | None, page_size: int, page_token: str) -> Req:
        params = _drop_none({"page_size": page_size or None, "page_token": page_token or None})
        return Req("GET", self._u("/threads", user), params=params)

    def thread(self, thread_id: str, user: str | None) -> Req:
        return Req("GET", self._u(f"/threads/{quote(thread_id, safe='')}", user))

    def delete_thread(self, thread_id: str, user: str | None) -> Req:
        return Req("DELETE", self._u(f"/threads/{quote(thread_id, safe='')}", user))

    def export(self, user: str | None) -> Req:
        return Req("GET", self._u("/export", user))

    def erase(self, user: str | None) -> Req:
        return Req("DELETE", self._u("", user))


def transport_error(url: str, exc: httpx.TransportError) -> MnemoError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return GatewayUnreachable(url, str(exc) or type(exc).__name__)
    return MnemoError(0, "transport_error", f"{url}: {type(exc).__name__}: {exc}")


def answer(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        raise response_error(resp)
    return resp.json() if resp.content else None


class SseParser:
    """Server-Sent Events of ``POST /v1/chat`` (stream) as :class:`ChatEvent` s; an ``error``
    event raises its typed :class:`MnemoError`."""

    def __init__(self) -> None:
        self.event = "message"
        self.data: list[str] = []

    def feed(self, line: str) -> Iterator[ChatEvent]:
        if line.startswith("event:"):
            self.event = line[6:].strip()
        elif line.startswith("data:"):
            self.data.append(line[5:].lstrip())
        elif line == "" and self.data:
            event, doc = self.event, json.loads("\n".join(self.data))
            self.event, self.data = "message", []
            if event == "error":
                raise error_from(int(doc.get("status") or 500), doc)
            if event in ("start", "delta", "done"):
                yield ChatEvent(event=event, data=doc)  # type: ignore[typeddict-item]
