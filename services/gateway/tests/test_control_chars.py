"""Control characters are refused at every entry, never stored (a NUL in one memory used to
make every later turn of its user answer ``committed: false``).

The walk covers every operation of the gateway's own OpenAPI document: each string of a
valid request (path and query parameters, every string leaf of the JSON body) is replaced
in turn by text carrying a refused character; the answer must be a 4xx naming that field.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import httpx
import pytest

#: NUL, another C0 control, DEL, a C1 control
BAD = ["tea\x00", "tea\x1b[31m", "tea\x7f", "tea\x85"]
PATH_VALUES = {"user_id": "walker", "thread_id": "walk-t1", "memory_id": "mem-1", "key": "tone"}


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if "anyOf" in schema:  # the first alternative that is not null
        return _resolve(next(s for s in schema["anyOf"] if s.get("type") != "null"), doc)
    return schema


def sample(schema: dict[str, Any], doc: dict[str, Any]) -> Any:
    """A valid value of ``schema`` holding every string field it declares."""
    s = _resolve(schema, doc)
    if "enum" in s:
        return s["enum"][-1]
    kind = s.get("type")
    if kind == "object":
        props = s.get("properties", {})
        return {name: sample(p, doc) for name, p in props.items() if name != "stream"}
    if kind == "array":
        item = sample(s.get("items", {}), doc)
        return [item] if item != {} else []
    if kind == "integer":
        return int(s.get("minimum", 1))
    if kind == "number":
        return float(s.get("minimum", 0))
    if kind == "boolean":
        return False
    return "walk"


def string_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [prefix]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in string_paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in string_paths(v, (*prefix, i))]
    return []


def replaced(value: Any, path: tuple[Any, ...], new: str) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    return [replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


def cases(doc: dict[str, Any]) -> list[tuple[str, str, dict, dict, Any, str, str]]:
    """(method, path template, path params, query, body, where, field) per string field."""
    out = []
    for template, ops in doc["paths"].items():
        for method, op in ops.items():
            path = {
                p["name"]: PATH_VALUES.get(p["name"], "walk-1")
                for p in op.get("parameters", [])
                if p["in"] == "path"
            }
            query = {
                p["name"]: "walk"
                for p in op.get("parameters", [])
                if p["in"] == "query" and _resolve(p["schema"], doc).get("type") == "string"
            }
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            body = sample(content["schema"], doc) if content else None
            base = (method.upper(), template, path, query, body)
            out += [(*base, "path", name) for name in path]
            out += [(*base, "query", name) for name in query]
            for p in string_paths(body):
                out.append((*base, "body", ".".join(str(x) for x in p)))
    return out


def test_every_string_of_every_route_refuses_control_characters(gateway) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        doc = client.get("/openapi.json").json()
        walked = cases(doc)
        assert len({(m, t) for m, t, *_ in walked}) >= 15  # the whole API, not a sample
        fields = {(t, f) for _, t, _, _, _, where, f in walked if where == "body"}
        assert ("/v1/users/{user_id}/memories", "text") in fields
        assert ("/v1/chat/completions", "messages.0.content") in fields
        for i, (method, template, path, query, body, where, field) in enumerate(walked):
            bad = BAD[i % len(BAD)]
            p, q, b = dict(path), dict(query), body
            if where == "path":
                p[field] = bad
            elif where == "query":
                q[field] = bad
            else:
                b = replaced(body, tuple(_key(x) for x in field.split(".")), bad)
            url = template.format(**{k: urllib.parse.quote(v, safe="") for k, v in p.items()})
            r = client.request(method, url, params=q, json=b)
            what = f"{method} {template} {where} {field}={bad!r}"
            assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
            err = r.json()["error"]
            assert err["field"] == field, f"{what}: {err}"
        # nothing was stored for the walker along the way
        assert client.get("/v1/users/walker/memories").json()["memories"] == []
        assert client.get("/v1/users/walker/preferences").json()["values"] == {}
        assert client.get("/v1/users/walker/threads").json()["threads"] == []


def _key(part: str) -> Any:
    return int(part) if part.isdigit() else part


def test_a_memory_with_a_nul_is_refused_and_the_user_keeps_chatting(gateway) -> None:
    """The issue's example: the memory is 422 naming ``text``, and the next turn stores."""
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        r = client.post("/v1/users/nul-user/memories", json={"text": "tea\u0000"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "text"
        ok = client.post("/v1/users/nul-user/memories", json={"text": "User likes tea"})
        assert ok.status_code == 201
        chat = client.post(
            "/v1/chat", json={"prompt": "What do I like?", "user_id": "nul-user"}
        ).json()
        assert chat["committed"] is True


@pytest.mark.parametrize("text", ["tab\there", "line\nbreak\r\n", "emoji \U0001f600 é"])
def test_ordinary_whitespace_and_unicode_are_stored(gateway, text) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        r = client.post("/v1/users/fine-user/memories", json={"text": text})
        assert r.status_code == 201, r.text
