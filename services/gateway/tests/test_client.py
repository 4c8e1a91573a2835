"""mnemo_client (sync and async) against a real gateway and memory service."""

from __future__ import annotations

import re
import time
from pathlib import Path

import jwt
import pytest
from mnemo_client import (
    AsyncMnemoClient,
    AuthenticationError,
    GatewayUnreachable,
    InvalidRequest,
    MnemoClient,
    MnemoError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
)

SECRET = "test-secret-with-enough-entropy-0123456789"


def test_chat_plain_and_streamed(gateway, fake_anthropic):
    with MnemoClient(gateway.url, user="ada") as mnemo:
        fake_anthropic.enqueue_text("Hello Ada")
        reply = mnemo.chat("I moved to Lisbon", instructions="Be brief.")
        assert reply["response"] == "Hello Ada" and reply["user_id"] == "ada"
        assert reply["committed"] is True and reply["memory"] == "ok"
        assert "Be brief." in fake_anthropic.last_system_prompt()

        fake_anthropic.enqueue_text("You moved to Lisbon")
        events = list(mnemo.chat_stream("Where did I move?", thread_id=reply["thread_id"]))
        kinds = [e["event"] for e in events]
        assert kinds[0] == "start" and kinds[-1] == "done" and "delta" in kinds
        text = "".join(e["data"]["text"] for e in events if e["event"] == "delta")
        assert text == events[-1]["data"]["response"] == "You moved to Lisbon"
        assert events[0]["data"]["thread_id"] == reply["thread_id"]
        # the streamed turn continued the same thread: the first exchange is in its prompt
        assert "I moved to Lisbon" in fake_anthropic.last_system_prompt()
        detail = mnemo.get_thread(reply["thread_id"])
        assert [m["role"] for m in detail["messages"]] == ["user", "assistant"] * 2


def test_memories_preferences_threads_export_erase(gateway, fake_anthropic):
    mnemo = MnemoClient(gateway.url, user="bea")
    try:
        mem = mnemo.add_memory("I am allergic to peanuts", importance=9)
        assert mem["kind"] == "fact" and mem["importance"] == 9
        hits = mnemo.search_memories("peanut allergy", top_k=3)["results"]
        assert hits[0]["memory"]["id"] == mem["id"]
        fixed = mnemo.correct_memory(mem["id"], text="I am allergic to hazelnuts")
        assert fixed["text"] == "I am allergic to hazelnuts"
        assert [m["text"] for m in mnemo.list_memories(kinds=["fact"])["memories"]] == [
            "I am allergic to hazelnuts"
        ]
        assert mnemo.set_preference("units", "metric") == {"units": "metric"}
        assert mnemo.get_preferences() == {"units": "metric"}

        fake_anthropic.enqueue_text("ok")
        thread = mnemo.chat("hello", thread_id="th-bea")["thread_id"]
        assert [t["thread_id"] for t in mnemo.list_threads()["threads"]] == [thread]

        export = mnemo.export()
        assert export["user_id"] == "bea"
        assert "hazelnuts" in str(export["sections"])

        mnemo.delete_memory(mem["id"])
        with pytest.raises(NotFound) as missing:
            mnemo.delete_memory(mem["id"])
        assert (missing.value.status, missing.value.code) == (404, "not_found")
        assert mnemo.delete_preference("units") == {}
        mnemo.delete_thread(thread)
        assert mnemo.list_threads()["threads"] == []

        mnemo.set_preference("tone", "warm")
        receipt = mnemo.erase()
        assert receipt["user_id"] == "bea" and receipt["total"] >= 1 and receipt["pending"] == []
        assert mnemo.get_preferences() == {}
    finally:
        mnemo.close()


