"""Cross-service: gateway + memory service + worker process + Redis + Chroma + fake LLM.

A fact told in one thread reaches the system prompt the LLM receives in a new thread of
the same user — and never another user's.
"""

from __future__ import annotations

import httpx
import pytest
from mnemo_common.testing.procs import wait_for
from mnemo_gateway.chat.prompt import MEMORIES_TITLE


def chat(gw, user: str, thread: str, prompt: str) -> httpx.Response:
    r = httpx.post(
        gw.url + "/v1/chat",
        timeout=60,
        json={"prompt": prompt, "user_id": user, "thread_id": thread},
    )
    assert r.status_code == 200, r.text
    assert r.json()["memory"] == "ok"
    return r


def facts(gw, user: str) -> list[str]:
    r = httpx.get(f"{gw.url}/v1/users/{user}/memories", timeout=30)
    assert r.status_code == 200, r.text
    # message memories (the chat's own words) are tested in test_message_memories.py
    return [m["text"] for m in r.json()["memories"] if m["kind"] != "message"]


def test_fact_from_one_thread_is_recalled_in_a_new_thread_for_that_user_only(
    platform, fake_anthropic
):
    gw, worker = platform
    chat(gw, "ada", "th-one", "Hello! I live in Lisbon.")
    try:
        wait_for(
            lambda: any("Lisbon" in f for f in facts(gw, "ada")),
            90,
            "the worker to extract the fact",
        )
    except TimeoutError:
        pytest.fail("no fact extracted; worker log:\n" + worker.log_tail())

    chat(gw, "ada", "th-two", "Which city do I live in?")
    system = fake_anthropic.last_system_prompt()
    assert MEMORIES_TITLE in system
    assert "Lisbon" in system.split(MEMORIES_TITLE, 1)[1]
    assert fake_anthropic.last_request.body["messages"] == [
        {"role": "user", "content": "Which city do I live in?"}
    ]

    chat(gw, "bob", "th-bob", "Which city do I live in?")
    assert "Lisbon" not in fake_anthropic.last_system_prompt()
    assert facts(gw, "bob") == []


def test_memory_control_endpoints_see_edit_delete_export_erase(platform, fake_anthropic):
    gw, _ = platform
    base = gw.url + "/v1/users/eve"
    r = httpx.post(base + "/memories", json={"text": "Eve keeps bees", "importance": 8}, timeout=30)
    assert r.status_code == 201, r.text
    mem = r.json()
    assert (mem["text"], mem["kind"], mem["importance"]) == ("Eve keeps bees", "fact", 8)

    r = httpx.get(base + "/memories/search", params={"q": "beekeeping hobby"}, timeout=30)
    assert r.status_code == 200
    assert r.json()["results"][0]["memory"]["id"] == mem["id"]

    r = httpx.patch(f"{base}/memories/{mem['id']}", json={"text": "Eve keeps two hives"})
    assert r.status_code == 200 and r.json()["text"] == "Eve keeps two hives"
    assert facts(gw, "eve") == ["Eve keeps two hives"]

    chat(gw, "eve", "th-eve", "What do I keep?")
    assert "Eve keeps two hives" in fake_anthropic.last_system_prompt()
    httpx.put(base + "/preferences/tone", json={"value": "warm"})

    r = httpx.get(base + "/export", timeout=30)
    assert r.status_code == 200
    exported = r.text
    assert "Eve keeps two hives" in exported and "What do I keep?" in exported
    assert "warm" in exported

    r = httpx.delete(f"{base}/memories/{mem['id']}")
    assert r.status_code == 200 and r.json() == {"deleted": True, "messages_deleted": None}
    assert facts(gw, "eve") == []
    r = httpx.delete(f"{base}/memories/{mem['id']}")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")

    r = httpx.delete(base, timeout=30)
    assert r.status_code == 200
    receipt = r.json()
    assert receipt["user_id"] == "eve" and receipt["total"] > 0
    assert receipt["counts"].get("threads", 0) >= 1
    assert httpx.get(base + "/threads").json()["threads"] == []
    assert httpx.get(base + "/preferences").json()["values"] == {}
