"""The OpenAPI document as the gateway really behaves (``/openapi.json``, ``/docs``).

FastAPI derives 200/422 from the routes; the rest of the contract lives in middleware and
dependencies, so it is added here, in one pass over the generated document:

* every status an operation can answer, each with the error body
  (``{"type": "error", "error": {"code", "type", "message", "field"?}}``, docs/api.md);
* the id rule (``mnemo_common.ids.ID_PATTERN``) on every id path/query parameter —
  ``user_id``, ``thread_id``, ``memory_id``, a preference ``key``;
* the text rule of :mod:`..core.text_guard`: no string anywhere in a request (value or
  object key) may hold a control character, so every string gets that pattern and every
  free-form JSON value is :data:`JSON_VALUE`;
* the streamed answer (``text/event-stream``) of the chat endpoints.

Checked by schemathesis against a real gateway (tests/integration/test_openapi_conformance.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from mnemo_common.ids import ID_PATTERN

#: text_guard's refusal (C0 but tab/LF/CR, DEL, C1) as a JSON Schema pattern
CLEAN_TEXT = "^[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F-\\x9F]*$"
ID_PARAMS = frozenset({"user_id", "thread_id", "memory_id", "key"})
#: body fields holding an id; empty counts as absent (``api.turns.checked_id``)
ID_FIELDS = frozenset(
    {
        "user_id",
        "thread_id",
        "source_thread_id",
        "idempotency_key",
        "agent_name",
        "user",
        "safety_identifier",
    }
)
#: where the drop-in bodies name the user (``api.caller.requested_user``): an id or nothing
USER_FIELDS = {
    "CompletionsBody": ("user", "safety_identifier"),
    "CountTokensBody": (),
    "MessagesBody": (),
}
ID_OR_EMPTY = "^([A-Za-z0-9._@+-]{1,128})?$"
STREAMING = frozenset({"/v1/chat", "/v1/messages", "/v1/chat/completions", "/v1/responses"})
CHAT = STREAMING | {"/v1/messages/count_tokens"}

_REF = "#/components/schemas/"
JSON_VALUE: dict[str, Any] = {
    "description": "any JSON value whose strings and keys hold no control character",
    "anyOf": [
        {"type": "string", "pattern": CLEAN_TEXT},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": {"$ref": _REF + "JsonValue"}},
        {
            "type": "object",
            "propertyNames": {"pattern": CLEAN_TEXT},
            "additionalProperties": {"$ref": _REF + "JsonValue"},
        },
    ],
}
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["code", "type", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable machine-readable name"},
                "type": {"type": "string", "description": "Anthropic-style error type"},
                "message": {"type": "string"},
                "field": {"type": "string", "description": "the request field at fault"},
            },
        },
    },
}
WHEN = {
    400: "invalid JSON, or the LLM provider refused the request itself",
    401: "missing or bad credential (api-key / jwt modes)",
    403: "the credential may not act for that user",
    404: "no such thread, memory, model or route",
    409: "idempotency key reused, or a conflicting memory operation",
    413: "body over GATEWAY__MAX_BODY_BYTES, or prompt over the size limits",
    422: "a field is invalid (named in `error.field`): ids, control characters, types",
    429: "the user's rate limit (`Retry-After`)",
    501: "the memory service does not offer that operation",
    502: "the LLM provider or the memory service failed on this request",
    503: "memory disabled or unavailable, LLM rate-limited or overloaded, not ready",
    504: "the LLM provider or the memory service timed out",
}


def statuses(path: str, method: str, has_body: bool) -> set[int]:
    """The error statuses ``method path`` can answer (the table in docs/api.md)."""
    if path in ("/healthz", "/readyz"):
        return {422, 503} if path == "/readyz" else {422}
    found = {401, 422}
    if has_body:
        found |= {400, 413}
    if path.startswith("/v1/users/"):
        found |= {403, 404, 409, 429, 501, 502, 503, 504}
    elif path in CHAT:
        found |= {400, 403, 409, 413, 429, 502, 503, 504}
    elif path.startswith("/v1/models"):
        found |= {404, 502, 503, 504}
    elif path == "/v1/me":
        found |= {403}
    return found


def _clean_strings(node: Any) -> None:
    """The text rule on every schema under ``node`` (in place)."""
    if isinstance(node, list):
        for item in node:
            _clean_strings(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "string" and not ({"pattern", "enum", "const", "format"} & set(node)):
        node["pattern"] = CLEAN_TEXT
    if node.get("type") == "object":
        node.setdefault("propertyNames", {"pattern": CLEAN_TEXT})
        if node.get("additionalProperties", True) is True:
            node["additionalProperties"] = {"$ref": _REF + "JsonValue"}
    for key, value in node.items():
        if key not in ("propertyNames", "const", "enum", "examples", "example", "default"):
            _clean_strings(value)


def _operation(path: str, method: str, op: dict[str, Any]) -> None:
    _clean_strings(op.get("requestBody"))
    for param in op.get("parameters", []):
        schema = param.setdefault("schema", {})
        if param["name"] in ID_PARAMS:
            schema.update(pattern=ID_PATTERN, maxLength=128, minLength=1)
        _clean_strings(schema)
    responses = op.setdefault("responses", {})
    for status in sorted(statuses(path, method, "requestBody" in op)):
        responses[str(status)] = {
            "description": WHEN[status],
            "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}},
        }
    if path in STREAMING and "200" in responses:
        content = responses["200"].setdefault("content", {})
        # one JSON document per event, of the endpoint's own protocol
        content["text/event-stream"] = {"schema": {"description": "events of `stream: true`"}}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_EMPTY: dict[str, Any] = {"enum": [None, False, 0, "", [], {}]}
_TEXT: dict[str, Any] = {"type": "string", "pattern": CLEAN_TEXT}
RESPONSES_ITEM: dict[str, Any] = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "type": {"const": "message"},
        "role": {"enum": ["user", "assistant", "system", "developer"]},
        "content": {
            "anyOf": [
                _TEXT,
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {
                            "type": {"enum": ["input_text", "output_text", "text"]},
                            "text": _TEXT,
                        },
                    },
                },
            ]
        },
    },
}
#: /v1/responses reads the body itself (api/responses_wire.py): the fields it honours, the
#: ones accepted when they ask for nothing, and every other field only when empty
RESPONSES_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": {"type": "string", "minLength": 1, "pattern": CLEAN_TEXT},
        "input": {
            "anyOf": [
                {"type": "string", "minLength": 1, "pattern": CLEAN_TEXT},
                {"type": "array", "minItems": 1, "items": RESPONSES_ITEM},
            ]
        },
        "instructions": _nullable({"type": "string", "pattern": CLEAN_TEXT}),
        "stream": _nullable({"type": "boolean"}),
        "max_output_tokens": _nullable({"type": "number", "minimum": 1}),
        "temperature": _nullable({"type": "number", "minimum": 0, "maximum": 2}),
        "user": _nullable({"type": "string", "pattern": ID_OR_EMPTY}),
        "safety_identifier": _nullable({"type": "string", "pattern": ID_OR_EMPTY}),
        "store": {"enum": [None, True]},
        "tool_choice": {"enum": [None, "auto", "none"]},
        "parallel_tool_calls": {"$ref": _REF + "JsonValue"},
        "text": {"enum": [None, {}, {"format": {"type": "text"}}]},
        "truncation": {"enum": [None, "disabled"]},
        "stream_options": {"enum": [None, {}]},
    },
    "propertyNames": {"pattern": CLEAN_TEXT},
    "additionalProperties": _EMPTY,
}


def _at_least_one(schema: dict[str, Any], fields: tuple[str, ...]) -> None:
    """``schema`` (a PATCH body) must set one of ``fields`` to a non-null value: it is not
    an object whose ``fields`` are all absent or null."""
    schema["not"] = {"properties": {f: {"type": "null"} for f in fields}}


def _id_fields(components: dict[str, Any]) -> None:
    id_or_empty = _nullable({"type": "string", "pattern": ID_OR_EMPTY})
    for name, fields in USER_FIELDS.items():
        model = components.get(name)
        if model is None:
            continue
        for field in fields:
            model.setdefault("properties", {})[field] = id_or_empty
        metadata = model.get("properties", {}).get("metadata")
        for branch in metadata.get("anyOf", [metadata]) if metadata else ():
            if branch.get("type") == "object":
                branch.setdefault("properties", {})["user_id"] = id_or_empty
    for model in components.values():
        for name, prop in model.get("properties", {}).items():
            if name not in ID_FIELDS:
                continue
            for branch in [prop, *prop.get("anyOf", [])]:
                if branch.get("type") == "string":
                    branch["pattern"] = ID_OR_EMPTY


def truthful_openapi(app: FastAPI) -> dict[str, Any]:
    """``app.openapi`` replacement: FastAPI's document plus the contract above (cached)."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    _clean_strings(components)
    _id_fields(components)
    if "MemoryPatch" in components:
        _at_least_one(components["MemoryPatch"], ("text", "importance", "kind"))
    components["JsonValue"] = JSON_VALUE
    components["Error"] = ERROR
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    responses_op = doc.get("paths", {}).get("/v1/responses", {}).get("post")
    if responses_op is not None:
        responses_op["requestBody"]["content"]["application/json"]["schema"] = RESPONSES_BODY
    for path, ops in doc.get("paths", {}).items():
        for method, op in ops.items():
            _operation(path, method, op)
    app.openapi_schema = doc
    return doc
