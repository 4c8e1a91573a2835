"""VECTOR__CHROMA_TOKEN: the memory service's Chroma client sends ``Authorization: Bearer``
on every call, so it works with a Chroma server behind an authenticating proxy (chromadb
1.5's own server has no token auth), and without the token that server refuses it.

The server is a real ``chroma run``; in front of it, a small HTTP proxy that admits only the
token (what an auth proxy in front of Chroma does)."""

from __future__ import annotations

import http.client
import http.server
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from mnemo_memory.config import build_settings
from mnemo_memory.embed import ModelInfo
from mnemo_memory.stores.vector import MemoryRecord, VectorFilter, build_vector_store

TOKEN = "t0ken-" + uuid.uuid4().hex
MODEL = ModelInfo("all-MiniLM-L6-v2", 384)


class AuthProxy:
    """Forwards to ``upstream`` only requests carrying ``Authorization: Bearer TOKEN``."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.refused = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("authorization") != f"Bearer {TOKEN}":
                    proxy.refused += 1
                    reply = b'{"error": "Unauthorized"}'
                    self.send_response(401)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def auth_proxy(chroma_server) -> Iterator[AuthProxy]:
    proxy = AuthProxy(chroma_server.url)
    yield proxy
    proxy.close()


def _store(url: str, token: str | None) -> Any:
    env: dict[str, Any] = {
        "chromadb_url": url,
        "vector": {"collection_prefix": "tok" + uuid.uuid4().hex[:8]},
    }
    if token is not None:
        env["vector"]["chroma_token"] = token
    return build_vector_store(build_settings(**env), MODEL)


async def test_the_token_from_the_settings_is_sent_on_every_call(auth_proxy) -> None:
    store = _store(auth_proxy.url, TOKEN)
    await store.open()
    try:
        record = MemoryRecord(id="m1", user_id="alice", kind="fact", text="likes teal")
        vector = np.ones((1, MODEL.dimension), dtype=np.float32)
        await store.upsert([record], vector)
        hits = await store.query(vector[0], VectorFilter(user_id="alice"), 5)
        assert [h.record.id for h in hits] == ["m1"]
        assert auth_proxy.refused == 0
    finally:
        await store.aclose()


async def test_without_the_token_the_server_refuses(auth_proxy) -> None:
    store = _store(auth_proxy.url, None)
    with pytest.raises(Exception, match=r"(?i)unauthori|401"):
        await store.open()
    assert auth_proxy.refused >= 1
    await store.aclose()
