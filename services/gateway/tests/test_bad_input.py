"""Bad input gets a clear error with a stable code — and never reaches the LLM."""

from __future__ import annotations

import httpx
import pytest


@pytest.fixture
def gw(gateway_factory):
    return gateway_factory(None, gateway={"max_body_bytes": 4096, "max_prompt_chars": 1000})


def err(resp: httpx.Response) -> dict:
    body = resp.json()
    assert body["type"] == "error"
    return body["error"]


def test_broken_json_is_400_invalid_json(gw, fake_anthropic):
    r = httpx.post(
        gw.url + "/v1/chat",
        content=b'{"prompt": "hi"',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert err(r)["code"] == "invalid_json"
    assert fake_anthropic.requests == []


def test_missing_prompt_names_the_field(gw, fake_anthropic):
    r = httpx.post(gw.url + "/v1/chat", json={"thread_id": "t1"})
    assert r.status_code == 422
    e = err(r)
    assert e["code"] == "invalid_request" and e["field"] == "prompt"
    assert fake_anthropic.requests == []


@pytest.mark.parametrize("bad", ["a:b", "x" * 129, "has space", "star*", "tab\t"])
def test_invalid_thread_id_is_422_naming_the_field(gw, bad, fake_anthropic):
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi", "thread_id": bad})
    assert r.status_code == 422
    e = err(r)
    assert e["code"] == "invalid_id" and e["field"] == "thread_id"
    assert fake_anthropic.requests == []


def test_invalid_user_id_and_header_thread(gw):
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi", "user_id": "bob:*"})
    assert (r.status_code, err(r)["field"]) == (422, "user_id")
    r = httpx.post(
        gw.url + "/v1/messages",
        headers={"X-Mnemo-Thread-Id": "no/slash"},
        json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert (r.status_code, err(r)["field"]) == (422, "X-Mnemo-Thread-Id")
    r = httpx.get(gw.url + "/v1/users/bad:user/memories")
    assert (r.status_code, err(r)["code"], err(r)["field"]) == (422, "invalid_id", "user_id")


def test_body_over_the_limit_is_413(gw, fake_anthropic):
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "x" * 5000})
    assert r.status_code == 413
    assert err(r)["code"] == "request_too_large"
    assert fake_anthropic.requests == []


@pytest.mark.parametrize("path", ["/v1/chat", "/v1/messages", "/v1/users/me/preferences/x"])
def test_chunked_body_over_the_limit_is_413(gw, fake_anthropic, path):
    def chunks():  # no Content-Length: the limit is found while reading
        yield b'{"prompt": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    method = "PUT" if "preferences" in path else "POST"
    r = httpx.request(
        method, gw.url + path, content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert err(r)["code"] == "request_too_large"
    assert r.headers["x-request-id"]
    assert fake_anthropic.requests == []


def test_prompt_over_the_limit_is_413_naming_the_field(gw, fake_anthropic):
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "y" * 1500})
    assert r.status_code == 413
    assert (err(r)["code"], err(r)["field"]) == ("prompt_too_large", "prompt")
    assert fake_anthropic.requests == []


def test_drop_in_endpoints_refuse_malformed_conversations(gw, fake_anthropic):
    """What the pass-through cannot forward: no messages, a message without a role, a last
    message with no content (tools, images and assistant prefill now pass: see
    test_drop_in_passthrough.py)."""
    base = {"model": "m", "max_tokens": 10}
    for path in ("/v1/messages", "/v1/chat/completions"):
        r = httpx.post(gw.url + path, json={**base, "messages": []})
        assert (r.status_code, err(r)["field"]) == (422, "messages")
        r = httpx.post(gw.url + path, json={**base, "messages": [{"content": "q"}]})
        assert (r.status_code, err(r)["field"]) == (422, "messages.0.role")
    assert fake_anthropic.requests == []


def test_what_was_refused_now_reaches_the_upstream(gw, fake_anthropic):
    """Assistant prefill, image blocks and tools were 422 before the pass-through."""
    base = {"model": "m", "max_tokens": 10}
    bodies = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
        {"tools": [{"name": "x"}], "messages": [{"role": "user", "content": "q"}]},
    ]
    for extra in bodies:
        r = httpx.post(gw.url + "/v1/messages", json={**base, **extra})
        assert r.status_code == 200, r.text
        sent = fake_anthropic.last_request.body
        without_model = {k: v for k, v in sent.items() if k != "model"}
        assert without_model == {k: v for k, v in {**base, **extra}.items() if k != "model"}


