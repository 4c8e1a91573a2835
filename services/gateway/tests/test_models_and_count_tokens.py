"""The drop-in surface beside chat, through the real SDKs: ``models.list()`` /
``models.retrieve()`` of both, ``messages.count_tokens()`` with the memory Mnemo adds, and
the auth modes on them and on the Responses API (test_responses_api.py)."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from mnemo_common.testing.fake_llm_extra import ANTHROPIC_MODELS, OPENAI_MODELS, fake_input_tokens

CONFIGURED = "claude-opus-4-8"  # LLMSettings.chat_model's default, listed by the fake


def clients(gw, key: str = "x"):
    return (
        anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0),
        openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0),
    )


def model_requests(fake) -> list[str]:
    return [r.path for r in fake.requests if r.path.startswith("/v1/models")]


# --- models ------------------------------------------------------------------------------


def test_both_sdks_list_the_configured_model_from_the_upstream(gateway_factory, fake_anthropic):
    gw = gateway_factory(None)
    a, o = clients(gw)
    page = a.models.list()
    assert [m.id for m in page.data] == [CONFIGURED]
    # forwarded: the upstream's own description of the model, in Anthropic's shape
    assert page.data[0].display_name == "Claude Opus 4.8 (fake)"
    assert page.data[0].max_input_tokens == 200_000 and page.has_more is False
    assert model_requests(fake_anthropic) == ["/v1/models?limit=1000"]
    assert a.models.retrieve(CONFIGURED).display_name == "Claude Opus 4.8 (fake)"
    listed = o.models.list()
    assert [(m.id, m.object) for m in listed.data] == [(CONFIGURED, "model")]
    assert listed.data[0].created == 1780272000  # 2026-06-01, from the upstream's created_at
    assert o.models.retrieve(CONFIGURED).owned_by == "anthropic"
    # another upstream model is not listed: the configured one answers every call
    with pytest.raises(anthropic.NotFoundError) as a_err:
        a.models.retrieve("claude-fake-other")
    assert a_err.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(openai.NotFoundError) as o_err:
        o.models.retrieve("claude-fake-other")
    assert o_err.value.code == "model_not_found" and o_err.value.param == "model"
    assert o_err.value.type == "invalid_request_error"


def test_with_pass_client_model_the_upstream_list_pages(gateway_factory, fake_anthropic):
    gw = gateway_factory(None, gateway={"pass_client_model": True})
    a, o = clients(gw)
    first = a.models.list(limit=2)
    assert [m.id for m in first.data] == [m["id"] for m in ANTHROPIC_MODELS[:2]]
    assert first.has_more is True
    # the SDK's auto-paging follows after_id to the end
    assert [m.id for m in a.models.list(limit=2)] == [m["id"] for m in ANTHROPIC_MODELS]
    assert a.models.retrieve("claude-fake-other").display_name == "Another fake model"
    before = a.models.list(before_id=ANTHROPIC_MODELS[2]["id"], limit=1)
    assert [m.id for m in before.data] == [ANTHROPIC_MODELS[1]["id"]] and before.has_more
    assert {m.id for m in o.models.list()} == {m["id"] for m in ANTHROPIC_MODELS}
    r = httpx.get(
        gw.url + "/v1/models",
        params={"after_id": "nope"},
        headers={"anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 404 and r.json()["error"]["field"] == "after_id"
    r = httpx.get(
        gw.url + "/v1/models", params={"limit": 0}, headers={"anthropic-version": "2023-06-01"}
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "limit"


def test_an_openai_compatible_upstream_list(gateway_factory, fake_openai):
    gw = gateway_factory(None, llm_fake=fake_openai, gateway={"pass_client_model": True})
    a, o = clients(gw)
    listed = o.models.with_raw_response.list()
    assert listed.headers["x-mnemo-models"] == "upstream"
    # same protocol: the upstream's entries as it sent them
    assert listed.http_response.json()["data"] == OPENAI_MODELS
    assert o.models.retrieve("fake-other-model").owned_by == "fake"
    # the Anthropic SDK gets them translated
    page = a.models.list()
    assert [m.id for m in page.data] == [m["id"] for m in OPENAI_MODELS]
    assert page.data[0].type == "model" and page.data[0].created_at.year == 2025
    assert [r.path for r in fake_openai.requests] == ["/v1/models", "/v1/models", "/v1/models"]


def test_without_an_upstream_list_the_configured_model(gateway_factory, fake_anthropic):
    offline = gateway_factory(None, llm_fake=None)
    a, o = clients(offline)
    assert [m.id for m in a.models.list().data] == ["offline"]
    assert [m.id for m in o.models.list().data] == ["offline"]
    gw = gateway_factory(None)
    a, o = clients(gw)
    fake_anthropic.enqueue_error(404)  # an upstream without the endpoint
    raw = a.models.with_raw_response.list()
    assert raw.headers["x-mnemo-models"] == "configured"
    assert [m.id for m in raw.parse().data] == [CONFIGURED]
    fake_anthropic.enqueue_error(500)
    assert [m.id for m in o.models.list().data] == [CONFIGURED]


# --- count_tokens ------------------------------------------------------------------------


def test_count_tokens_is_forwarded_with_the_memory_mnemo_adds(gateway, fake_anthropic):
    httpx.put(gateway.url + "/v1/users/kim/preferences/tone", json={"value": "terse"})
    a, _ = clients(gateway)
    request = {
        "model": "claude-whatever",
        "system": "Answer briefly.",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    }
    raw = a.messages.with_raw_response.count_tokens(
        **request, extra_body={"metadata": {"user_id": "kim"}}
    )
    sent = fake_anthropic.last_request
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.body["system"].startswith("Answer briefly.")
    assert "tone: terse" in sent.body["system"]  # what the real call would carry
    assert sent.body["model"] == CONFIGURED and "metadata" not in sent.body
    assert raw.parse().input_tokens == fake_input_tokens(sent.body)
    assert raw.headers["x-mnemo-token-count"] == "upstream"
    assert raw.headers["x-mnemo-memory"] == "ok"
    with_memory = raw.parse().input_tokens
    # another user has no such memory: the same request counts fewer tokens
    a.messages.count_tokens(**request, extra_body={"metadata": {"user_id": "lou"}})
    assert fake_anthropic.last_request.body["system"] == "Answer briefly."
    assert fake_input_tokens(fake_anthropic.last_request.body) < with_memory
    # a count is a preview: nothing stored, no thread made
    thread = raw.headers["x-mnemo-thread-id"]
    assert httpx.get(f"{gateway.url}/v1/users/kim/threads/{thread}").status_code == 404


def test_count_tokens_keeps_system_blocks_and_their_cache_control(gateway, fake_anthropic):
    httpx.put(gateway.url + "/v1/users/kim/preferences/tone", json={"value": "terse"})
    a, _ = clients(gateway)
    blocks = [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}]
    a.messages.count_tokens(
        model="m",
        system=blocks,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-Mnemo-User-Id": "kim"},
    )
    system = fake_anthropic.last_request.body["system"]
    assert system[0] == blocks[0]
    assert len(system) == 2 and "tone: terse" in system[1]["text"]


def test_count_tokens_is_estimated_without_an_anthropic_upstream(
    gateway_factory, memory_server, fake_openai
):
    gw = gateway_factory(memory_server.address, llm_fake=fake_openai)
    a, _ = clients(gw)
    request = {"model": "m", "messages": [{"role": "user", "content": "hello " * 40}]}
    plain = a.messages.with_raw_response.count_tokens(**request)
    assert plain.headers["x-mnemo-token-count"] == "estimated"
    httpx.put(gw.url + "/v1/users/local/preferences/style", json={"value": "x" * 400})
    more = a.messages.count_tokens(**request).input_tokens
    assert more >= plain.parse().input_tokens + 100  # the 400-character preference counts
    assert fake_openai.requests == []  # OpenAI has no count endpoint: nothing forwarded


def test_count_tokens_bad_input_is_a_4xx_naming_the_field(gateway_factory, fake_anthropic):
    gw = gateway_factory(None)
    url = gw.url + "/v1/messages/count_tokens"
    ok = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for body, field in (
        ({"messages": ok["messages"]}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        (dict(ok, metadata={"user_id": 7}), "metadata.user_id"),
    ):
        r = httpx.post(url, json=body)
        assert r.status_code == 422 and r.json()["error"]["field"] == field, r.text
    fake_anthropic.enqueue_error(400, message="messages: bad block")
    r = httpx.post(url, json=ok)  # the upstream's refusal comes back as it sent it
    assert r.status_code == 400 and r.json()["error"]["message"] == "messages: bad block"
    assert fake_anthropic.requests[-1].path == "/v1/messages/count_tokens"


# --- auth --------------------------------------------------------------------------------


def test_every_new_route_needs_a_credential(
    gateway_factory, memory_server, fake_anthropic, tmp_path
):
    keys = tmp_path / "api-keys"
    keys.write_text("k-acme acme\nk-carol acme carol\n")
    gw = gateway_factory(
        memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
    )
    a, o = clients(gw, key="wrong")
    with pytest.raises(anthropic.AuthenticationError):
        a.models.list()
    with pytest.raises(anthropic.AuthenticationError):
        a.models.retrieve(CONFIGURED)
    with pytest.raises(anthropic.AuthenticationError):
        a.messages.count_tokens(model="m", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        o.models.list()
    with pytest.raises(openai.AuthenticationError):
        o.responses.create(model="m", input="hi")
    for path, method in (
        ("/v1/models", "GET"),
        ("/v1/messages/count_tokens", "POST"),
        ("/v1/responses", "POST"),
    ):
        assert httpx.request(method, gw.url + path, json={}).status_code == 401
    assert fake_anthropic.requests == []
    a, o = clients(gw, key="k-carol")
    assert [m.id for m in a.models.list().data] == [CONFIGURED]
    assert [m.id for m in o.models.list().data] == [CONFIGURED]
    # a key pinned to carol may not count for another user
    with pytest.raises(anthropic.PermissionDeniedError):
        a.messages.count_tokens(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"X-Mnemo-User-Id": "dave"},
        )
    assert (
        a.messages.count_tokens(
            model="m", messages=[{"role": "user", "content": "hi"}]
        ).input_tokens
        > 0
    )


def test_count_tokens_does_not_use_up_the_rate_limit(
    gateway_factory, memory_server_factory, memory_settings, fake_anthropic
):
    mem = memory_server_factory(memory_settings(rate_limit={"per_minute": 2}))
    gw = gateway_factory(mem.address)
    a, _ = clients(gw)
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    for _ in range(4):
        assert (
            a.messages.with_raw_response.count_tokens(**request).headers["x-mnemo-memory"] == "ok"
        )
    for _ in range(2):  # the user's two turns a minute are all still there
        a.messages.create(max_tokens=5, **request)
    with pytest.raises(anthropic.RateLimitError):
        a.messages.create(max_tokens=5, **request)
