"""``MnemoClient`` (sync) and ``AsyncMnemoClient``: the gateway's HTTP API, typed.

Both take ``url`` (default ``MNEMO_URL``, else ``http://127.0.0.1:8000``), ``api_key``
(default ``MNEMO_API_KEY``; sent as ``Authorization: Bearer``, so a JWT works too) and
``user`` (default ``me``: the user the credential acts for, or the gateway's default user
in auth ``none``). Every method also takes ``user=`` to act for another user the credential
may reach. Failures raise :class:`~mnemo_client.errors.MnemoError` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Generic, TypeVar, cast

import httpx

from ._requests import ME, Req, Requests, SseParser, answer, base_url, headers, transport_error
from .types import (
    ChatEvent,
    ChatReply,
    ErasureReceipt,
    Export,
    Kind,
    Me,
    Memory,
    MemoryPage,
    SearchResults,
    ThreadDetail,
    ThreadPage,
)

DEFAULT_TIMEOUT_S = 120.0


_H = TypeVar("_H", httpx.Client, httpx.AsyncClient)


class _Base(Generic[_H]):
    """What both clients hold alike: the gateway's URL, the request builder, the HTTP
    client (``http``, else one of ``_http_class`` the client closes)."""

    _http_class: type[_H]

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        user: str = ME,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        http: _H | None = None,
    ) -> None:
        self.url = base_url(url)
        self.requests = Requests(user)
        self.http: _H = http or self._http_class(
            base_url=self.url, headers=headers(api_key), timeout=timeout_s
        )

    @property
    def user(self) -> str:
        return self.requests.user


class MnemoClient(_Base[httpx.Client]):
    """The Mnemo gateway over HTTP, blocking. Use as a context manager or call close()."""

    _http_class = httpx.Client

    def __enter__(self) -> MnemoClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _send(self, req: Req) -> Any:
        try:
            resp = self.http.request(req.method, req.path, params=req.params, json=req.json)
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None
        return answer(resp)

    def me(self) -> Me:
        """Who the credential says the caller is (``GET /v1/me``)."""
        return cast(Me, self._send(self.requests.me()))

    # --- chat -------------------------------------------------------------------------------

    def chat(
        self, prompt: str, *, thread_id: str | None = None, user: str | None = None, **options: Any
    ) -> ChatReply:
        """One turn (``POST /v1/chat``); ``options``: instructions, recall, model, ..."""
        req = self.requests.chat(prompt, thread_id=thread_id, user=user, stream=False, **options)
        return cast(ChatReply, self._send(req))

    def chat_stream(
        self, prompt: str, *, thread_id: str | None = None, user: str | None = None, **options: Any
    ) -> Iterator[ChatEvent]:
        """One turn, streamed: ``start``, ``delta`` (``data["text"]``) ..., ``done``."""
        req = self.requests.chat(prompt, thread_id=thread_id, user=user, stream=True, **options)
        try:
            with self.http.stream(req.method, req.path, json=req.json) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    answer(resp)
                parser = SseParser()
                for line in resp.iter_lines():
                    yield from parser.feed(line)
                yield from parser.feed("")
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None

    # --- memories ---------------------------------------------------------------------------

    def list_memories(
        self,
        *,
        kinds: Iterable[Kind] | None = None,
        page_size: int = 0,
        page_token: str = "",
        user: str | None = None,
    ) -> MemoryPage:
        return cast(
            MemoryPage, self._send(self.requests.list_memories(user, kinds, page_size, page_token))
        )

    def search_memories(
        self,
        query: str,
        *,
        top_k: int = 0,
        kinds: Iterable[Kind] | None = None,
        user: str | None = None,
    ) -> SearchResults:
        return cast(SearchResults, self._send(self.requests.search(query, user, top_k, kinds)))

    def add_memory(
        self, text: str, *, kind: Kind = "fact", importance: int = 0, user: str | None = None
    ) -> Memory:
        return cast(Memory, self._send(self.requests.add(text, user, kind, importance)))

    def correct_memory(
        self,
        memory_id: str,
        *,
        text: str | None = None,
        importance: int | None = None,
        kind: Kind | None = None,
        user: str | None = None,
    ) -> Memory:
        req = self.requests.correct(memory_id, user, text=text, importance=importance, kind=kind)
        return cast(Memory, self._send(req))

    def delete_memory(self, memory_id: str, *, user: str | None = None) -> None:
        self._send(self.requests.delete(memory_id, user))

    # --- preferences ------------------------------------------------------------------------

    def get_preferences(self, *, user: str | None = None) -> dict[str, str]:
        return cast(dict[str, str], self._send(self.requests.preferences(user))["values"])

    def set_preference(self, key: str, value: str, *, user: str | None = None) -> dict[str, str]:
        resp = self._send(self.requests.set_preference(key, value, user))
        return cast(dict[str, str], resp["values"])

    def delete_preference(self, key: str, *, user: str | None = None) -> dict[str, str]:
        resp = self._send(self.requests.delete_preference(key, user))
        return cast(dict[str, str], resp["values"])

    # --- threads ----------------------------------------------------------------------------

    def list_threads(
        self, *, page_size: int = 0, page_token: str = "", user: str | None = None
    ) -> ThreadPage:
        return cast(ThreadPage, self._send(self.requests.threads(user, page_size, page_token)))

    def get_thread(self, thread_id: str, *, user: str | None = None) -> ThreadDetail:
        return cast(ThreadDetail, self._send(self.requests.thread(thread_id, user)))

    def delete_thread(self, thread_id: str, *, user: str | None = None) -> None:
        self._send(self.requests.delete_thread(thread_id, user))

    # --- the user as a whole ----------------------------------------------------------------

    def export(self, *, user: str | None = None) -> Export:
        return cast(Export, self._send(self.requests.export(user)))

    def erase(self, *, user: str | None = None) -> ErasureReceipt:
        """Erase every trace of the user; the receipt (``pending`` non-empty: finishing)."""
        return cast(ErasureReceipt, self._send(self.requests.erase(user)))


class AsyncMnemoClient(_Base[httpx.AsyncClient]):
    """The Mnemo gateway over HTTP, for asyncio: the same methods as :class:`MnemoClient`."""

    _http_class = httpx.AsyncClient

    async def __aenter__(self) -> AsyncMnemoClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _send(self, req: Req) -> Any:
        try:
            resp = await self.http.request(req.method, req.path, params=req.params, json=req.json)
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None
        return answer(resp)

    async def me(self) -> Me:
        return cast(Me, await self._send(self.requests.me()))

    async def chat(
        self, prompt: str, *, thread_id: str | None = None, user: str | None = None, **options: Any
    ) -> ChatReply:
        req = self.requests.chat(prompt, thread_id=thread_id, user=user, stream=False, **options)
        return cast(ChatReply, await self._send(req))

    async def chat_stream(
        self, prompt: str, *, thread_id: str | None = None, user: str | None = None, **options: Any
    ) -> AsyncIterator[ChatEvent]:
        req = self.requests.chat(prompt, thread_id=thread_id, user=user, stream=True, **options)
        try:
            async with self.http.stream(req.method, req.path, json=req.json) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    answer(resp)
                parser = SseParser()
                async for line in resp.aiter_lines():
                    for event in parser.feed(line):
                        yield event
                for event in parser.feed(""):
                    yield event
        except httpx.TransportError as exc:
            raise transport_error(self.url, exc) from None

    async def list_memories(
        self,
        *,
        kinds: Iterable[Kind] | None = None,
        page_size: int = 0,
        page_token: str = "",
        user: str | None = None,
    ) -> MemoryPage:
        req = self.requests.list_memories(user, kinds, page_size, page_token)
        return cast(MemoryPage, await self._send(req))

    async def search_memories(
        self,
        query: str,
        *,
        top_k: int = 0,
        kinds: Iterable[Kind] | None = None,
        user: str | None = None,
    ) -> SearchResults:
        req = self.requests.search(query, user, top_k, kinds)
        return cast(SearchResults, await self._send(req))

    async def add_memory(
        self, text: str, *, kind: Kind = "fact", importance: int = 0, user: str | None = None
    ) -> Memory:
        return cast(Memory, await self._send(self.requests.add(text, user, kind, importance)))

    async def correct_memory(
        self,
        memory_id: str,
        *,
        text: str | None = None,
        importance: int | None = None,
        kind: Kind | None = None,
        user: str | None = None,
    ) -> Memory:
        req = self.requests.correct(memory_id, user, text=text, importance=importance, kind=kind)
        return cast(Memory, await self._send(req))

    async def delete_memory(self, memory_id: str, *, user: str | None = None) -> None:
        await self._send(self.requests.delete(memory_id, user))

    async def get_preferences(self, *, user: str | None = None) -> dict[str, str]:
        resp = await self._send(self.requests.preferences(user))
        return cast(dict[str, str], resp["values"])

    async def set_preference(
        self, key: str, value: str, *, user: str | None = None
    ) -> dict[str, str]:
        resp = await self._send(self.requests.set_preference(key, value, user))
        return cast(dict[str, str], resp["values"])

    async def delete_preference(self, key: str, *, user: str | None = None) -> dict[str, str]:
        resp = await self._send(self.requests.delete_preference(key, user))
        return cast(dict[str, str], resp["values"])

    async def list_threads(
        self, *, page_size: int = 0, page_token: str = "", user: str | None = None
    ) -> ThreadPage:
        req = self.requests.threads(user, page_size, page_token)
        return cast(ThreadPage, await self._send(req))

    async def get_thread(self, thread_id: str, *, user: str | None = None) -> ThreadDetail:
        return cast(ThreadDetail, await self._send(self.requests.thread(thread_id, user)))

    async def delete_thread(self, thread_id: str, *, user: str | None = None) -> None:
        await self._send(self.requests.delete_thread(thread_id, user))

    async def export(self, *, user: str | None = None) -> Export:
        return cast(Export, await self._send(self.requests.export(user)))

    async def erase(self, *, user: str | None = None) -> ErasureReceipt:
        return cast(ErasureReceipt, await self._send(self.requests.erase(user)))
