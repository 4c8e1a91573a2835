"""Which wire a forwarded drop-in request takes (ADR 0028), against the fake APIs.

A plain SDK client's request goes on aiohttp with the SDK's own headers, retry policy and
timeouts; a client whose exchange aiohttp would not make the same way (a proxy, a custom
``http_client``) keeps the SDK's httpx2 client.
"""

from __future__ import annotations

import re

import anthropic
import httpx2
import openai
import pytest
from mnemo_common.llm import LLMError, LLMErrorKind
from mnemo_common.llm.forward import _wire, close_wires, forward
from mnemo_common.testing.procs import free_port

BODY = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
STREAMED = {**BODY, "stream": True}
#: headers the two HTTP clients set themselves, differently spelled or valued
_OWN = {"host", "content-length"}


def _client(protocol: str, base_url: str, **kwargs):  # type: ignore[no-untyped-def]
    if protocol == "anthropic":
        return anthropic.AsyncAnthropic(api_key="k-test", base_url=base_url, **kwargs)
    return openai.AsyncOpenAI(api_key="k-test", base_url=base_url, **kwargs)


def _path(protocol: str) -> str:
    return "/v1/messages" if protocol == "anthropic" else "/chat/completions"


def _fake(protocol: str, fake_anthropic, fake_openai):  # type: ignore[no-untyped-def]
    return fake_anthropic if protocol == "anthropic" else fake_openai


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
async def test_a_plain_client_forwards_on_aiohttp_with_the_sdk_headers(
    fake_anthropic, fake_openai, protocol, stream
):
    fake = _fake(protocol, fake_anthropic, fake_openai)
    plain = _client(protocol, fake.url, max_retries=0)
    # the same SDK client on an http_client of its own: the httpx2 path, for comparison
    custom = _client(protocol, fake.url, max_retries=0, http_client=httpx2.AsyncClient())
    path = _path(protocol)
    try:
        answers = []
        for client in (plain, custom):
            fake.enqueue_text("hello there")
            answer = await forward(
                client, protocol, path, {**BODY, "stream": stream}, stream=stream
            )
            body = answer.content
            if answer.chunks is not None:
                body = b"".join([chunk async for chunk in answer.chunks])
            answers.append((answer.status, b"hello" in body))
        assert answers == [(200, True), (200, True)]
        assert _wire(plain, path).aio is not None
        assert _wire(plain, path).aio._session is not None  # the request went on aiohttp
        assert _wire(custom, path).aio is None
        on_aio, on_httpx = fake.chat_requests()
        assert on_aio.raw == on_httpx.raw
        assert on_aio.api_key == "k-test"
        sent = {k: v for k, v in on_aio.headers.items() if k not in _OWN}
        assert sent == {k: v for k, v in on_httpx.headers.items() if k not in _OWN}
        assert sent["x-stainless-retry-count"] == "0"
    finally:
        for client in (plain, custom):
            await close_wires(client)
            await client.close()


async def test_the_aiohttp_path_keeps_the_sdk_retry_policy(fake_anthropic):
    client = _client("anthropic", fake_anthropic.url, max_retries=2)
    try:
        fake_anthropic.enqueue_error(429, message="slow down")
        fake_anthropic.enqueue_error(529, message="overloaded")
        answer = await forward(client, "anthropic", "/v1/messages", BODY, stream=False)
        assert answer.status == 200
        sent = fake_anthropic.chat_requests()
        assert [r.headers["x-stainless-retry-count"] for r in sent] == ["0", "1", "2"]

        fake_anthropic.reset()
        fake_anthropic.enqueue_error(400, message="bad")
        answer = await forward(client, "anthropic", "/v1/messages", BODY, stream=False)
        assert (answer.status, len(fake_anthropic.chat_requests())) == (400, 1)
        assert b"bad" in answer.content
        assert _wire(client, "/v1/messages").aio is not None
    finally:
        await close_wires(client)
        await client.close()


async def test_the_aiohttp_path_times_out_and_retries_like_the_sdk(fake_anthropic):
    client = _client("anthropic", fake_anthropic.url, max_retries=1, timeout=0.3)
    fake_anthropic.set_delay(1.0)
    try:
        with pytest.raises(LLMError) as caught:
            await forward(client, "anthropic", "/v1/messages", BODY, stream=True)
        assert caught.value.kind is LLMErrorKind.TIMEOUT
        assert _wire(client, "/v1/messages").aio is not None
        sent = fake_anthropic.chat_requests()
        assert [r.headers["x-stainless-retry-count"] for r in sent] == ["0", "1"]
    finally:
        await close_wires(client)
        await client.close()


async def test_the_aiohttp_path_reports_a_refused_connection_after_the_retries():
    client = _client("anthropic", f"http://127.0.0.1:{free_port()}", max_retries=1)
    try:
        with pytest.raises(LLMError) as caught:
            await forward(client, "anthropic", "/v1/messages", BODY, stream=False)
        assert caught.value.kind is LLMErrorKind.UNAVAILABLE
        assert _wire(client, "/v1/messages").aio is not None
    finally:
        await close_wires(client)
        await client.close()


