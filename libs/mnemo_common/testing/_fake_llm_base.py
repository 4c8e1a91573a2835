"""HTTP machinery shared by the fake LLM servers of :mod:`.fake_llm` (see its docstring)."""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from ..tokens import estimate_tokens
from .fake_llm_extra import serve_extra  # models, count_tokens

Reply = dict[str, Any]

#: pause between SSE events so a client really receives them one by one
CHUNK_FLUSH_S = 0.005
#: longest a held stream (``hold_stream``) waits to be released
HOLD_LIMIT_S = 10.0


@dataclass
class RecordedRequest:
    """One HTTP request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.time)
    #: the body's bytes as they arrived
    raw: bytes = b""

    @property
    def api_key(self) -> str | None:
        """The key the client sent (``x-api-key`` or ``Authorization: Bearer``)."""
        if "x-api-key" in self.headers:
            return self.headers["x-api-key"]
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.lower().startswith("bearer ") else None

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and bool(self.body.get("stream"))


def split_chunks(text: str, count: int) -> list[str]:
    """Split ``text`` into about ``count`` pieces on word boundaries (joined = ``text``)."""
    words = text.split(" ")
    if len(words) < 2 or count < 2:
        return [text]
    size = math.ceil(len(words) / count)
    pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    return [p + " " if i < len(pieces) - 1 else p for i, p in enumerate(pieces)]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    # each SSE event is its own small write: without this, Nagle + delayed ACK hold it ~40 ms
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        self.raw_body = b""
        self.server.fake._handle(self, None)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.raw_body = raw
        self.server.fake._handle(self, body)

    # -- writing helpers used by the fakes ---------------------------------------------
    def send_json(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def send_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # 32 concurrent clients (benchmarks) must not be refused
    fake: FakeLLMServer


class FakeLLMServer:
    """Common machinery: the HTTP server thread, the scripted queue, the request log."""

    name = "fake"
    #: the chat endpoint path this fake serves
    chat_path = "/"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._delay_s = 0.0
        self._default: str | Callable[[Any], str] | None = None
        self._abort = threading.Event()
        self._stream_gate: threading.Event | None = None
        self._counter = 0
        self.requests: list[RecordedRequest] = []
        self.stream_chunks = 4
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # quick shutdown at the end of a session
            name=f"{self.name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._abort.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        """Forget scripted replies, delay, default reply and recorded requests."""
        with self._lock:
            self._abort.set()  # wake handlers still sleeping in a delay; they drop the reply
            self._abort = threading.Event()
            self._queue.clear()
            self._delay_s = 0.0
            self._default = None
            if self._stream_gate is not None:
                self._stream_gate.set()
            self._stream_gate = None
            self.requests = []
            self.stream_chunks = 4
            self._reset_extra()

    def _reset_extra(self) -> None:
        pass

    # -- scripting -------------------------------------------------------------------------
    def enqueue_text(self, text: str, stop_reason: str | None = None) -> None:
        """The next request gets ``text`` as the model's reply."""
        with self._lock:
            self._queue.append({"kind": "text", "text": text, "stop_reason": stop_reason})

    def enqueue_tool_call(
        self, name: str, arguments: dict[str, Any], *, text: str = "", thinking: str | None = None
    ) -> None:
        """The next reply asks for one tool call (``text`` before it, and a ``thinking``
        block first on the Anthropic fake): stop reason ``tool_use`` / ``tool_calls``."""
        self.enqueue_reply(text, tools=[(name, arguments)], thinking=thinking)

    def enqueue_reply(
        self,
        text: str,
        *,
        tools: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
        thinking: str | None = None,
        stop_reason: str | None = None,
    ) -> None:
        """The next reply: ``text``, then tool calls, after an optional thinking block."""
        with self._lock:
            self._queue.append(
                {
                    "kind": "text",
                    "text": text,
                    "stop_reason": stop_reason,
                    "tools": [{"name": n, "input": a} for n, a in tools],
                    "thinking": thinking,
                }
            )

    def enqueue_json(self, value: Any) -> None:
        """The next reply is ``value`` serialised as JSON text (structured-output tests)."""
        self.enqueue_text(json.dumps(value))

    def enqueue_error(
        self,
        status: int,
        error_type: str | None = None,
        message: str | None = None,
        retry_after: float | None = 0.01,
    ) -> None:
        """The next request fails with HTTP ``status`` and the vendor's error body."""
        error_type = error_type or self.default_error_type(status)
        with self._lock:
            self._queue.append(
                {
                    "kind": "error",
                    "status": status,
                    "type": error_type,
                    "message": message or f"fake {error_type} (HTTP {status})",
                    "retry_after": retry_after,
                }
            )

    def enqueue_stream_failure(
        self, text: str, error_type: str = "overloaded_error", message: str | None = None
    ) -> None:
        """A streamed reply that sends ``text`` and then fails mid-stream."""
        with self._lock:
            self._queue.append(
                {
                    "kind": "stream_failure",
                    "text": text,
                    "type": error_type,
                    "message": message or f"fake {error_type} mid-stream",
                }
            )

    def set_delay(self, seconds: float) -> None:
        """Wait ``seconds`` before answering each following request."""
        with self._lock:
            self._delay_s = seconds

    def hold_stream(self) -> threading.Event:
        """Make the next streamed reply stop after its first chunk until the returned event
        is set (proves a client sees text before the answer is complete; gives up after
        :data:`HOLD_LIMIT_S`)."""
        gate = threading.Event()
        with self._lock:
            self._stream_gate = gate
        return gate

    def set_default_reply(self, reply: str | Callable[[Any], str] | None) -> None:
        """Reply used when nothing is queued (``None`` restores the default)."""
        with self._lock:
            self._default = reply

    # -- inspection ------------------------------------------------------------------------
    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self.requests:
                raise AssertionError(f"the fake {self.name} server received no request")
            return self.requests[-1]

    def chat_requests(self) -> list[RecordedRequest]:
        """Requests to the chat endpoint only."""
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == self.chat_path]

    def last_system_prompt(self) -> str:
        raise NotImplementedError

    def last_user_message(self) -> str:
        return _last_user_text(self.last_request.body)

    # -- configuration helpers -------------------------------------------------------------
    def env(self, **llm: Any) -> dict[str, str]:
        raise NotImplementedError

    def settings(self, **llm: Any) -> Any:
        """A ``CommonSettings`` pointing the provider layer at this fake (``.env`` ignored)."""
        from ..settings import CommonSettings

        env = self.env(**llm)
        nested: dict[str, Any] = {}
        flat: dict[str, Any] = {}
        for name, value in env.items():
            if name.startswith("LLM__"):
                nested[name[5:].lower()] = value
            else:
                flat[name.lower()] = value
        return CommonSettings(_env_file=None, llm=nested, **flat)

    # -- request handling ------------------------------------------------------------------
    def default_error_type(self, status: int) -> str:
        raise NotImplementedError

    def _next_reply(self, body: Any) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            default = self._default
        if callable(default):
            text = default(body)
        elif default is not None:
            text = default
        else:
            text = f"fake reply to: {_last_user_text(body)}"
        return {"kind": "text", "text": text, "stop_reason": None}

    def _handle(self, handler: _Handler, body: Any) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            raw = getattr(handler, "raw_body", b"")
            self.requests.append(
                RecordedRequest(handler.command, handler.path, headers, body, raw=raw)
            )
            self._counter += 1
            delay, abort = self._delay_s, self._abort
        if delay and abort.wait(delay):
            handler.close_connection = True
            return  # reset/stop while waiting: the client has long given up
        try:
            if serve_extra(self, handler, body):
                return
            if handler.command != "POST" or handler.path.split("?")[0] != self.chat_path:
                self._send_error(
                    handler,
                    404,
                    self.default_error_type(404),
                    f"fake {self.name} has no {handler.command} {handler.path}",
                    None,
                )
                return
            reply = self._next_reply(body)
            if reply["kind"] == "error":
                self._send_error(
                    handler, reply["status"], reply["type"], reply["message"], reply["retry_after"]
                )
            elif isinstance(body, dict) and body.get("stream"):
                self._send_stream(handler, body, reply)
            elif reply["kind"] == "stream_failure":
                self._send_error(handler, 529, reply["type"], reply["message"], None)
            else:
                handler.send_json(200, self._message_doc(body, reply))
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client timed out or went away

    def _send_error(
        self,
        handler: _Handler,
        status: int,
        error_type: str,
        message: str,
        retry_after: float | None,
    ) -> None:
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["retry-after"] = str(math.ceil(retry_after))
            headers["retry-after-ms"] = str(int(retry_after * 1000))
        handler.send_json(status, self._error_doc(error_type, message), headers)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self._counter:06d}"

    def _chunks(self, text: str) -> Iterator[str]:
        with self._lock:
            gate, self._stream_gate = self._stream_gate, None
        for index, piece in enumerate(split_chunks(text, self.stream_chunks)):
            if index == 1 and gate is not None:
                gate.wait(HOLD_LIMIT_S)
            time.sleep(CHUNK_FLUSH_S)
            yield piece

    def _usage(self, body: Any, text: str) -> tuple[int, int]:
        return estimate_tokens(json.dumps(body)), max(1, estimate_tokens(text))

    # vendor specifics
    def _message_doc(self, body: Any, reply: Reply) -> Any:
        raise NotImplementedError

    def _error_doc(self, error_type: str, message: str) -> Any:
        raise NotImplementedError

    def _send_stream(self, handler: _Handler, body: Any, reply: Reply) -> None:
        raise NotImplementedError


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def _last_user_text(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""
