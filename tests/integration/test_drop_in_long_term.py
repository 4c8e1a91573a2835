"""Cross-service, drop-in endpoints: a fact told through one SDK conversation is in the
system prompt the upstream receives in a later conversation of the same user (both SDKs,
both upstreams), never another user's."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from mnemo_common.testing.procs import wait_for
from mnemo_gateway.chat.prompt import MEMORIES_TITLE


def facts(gw, user: str) -> list[str]:
    r = httpx.get(f"{gw.url}/v1/users/{user}/memories", timeout=30)
    assert r.status_code == 200, r.text
    return [m["text"] for m in r.json()["memories"]]


def test_drop_in_fact_is_recalled_in_a_later_conversation_for_that_user_only(
    platform, gateway_factory, fake_anthropic, fake_openai
):
    gw, worker = platform
    tools = [{"name": "noop", "input_schema": {"type": "object", "properties": {}}}]
    a = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    for text in ("Hello! I live in Lisbon.", "I work as a nurse."):
        a.messages.create(
            model="m",
            max_tokens=50,
            tools=tools,
            metadata={"user_id": "ada"},
            messages=[{"role": "user", "content": text}],
            extra_headers={"X-Mnemo-Thread-Id": "th-ada-1"},
        )
    try:
        wait_for(lambda: any("Lisbon" in f for f in facts(gw, "ada")), 90, "fact extraction")
    except TimeoutError:
        pytest.fail("no fact extracted; worker log:\n" + worker.log_tail())

    with a.messages.stream(
        model="m",
        max_tokens=50,
        metadata={"user_id": "ada"},
        messages=[{"role": "user", "content": "Which city do I live in?"}],
    ) as s:
        s.get_final_message()
    system = fake_anthropic.last_system_prompt()
    assert "Lisbon" in system.split(MEMORIES_TITLE, 1)[1]

    on_openai = gateway_factory(gw.settings.gateway.memory_addr, llm_fake=fake_openai)
    o = openai.OpenAI(base_url=on_openai.url + "/v1", api_key="k", max_retries=0)
    o.chat.completions.create(
        model="m", user="ada", messages=[{"role": "user", "content": "Which city do I live in?"}]
    )
    assert "Lisbon" in fake_openai.last_system_prompt()
    o.chat.completions.create(
        model="m", user="bob", messages=[{"role": "user", "content": "Which city do I live in?"}]
    )
    assert "Lisbon" not in fake_openai.last_system_prompt()
    a.messages.create(
        model="m",
        max_tokens=50,
        metadata={"user_id": "bob"},
        messages=[{"role": "user", "content": "Which city do I live in?"}],
    )
    assert "Lisbon" not in fake_anthropic.last_system_prompt()
