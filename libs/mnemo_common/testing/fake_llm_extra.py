"""The fake LLM servers' endpoints beside chat: the model list and token counting.

* ``GET /v1/models`` and ``GET /v1/models/{id}`` on both fakes, in the vendor's shape
  (Anthropic: a page ``{data, has_more, first_id, last_id}`` honouring ``limit``,
  ``after_id``, ``before_id``; OpenAI: ``{"object": "list", "data"}``), listing
  :data:`ANTHROPIC_MODELS` / :data:`OPENAI_MODELS`; an unknown id is the vendor's 404.
* ``POST /v1/messages/count_tokens`` on the Anthropic fake:
  ``{"input_tokens": fake_input_tokens(body)}``.

A queued error (``enqueue_error``) answers the next of these requests too, so a test can
play an upstream without the endpoint (404) or a failing one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..tokens import estimate_tokens

if TYPE_CHECKING:
    from ._fake_llm_base import FakeLLMServer, _Handler

ANTHROPIC_MODELS: list[dict[str, Any]] = [
    {
        "type": "model",
        "id": model_id,
        "display_name": name,
        "created_at": created,
        "lifecycle": "active",
        "max_input_tokens": 200_000,
        "max_tokens": 64_000,
    }
    for model_id, name, created in (
        ("claude-opus-4-8", "Claude Opus 4.8 (fake)", "2026-06-01T00:00:00Z"),
        ("claude-haiku-4-5-20251001", "Claude Haiku 4.5 (fake)", "2025-10-01T00:00:00Z"),
        ("claude-fake-other", "Another fake model", "2025-01-01T00:00:00Z"),
    )
]
OPENAI_MODELS: list[dict[str, Any]] = [
    {"id": model_id, "object": "model", "created": 1_750_000_000, "owned_by": "fake"}
    for model_id in ("fake-chat-model", "fake-extraction-model", "fake-other-model")
]


def fake_input_tokens(body: Any) -> int:
    """What the fake's count_tokens answers for ``body`` (deliberately not the gateway's
    own estimate, so a test can tell a forwarded count from an estimated one)."""
    return estimate_tokens(json.dumps(body, sort_keys=True)) + 7


def serve_extra(fake: FakeLLMServer, handler: _Handler, body: Any) -> bool:
    """Answer ``handler``'s request when it is one of this module's endpoints."""
    url = urlsplit(handler.path)
    path, method = url.path, handler.command
    models = ANTHROPIC_MODELS if fake.name == "anthropic" else OPENAI_MODELS
    if method == "GET" and path == "/v1/models":
        if not _queued_error(fake, handler):
            handler.send_json(200, _page(fake.name, models, parse_qs(url.query)))
        return True
    if method == "GET" and path.startswith("/v1/models/"):
        if not _queued_error(fake, handler):
            wanted = unquote(path[len("/v1/models/") :])
            found = [m for m in models if m["id"] == wanted]
            if found:
                handler.send_json(200, found[0])
            else:
                fake._send_error(
                    handler, 404, fake.default_error_type(404), f"model: {wanted}", None
                )
        return True
    if method == "POST" and path == "/v1/messages/count_tokens" and fake.name == "anthropic":
        if not _queued_error(fake, handler):
            handler.send_json(200, {"input_tokens": fake_input_tokens(body)})
        return True
    return False


def _queued_error(fake: FakeLLMServer, handler: _Handler) -> bool:
    with fake._lock:
        if not fake._queue or fake._queue[0]["kind"] != "error":
            return False
        reply = fake._queue.popleft()
    fake._send_error(handler, reply["status"], reply["type"], reply["message"], None)
    return True


def _page(vendor: str, models: list[dict[str, Any]], query: dict[str, list[str]]) -> Any:
    if vendor != "anthropic":
        return {"object": "list", "data": models}
    ids = [m["id"] for m in models]
    limit = int(query.get("limit", ["20"])[0])
    start, end = 0, len(models)
    if "after_id" in query and query["after_id"][0] in ids:
        start = ids.index(query["after_id"][0]) + 1
    if "before_id" in query and query["before_id"][0] in ids:
        end = ids.index(query["before_id"][0])
        start = max(start, end - limit)
    data = models[start:end][:limit]
    return {
        "data": data,
        "has_more": start > 0 if "before_id" in query else start + len(data) < end,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