@pytest.mark.parametrize("protocol", ["anthropic", "openai"])
async def test_a_proxied_client_keeps_the_httpx_path_and_its_proxy(
    fake_anthropic, fake_openai, protocol
):
    """The proxy is the fake itself: the request reaches it in absolute form (a proxy's
    request line), for an upstream address where nothing listens."""
    fake = _fake(protocol, fake_anthropic, fake_openai)
    upstream = f"http://127.0.0.1:{free_port()}"
    module = anthropic if protocol == "anthropic" else openai
    proxied = module.DefaultAsyncHttpxClient(proxy=fake.url.removesuffix("/v1"))
    client = _client(protocol, upstream, max_retries=0, http_client=proxied)
    try:
        answer = await forward(client, protocol, _path(protocol), BODY, stream=False)
        assert _wire(client, _path(protocol)).aio is None
        assert answer.status == 404  # the fake answers what is not its own path
        assert fake.requests[-1].path == upstream + _path(protocol)
    finally:
        await client.close()


async def test_a_proxy_in_the_environment_keeps_the_httpx_path(fake_anthropic, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", fake_anthropic.url)
    monkeypatch.setenv("NO_PROXY", "")
    upstream = f"http://127.0.0.1:{free_port()}"
    client = _client("anthropic", upstream, max_retries=0)
    try:
        answer = await forward(client, "anthropic", "/v1/messages", BODY, stream=False)
        assert _wire(client, "/v1/messages").aio is None
        assert answer.status == 404
        assert fake_anthropic.requests[-1].path == upstream + "/v1/messages"
    finally:
        await client.close()


async def test_no_proxy_alone_keeps_the_aiohttp_path(fake_anthropic, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "example.org")
    client = _client("anthropic", fake_anthropic.url, max_retries=0)
    try:
        answer = await forward(client, "anthropic", "/v1/messages", BODY, stream=False)
        assert answer.status == 200
        assert _wire(client, "/v1/messages").aio is not None
    finally:
        await close_wires(client)
        await client.close()


@pytest.fixture
def tls_upstream(tmp_path):  # type: ignore[no-untyped-def]
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; yields (url, cert
    path, requests served)."""
    import datetime
    import ipaddress
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mnemo-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            served.append(self.path)
            body = b'{"type":"message","content":[{"type":"text","text":"over tls"}]}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert_path, served
    server.shutdown()
    server.server_close()


async def test_the_aiohttp_path_verifies_tls_with_the_sdk_trust_store(tls_upstream, monkeypatch):
    """Refused while the certificate is unknown; accepted once the SDK's client trusts it
    (``SSL_CERT_FILE``, read by httpx2 when the client is made): aiohttp uses the SDK's
    own TLS context, verification included."""
    url, cert_path, served = tls_upstream
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    untrusting = _client("anthropic", url, max_retries=0)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    trusting = _client("anthropic", url, max_retries=0)
    try:
        with pytest.raises(LLMError) as caught:
            await forward(untrusting, "anthropic", "/v1/messages", BODY, stream=False)
        assert caught.value.kind is LLMErrorKind.UNAVAILABLE
        assert served == []
        answer = await forward(trusting, "anthropic", "/v1/messages", BODY, stream=False)
        assert (answer.status, b"over tls" in answer.content) == (200, True)
        assert served == ["/v1/messages"]
        for client in (untrusting, trusting):
            assert _wire(client, "/v1/messages").aio is not None
    finally:
        for client in (untrusting, trusting):
            await close_wires(client)
            await client.close()


async def test_an_abandoned_stream_frees_its_aiohttp_connection(fake_anthropic):
    """A client that leaves mid-stream: the upstream connection is closed, not returned
    half-read to the pool, and the next forwarded request is answered in full."""
    client = _client("anthropic", fake_anthropic.url, max_retries=0)
    gate = fake_anthropic.hold_stream()
    try:
        answer = await forward(client, "anthropic", "/v1/messages", STREAMED, stream=True)
        assert answer.chunks is not None
        first = await anext(answer.chunks)
        assert b"message_start" in first
        await answer.aclose()
        gate.set()
        fake_anthropic.enqueue_text("second answer")
        again = await forward(client, "anthropic", "/v1/messages", STREAMED, stream=True)
        assert again.chunks is not None
        body = b"".join([chunk async for chunk in again.chunks])
        deltas = re.findall(rb'"text_delta", "text": "([^"]*)"', body)
        assert b"".join(deltas) == b"second answer"
        assert body.endswith(b'data: {"type": "message_stop"}\n\n')
        assert _wire(client, "/v1/messages").aio is not None
    finally:
        gate.set()
        await close_wires(client)
        await client.close()


async def test_a_stream_stalled_past_the_read_timeout_is_an_llm_error(fake_anthropic):
    """aiohttp's read timeout mid-stream surfaces as the stream breaking off (LLMError),
    as httpx2's does."""
    client = _client("anthropic", fake_anthropic.url, max_retries=0, timeout=0.5)
    gate = fake_anthropic.hold_stream()
    try:
        answer = await forward(client, "anthropic", "/v1/messages", STREAMED, stream=True)
        assert answer.chunks is not None
        with pytest.raises(LLMError) as caught:
            async for _chunk in answer.chunks:
                pass
        assert caught.value.kind is LLMErrorKind.UNAVAILABLE
        assert "broke off" in str(caught.value)
        assert _wire(client, "/v1/messages").aio is not None
    finally:
        gate.set()
        await close_wires(client)
        await client.close()