@pytest.mark.parametrize(
    ("path", "field", "value", "upstream"),
    [
        # the client's protocol is the upstream's (Anthropic): forwarded as sent
        ("/v1/messages", "stop_sequences", ["END"], ("stop_sequences", ["END"])),
        (
            "/v1/messages",
            "thinking",
            {"type": "enabled", "budget_tokens": 1024},
            ("thinking", {"type": "enabled", "budget_tokens": 1024}),
        ),
        # an OpenAI client on the Anthropic upstream: translated
        ("/v1/chat/completions", "stop", ["\n\n"], ("stop_sequences", ["\n\n"])),
        ("/v1/chat/completions", "tool_choice", "auto", ("tool_choice", {"type": "auto"})),
    ],
)
def test_options_once_refused_are_honoured(gw, fake_anthropic, path, field, value, upstream):
    """Stop sequences, thinking, tool_choice: honoured now, never ignored."""
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "q"}]}
    r = httpx.post(gw.url + path, json={**body, field: value})
    assert r.status_code == 200, r.text
    name, sent = upstream
    assert fake_anthropic.last_request.body[name] == sent


@pytest.mark.parametrize(
    ("field", "value"),
    [("response_format", {"type": "json_object"}), ("functions", [{"name": "f"}])],
)
def test_options_with_no_translation_are_refused(gw, fake_anthropic, field, value):
    """JSON mode on an Anthropic upstream has no faithful translation: 422 naming it."""
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    r = httpx.post(gw.url + "/v1/chat/completions", json={**body, field: value})
    assert (r.status_code, err(r)["code"], err(r)["field"]) == (422, "untranslatable", field)
    assert fake_anthropic.requests == []


def test_options_that_ask_for_nothing_are_accepted(gw, fake_anthropic):
    body = {"model": "m", "messages": [{"role": "user", "content": "q"}]}
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={**body, "response_format": {"type": "text"}, "stop": None, "tool_choice": "none"},
    )
    assert r.status_code == 200, r.text
    r = httpx.post(gw.url + "/v1/messages", json={**body, "max_tokens": 10, "stop_sequences": []})
    assert r.status_code == 200, r.text


def test_unknown_route_and_method_are_json_errors(gw):
    r = httpx.get(gw.url + "/v1/nope")
    assert (r.status_code, err(r)["code"]) == (404, "not_found")
    r = httpx.get(gw.url + "/v1/chat")
    assert (r.status_code, err(r)["code"]) == (405, "method_not_allowed")


# JSON may escape a lone UTF-16 surrogate ("\ud83d": JavaScript cutting an emoji in half);
# it is not text and cannot be stored or sent on, so it is refused naming the field
LONE_SURROGATE = [
    ("/v1/chat", '{"prompt": "hi \\ud83d"}', "prompt"),
    ("/v1/chat", '{"prompt": "hi", "instructions": "be \\udc00 brief"}', "instructions"),
    (
        "/v1/messages",
        '{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi \\ud83d"}]}',
        "messages.0.content",
    ),
    (
        "/v1/messages",
        '{"model": "m", "max_tokens": 5, "system": "s \\ud83d",'
        ' "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}',
        "system",
    ),
    (
        "/v1/chat/completions",
        '{"model": "m", "messages": [{"role": "system", "content": "s"},'
        ' {"role": "user", "content": [{"type": "text", "text": "hi \\ud83d"}]}]}',
        "messages.1.content.0.text",
    ),
]


@pytest.mark.parametrize(("path", "body", "field"), LONE_SURROGATE)
def test_lone_surrogate_is_422_naming_the_field(gateway, fake_anthropic, path, body, field):
    r = httpx.post(
        gateway.url + path, content=body.encode(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, r.text
    e = err(r)
    assert (e["code"], e["field"]) == ("invalid_request", field)
    assert fake_anthropic.chat_requests() == []
    # a whole emoji (an escaped surrogate pair) is fine
    r = httpx.post(
        gateway.url + path,
        content=body.replace("\\ud83d", "\\ud83d\\ude00").replace("\\udc00", "\\ud83d\\ude00"),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text


def test_tool_names_too_long_to_record_are_refused(gw, fake_anthropic):
    """/v1/chat records `tools` with the turn; names the turn could not store are a 422
    before the LLM is asked (the turn would otherwise be answered and then lost)."""
    tools = [f"tool_{i:03d}_" + "x" * 40 for i in range(30)]  # ~1.5 kB of names
    r = httpx.post(gw.url + "/v1/chat", json={"prompt": "hi", "tools": tools})
    assert (r.status_code, err(r)["field"]) == (422, "tools")
    assert fake_anthropic.requests == []