def test_errors_are_typed_with_the_api_code(gateway_factory, memory_server, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k-cy acme cy\n")
    gw = gateway_factory(
        memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
    )
    with MnemoClient(gw.url, api_key="k-cy") as cy:
        assert cy.get_preferences() == {}  # `me` = the key's user
        with pytest.raises(PermissionDenied) as denied:
            cy.get_preferences(user="dan")
        assert (denied.value.status, denied.value.code) == (403, "forbidden")
        with pytest.raises(InvalidRequest) as bad:
            cy.add_memory("")
        assert bad.value.status == 422 and bad.value.field == "text"
        with pytest.raises(InvalidRequest) as too_large:
            cy.add_memory("x" * 2_000_000)  # over GATEWAY__MAX_BODY_BYTES
        assert (too_large.value.status, too_large.value.code) == (413, "request_too_large")
        with pytest.raises(InvalidRequest) as bad_id:
            cy.delete_memory("bad id!")
        assert (bad_id.value.code, bad_id.value.field) == ("invalid_id", "memory_id")
    with MnemoClient(gw.url, api_key="k-wrong") as wrong, pytest.raises(AuthenticationError) as a:
        wrong.list_threads()
    assert a.value.code == "invalid_api_key"
    with MnemoClient(gw.url, api_key="") as anonymous, pytest.raises(AuthenticationError) as b:
        anonymous.list_threads()  # an empty key sends no credential (not MNEMO_API_KEY)
    assert b.value.code == "unauthenticated"

    off = gateway_factory(None)
    with MnemoClient(off.url) as mnemo, pytest.raises(ServiceUnavailable) as unavailable:
        mnemo.search_memories("x")
    assert (unavailable.value.status, unavailable.value.code) == (503, "memory_disabled")
    assert unavailable.value.retry_after_s is None

    with MnemoClient("http://127.0.0.1:1") as nowhere, pytest.raises(GatewayUnreachable) as gone:
        nowhere.list_threads()
    assert gone.value.url == "http://127.0.0.1:1" and "127.0.0.1:1" in str(gone.value)
    assert (gone.value.status, gone.value.code) == (0, "unreachable")


def test_url_and_key_from_the_environment(gateway_factory, memory_server, monkeypatch):
    gw = gateway_factory(memory_server.address, auth={"mode": "jwt", "jwt_secret": SECRET})
    token = jwt.encode({"sub": "eve", "exp": int(time.time()) + 600}, SECRET, "HS256")
    monkeypatch.setenv("MNEMO_URL", gw.url + "/")
    monkeypatch.setenv("MNEMO_API_KEY", token)
    with MnemoClient() as mnemo:
        assert mnemo.url == gw.url
        mnemo.set_preference("city", "Porto")
        assert mnemo.get_preferences(user="eve") == {"city": "Porto"}


async def test_async_client(gateway, fake_anthropic):
    async with AsyncMnemoClient(gateway.url, user="fin") as mnemo:
        mem = await mnemo.add_memory("I play the cello")
        hits = (await mnemo.search_memories("which instrument do I play"))["results"]
        assert mem["id"] in [h["memory"]["id"] for h in hits]
        assert (await mnemo.correct_memory(mem["id"], importance=8))["importance"] == 8
        assert await mnemo.set_preference("lang", "de") == {"lang": "de"}
        assert await mnemo.get_preferences() == {"lang": "de"}

        fake_anthropic.enqueue_text("Cello it is")
        reply = await mnemo.chat("what do I play?")
        assert reply["response"] == "Cello it is"
        assert "I play the cello" in fake_anthropic.last_system_prompt()
        fake_anthropic.enqueue_text("Still the cello")
        events = [e async for e in mnemo.chat_stream("and now?", thread_id=reply["thread_id"])]
        assert events[-1]["event"] == "done"
        assert events[-1]["data"]["response"] == "Still the cello"

        page = await mnemo.list_threads()
        assert [t["message_count"] for t in page["threads"]] == [4]
        assert (await mnemo.get_thread(reply["thread_id"]))["thread"]["message_count"] == 4
        assert "cello" in str((await mnemo.export())["sections"])
        await mnemo.delete_memory(mem["id"])
        with pytest.raises(NotFound):
            await mnemo.delete_memory(mem["id"])
        await mnemo.delete_thread(reply["thread_id"])
        assert await mnemo.delete_preference("lang") == {}
        receipt = await mnemo.erase()
        assert receipt["user_id"] == "fin"
        assert (await mnemo.list_memories())["memories"] == []
    async with AsyncMnemoClient("http://127.0.0.1:1") as nowhere:
        with pytest.raises(GatewayUnreachable):
            await nowhere.get_preferences()
        with pytest.raises(MnemoError):  # the base class catches every failure
            async for _ in nowhere.chat_stream("hi"):
                pass


def test_stream_errors_raise_before_any_event(gateway):
    with MnemoClient(gateway.url, user="bad:user") as mnemo, pytest.raises(InvalidRequest) as e:
        list(mnemo.chat_stream("hi"))
    assert e.value.code == "invalid_id"


def test_rate_limit_is_rate_limited_with_retry_after(
    gateway_factory, memory_server_factory, memory_settings, fake_anthropic
):
    server = memory_server_factory(memory_settings(rate_limit={"per_minute": 1}), longterm=None)
    gw = gateway_factory(server.address)
    with MnemoClient(gw.url, user="gus") as mnemo:
        fake_anthropic.enqueue_text("one")
        mnemo.chat("first")
        with pytest.raises(RateLimited) as limited:
            mnemo.chat("second")
    assert (limited.value.status, limited.value.code) == (429, "rate_limited")
    assert limited.value.retry_after_s is not None and limited.value.retry_after_s >= 1


def test_a_stream_failing_midway_raises_the_typed_error(gateway, fake_anthropic):
    fake_anthropic.enqueue_stream_failure("partial ", error_type="overloaded_error")
    seen: list[str] = []
    with MnemoClient(gateway.url, user="hal") as mnemo, pytest.raises(MnemoError) as failed:
        for event in mnemo.chat_stream("tell me"):
            seen.append(event["event"])
    assert seen[0] == "start" and "done" not in seen
    assert failed.value.status >= 500 and failed.value.code.startswith("llm_")


def _python_blocks(section: str) -> list[str]:
    text = (Path(__file__).parents[3] / "docs" / "api.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def test_the_docs_examples_run(gateway, fake_anthropic, monkeypatch, capsys):
    sync_example, async_example = _python_blocks("Python client (`mnemo_client`)")
    monkeypatch.setenv("MNEMO_URL", gateway.url)
    fake_anthropic.enqueue_text("Noted.")
    fake_anthropic.enqueue_text("Saturday: the coast.")
    exec(compile(sync_example.replace("http://127.0.0.1:8000", gateway.url), "api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Noted." in out and "Saturday: the coast." in out and "404 not_found" in out
    assert "Portuguese" in out
    fake_anthropic.enqueue_text("In Lisbon.")
    exec(compile(async_example, "api.md", "exec"), {})
    assert "In Lisbon." in capsys.readouterr().out
