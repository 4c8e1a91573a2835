"""Local HTTP servers that speak the Anthropic Messages API and OpenAI Chat Completions.

The hosted LLM is the only thing Mnemo's tests fake, and it is faked on the wire: the real
``anthropic`` / ``openai`` SDKs (and anything built on them: our providers, the gateway, the
worker, the CLI) talk HTTP to these servers exactly as they would to the real APIs.

Use them through the pytest fixtures of :mod:`mnemo_common.testing.llm_fixtures`
(``fake_anthropic``, ``fake_openai``: one server per test session, reset before and after
every test, so scripted replies and recorded requests never leak between tests)::

    async def test_answer_streams(fake_anthropic):
        fake_anthropic.enqueue_text("Hello there, Alice")        # next reply (else a default)
        provider = build_provider(fake_anthropic.settings())      # CommonSettings for this fake
        ...
        assert "Alice likes tea" in fake_anthropic.last_system_prompt()
        assert len(fake_anthropic.requests) == 1

API shared by both servers (``FakeAnthropicServer``, ``FakeOpenAIServer``):

* ``url`` — base URL to give the SDK (``http://127.0.0.1:PORT``; the OpenAI one ends in
  ``/v1`` because that SDK expects it).
* ``enqueue_text(text, stop_reason=None)`` — the next request gets this reply (JSON or SSE,
  whichever the request asked for). Replies are consumed in order, one per request.
* ``enqueue_json(value)`` — the next reply is ``json.dumps(value)`` (for ``complete_json``).
* ``enqueue_tool_call(name, arguments, text="", thinking=None)`` — the next reply asks for a
  tool (Anthropic ``tool_use`` block / OpenAI ``tool_calls``; streamed as
  ``input_json_delta`` / ``tool_calls`` deltas), after ``text`` and, on the Anthropic fake,
  a ``thinking`` block. ``enqueue_reply(text, tools=[(name, args)], thinking=,
  stop_reason=)`` is the general form.
* ``enqueue_error(status, error_type=None, message=None, retry_after=0.01)`` — the next
  request fails with the vendor's error body (``{"type":"error","error":{...}}`` /
  ``{"error":{...}}``), ``retry-after`` and ``retry-after-ms`` headers
  (``retry_after=None`` sends none, so the SDK uses its own backoff).
* ``enqueue_stream_failure(text, error_type="overloaded_error")`` — a streamed reply that
  sends ``text`` and then fails mid-stream (Anthropic ``event: error`` / OpenAI error chunk).
* ``set_delay(seconds)`` — wait this long before answering every following request (use a
  delay above ``LLM__TIMEOUT_S`` to test timeouts).
* ``hold_stream()`` — the next streamed reply pauses after its first chunk until the
  returned ``threading.Event`` is set: a test can assert text arrived before the end.
* ``set_default_reply(text_or_callable)`` — what to answer when nothing is queued; default
  ``"fake reply to: <last user message>"`` (deterministic). A callable gets the request body.
* ``stream_chunks`` — how many SSE text deltas a streamed reply is split into (default 4).
* ``requests`` — every request received (:class:`RecordedRequest`: ``method``, ``path``,
  ``headers`` with lower-case names, ``body`` as parsed JSON, ``api_key``, ``stream``),
  ``last_request``, ``chat_requests()``,
  ``last_system_prompt()``, ``last_user_message()``, ``reset()``.
* ``env(**llm)`` / ``settings(**llm)`` — environment variables / a ``CommonSettings`` that
  point Mnemo's provider layer at this server (``timeout_s``, ``max_retries``, ... override
  ``LLM__*``). Subprocesses get ``env={**os.environ, **fake.env()}``.

Beside chat, both fakes serve ``GET /v1/models[/{id}]`` and the Anthropic one
``POST /v1/messages/count_tokens`` (:mod:`.fake_llm_extra`).

``FakeOpenAIServer.stream_usage`` (default True) controls whether a stream that asked for
``stream_options.include_usage`` gets the final usage chunk (some servers never send it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from ._fake_llm_base import (
    CHUNK_FLUSH_S,
    FakeLLMServer,
    RecordedRequest,
    Reply,
    _content_text,
    _Handler,
    split_chunks,
)

__all__ = [
    "CHUNK_FLUSH_S",
    "FakeAnthropicServer",
    "FakeLLMServer",
    "FakeOpenAIServer",
    "RecordedRequest",
    "split_chunks",
]

#: API keys the fakes hand out; anything else is accepted too (the fakes do not check keys)
FAKE_ANTHROPIC_KEY = "sk-ant-fake-test-key"
FAKE_OPENAI_KEY = "sk-fake-test-key"


def _llm_env(overrides: dict[str, Any]) -> dict[str, str]:
    return {f"LLM__{k.upper()}": str(v) for k, v in overrides.items() if v is not None}


#: how each kind of content block starts in an Anthropic stream (its deltas fill it in)
_EMPTY_BLOCK: dict[str, dict[str, Any]] = {
    "thinking": {"thinking": "", "signature": ""},
    "tool_use": {"input": {}},
    "text": {"text": ""},
}


class FakeAnthropicServer(FakeLLMServer):
    """Speaks ``POST /v1/messages`` (JSON and SSE) like the Anthropic API."""

    name = "anthropic"
    chat_path = "/v1/messages"

    _ERROR_TYPES = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }

    def default_error_type(self, status: int) -> str:
        return self._ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )

    def last_system_prompt(self) -> str:
        """The ``system`` of the last request (a string or a list of text blocks), as text."""
        body = self.last_request.body
        return _content_text(body.get("system")) if isinstance(body, dict) else ""

    def env(self, **llm: Any) -> dict[str, str]:
        """Environment selecting the anthropic provider against this fake."""
        values: dict[str, Any] = {
            "provider": "anthropic",
            "anthropic_base_url": self.url,
            "timeout_s": 5,
            "max_retries": 2,
        }
        values.update(llm)
        return {"ANTHROPIC_API_KEY": FAKE_ANTHROPIC_KEY, **_llm_env(values)}

    def _error_doc(self, error_type: str, message: str) -> Any:
        return {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": self._new_id("req_fake"),
        }

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.get("thinking") is not None:
            blocks.append({"type": "thinking", "thinking": reply["thinking"], "signature": "sig"})
        if reply["text"] or not reply.get("tools"):
            blocks.append({"type": "text", "text": reply["text"]})
        for i, tool in enumerate(reply.get("tools") or []):
            blocks.append({"type": "tool_use", "id": f"toolu_{self._counter:04d}_{i}", **tool})
        return blocks

    def _message_doc(self, body: Any, reply: Reply) -> Any:
        input_tokens, output_tokens = self._usage(body, reply["text"])
        default_stop = "tool_use" if reply.get("tools") else "end_turn"
        return {
            "id": self._new_id("msg_fake"),
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-fake") if isinstance(body, dict) else "claude-fake",
            "content": self._blocks(reply),
            "stop_reason": reply.get("stop_reason") or default_stop,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }

    def _send_stream(self, handler: _Handler, body: Any, reply: Reply) -> None:
        def event(name: str, data: dict[str, Any]) -> None:
            handler.send_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")

        doc = self._message_doc(body, reply)
        start = dict(
            doc,
            content=[],
            stop_reason=None,
            usage={"input_tokens": doc["usage"]["input_tokens"], "output_tokens": 1},
        )

        def deltas(content: dict[str, Any]) -> Iterator[dict[str, Any]]:
            if content["type"] == "thinking":
                yield {"type": "thinking_delta", "thinking": content["thinking"]}
                yield {"type": "signature_delta", "signature": content["signature"]}
            elif content["type"] == "tool_use":
                args = json.dumps(content["input"])
                for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                    yield {"type": "input_json_delta", "partial_json": piece}
            else:
                for piece in self._chunks(content["text"]):
                    yield {"type": "text_delta", "text": piece}

        handler.start_sse()
        event("message_start", {"type": "message_start", "message": start})
        event("ping", {"type": "ping"})
        for index, content in enumerate(doc["content"]):
            first = {**content, **_EMPTY_BLOCK[content["type"]]}
            event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": first},
            )
            for delta in deltas(content):
                event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            if reply["kind"] == "stream_failure":
                time.sleep(CHUNK_FLUSH_S)
                event("error", self._error_doc(reply["type"], reply["message"]))
                handler.end_sse()
                return
            event("content_block_stop", {"type": "content_block_stop", "index": index})
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": doc["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": doc["usage"]["output_tokens"]},
            },
        )
        event("message_stop", {"type": "message_stop"})
        handler.end_sse()


class FakeOpenAIServer(FakeLLMServer):
    """Speaks ``POST /v1/chat/completions`` (JSON and SSE) like OpenAI-compatible servers."""

    name = "openai"
    chat_path = "/v1/chat/completions"

    _ERROR_TYPES = {
        400: "invalid_request_error",
        401: "invalid_api_key",
        403: "permission_denied",
        404: "not_found_error",
        429: "rate_limit_exceeded",
        500: "server_error",
        503: "server_error",
    }

    def __init__(self) -> None:
        super().__init__()
        self.stream_usage = True

    def _reset_extra(self) -> None:
        self.stream_usage = True

    @property
    def url(self) -> str:
        """Base URL as OpenAI-compatible servers publish it (ends in ``/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    def default_error_type(self, status: int) -> str:
        return self._ERROR_TYPES.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )

    def last_system_prompt(self) -> str:
        """The system (or developer) messages of the last request, joined."""
        body = self.last_request.body
        if not isinstance(body, dict):
            return ""
        return "\n".join(
            _content_text(m.get("content"))
            for m in body.get("messages") or []
            if isinstance(m, dict) and m.get("role") in ("system", "developer")
        )

    def env(self, **llm: Any) -> dict[str, str]:
        """Environment selecting the openai-compatible provider against this fake."""
        values: dict[str, Any] = {
            "provider": "openai-compatible",
            "openai_base_url": self.url,
            "openai_api_key": FAKE_OPENAI_KEY,
            "openai_chat_model": "fake-chat-model",
            "openai_extraction_model": "fake-extraction-model",
            "timeout_s": 5,
            "max_retries": 2,
        }
        values.update(llm)
        return _llm_env(values)

    def _error_doc(self, error_type: str, message: str) -> Any:
        return {
            "error": {"message": message, "type": error_type, "param": None, "code": error_type}
        }

    def _message_doc(self, body: Any, reply: Reply) -> Any:
        prompt_tokens, completion_tokens = self._usage(body, reply["text"])
        return {
            "id": self._new_id("chatcmpl-fake"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model") if isinstance(body, dict) else "fake-model",
            "choices": [
                {
                    "index": 0,
                    "logprobs": None,
                    "message": self._message(reply),
                    "finish_reason": reply.get("stop_reason")
                    or ("tool_calls" if reply.get("tools") else "stop"),
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _message(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply["text"]}
        if reply.get("tools"):
            message["content"] = reply["text"] or None
            message["tool_calls"] = [
                {
                    "id": f"call_{self._counter:04d}_{i}",
                    "type": "function",
                    "function": {"name": t["name"], "arguments": json.dumps(t["input"])},
                }
                for i, t in enumerate(reply["tools"])
            ]
        return message

    def _send_stream(self, handler: _Handler, body: Any, reply: Reply) -> None:
        doc = self._message_doc(body, reply)
        base = {
            "id": doc["id"],
            "object": "chat.completion.chunk",
            "created": doc["created"],
            "model": doc["model"],
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            data = dict(
                base,
                choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            )
            handler.send_chunk(f"data: {json.dumps(data)}\n\n")

        handler.start_sse()
        chunk({"role": "assistant", "content": ""})
        for piece in self._chunks(reply["text"]):
            chunk({"content": piece})
        if reply["kind"] == "stream_failure":
            time.sleep(CHUNK_FLUSH_S)
            handler.send_chunk(
                f"data: {json.dumps(self._error_doc(reply['type'], reply['message']))}\n\n"
            )
            handler.end_sse()
            return
        for i, call in enumerate(doc["choices"][0]["message"].get("tool_calls") or []):
            args = call["function"]["arguments"]
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["function"]["name"], "arguments": ""},
                        }
                    ]
                }
            )
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        chunk({}, doc["choices"][0]["finish_reason"])
        options = body.get("stream_options") or {}
        if options.get("include_usage") and self.stream_usage:
            handler.send_chunk(
                f"data: {json.dumps(dict(base, choices=[], usage=doc['usage']))}\n\n"
            )
        handler.send_chunk("data: [DONE]\n\n")
        handler.end_sse()
