"""Chat turns against the real memory service (gRPC, Redis) and the fake LLM on the wire."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from mnemo_common.tokens import estimate_tokens
from mnemo_gateway.chat.prompt import HISTORY_TITLE, PREFERENCES_TITLE


def chat(gw, **body) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat", json=body, timeout=30)


def thread_messages(gw, user: str, thread_id: str) -> list[dict]:
    r = httpx.get(f"{gw.url}/v1/users/{user}/threads/{thread_id}", timeout=10)
    if r.status_code == 404:
        return []
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def test_new_thread_then_history_in_the_system_prompt(gateway, fake_anthropic):
    fake_anthropic.enqueue_text("Nice to meet you, Ada.")
    r = chat(
        gateway,
        prompt="Hi, I am Ada.",
        user_id="ada",
        instructions="You are a helpful DevOps assistant.",
    )
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["response"] == "Nice to meet you, Ada."
    assert first["memory"] == "ok" and first["committed"] is True
    thread = first["thread_id"]
    assert r.headers["x-mnemo-thread-id"] == thread

    r = chat(gateway, prompt="What is my name?", user_id="ada", thread_id=thread)
    assert r.status_code == 200
    system = fake_anthropic.last_system_prompt()
    assert system.startswith("You are a helpful assistant.")
    assert HISTORY_TITLE in system
    assert "user: Hi, I am Ada." in system
    assert "assistant: Nice to meet you, Ada." in system
    # memory goes into the instructions, never as fake messages
    assert fake_anthropic.last_request.body["messages"] == [
        {"role": "user", "content": "What is my name?"}
    ]
    assert [m["content"] for m in thread_messages(gateway, "ada", thread)] == [
        "Hi, I am Ada.",
        "Nice to meet you, Ada.",
        "What is my name?",
        r.json()["response"],
    ]


def test_preferences_reach_new_threads_of_that_user_only(gateway, fake_anthropic):
    r = httpx.put(gateway.url + "/v1/users/ada/preferences/language", json={"value": "Python"})
    assert r.status_code == 200 and r.json()["values"] == {"language": "Python"}
    assert chat(gateway, prompt="hello", user_id="ada").status_code == 200
    assert PREFERENCES_TITLE in fake_anthropic.last_system_prompt()
    assert "language: Python" in fake_anthropic.last_system_prompt()
    assert chat(gateway, prompt="hello", user_id="bob").status_code == 200
    assert "Python" not in fake_anthropic.last_system_prompt()


def test_streamed_chat_is_stored_after_the_stream(gateway, fake_anthropic):
    fake_anthropic.enqueue_text("streamed words arrive one by one")
    events = []
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat",
        json={"prompt": "stream please", "user_id": "sam", "stream": True},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        thread = r.headers["x-mnemo-thread-id"]
        for line in r.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
    assert events[0] == "start" and events[-1] == "done"
    assert events.count("delta") > 1
    assert [m["content"] for m in thread_messages(gateway, "sam", thread)] == [
        "stream please",
        "streamed words arrive one by one",
    ]


def test_anthropic_sdk_thread_header_and_own_messages(gateway, fake_anthropic):
    client = anthropic.Anthropic(
        base_url=gateway.url,
        api_key="x",
        max_retries=0,
        default_headers={"X-Mnemo-Thread-Id": "th-sdk-1"},
    )
    httpx.put(gateway.url + "/v1/users/kim/preferences/tone", json={"value": "terse"})
    fake_anthropic.enqueue_text("Paris.")
    msg = client.messages.create(
        model="claude-x",
        max_tokens=50,
        system="Answer briefly.",
        metadata={"user_id": "kim"},
        messages=[
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Which France?"},
            {"role": "user", "content": "The country."},
        ],
    )
    assert msg.content[0].text == "Paris."
    sent = fake_anthropic.last_request.body
    assert [m["content"] for m in sent["messages"]] == [
        "Capital of France?",
        "Which France?",
        "The country.",
    ]
    system = fake_anthropic.last_system_prompt()
    assert system.startswith("Answer briefly.") and "tone: terse" in system
    assert HISTORY_TITLE not in system  # the client sends its own history
    assert [m["content"] for m in thread_messages(gateway, "kim", "th-sdk-1")] == [
        "The country.",
        "Paris.",
    ]

    fake_anthropic.enqueue_text("It is 2 hours ahead.")
    with client.messages.stream(
        model="m",
        max_tokens=50,
        metadata={"user_id": "kim"},
        messages=[{"role": "user", "content": "Time there?"}],
    ) as s:
        assert "".join(s.text_stream) == "It is 2 hours ahead."
    assert len(thread_messages(gateway, "kim", "th-sdk-1")) == 4


def test_openai_sdk_user_field_and_stream(gateway, fake_anthropic):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    httpx.put(gateway.url + "/v1/users/lee/preferences/units", json={"value": "metric"})
    fake_anthropic.enqueue_text("It is 20 degrees.")
    resp = client.chat.completions.with_raw_response.create(
        model="gpt-x", user="lee", messages=[{"role": "user", "content": "Weather?"}]
    )
    thread = resp.headers["x-mnemo-thread-id"]
    assert resp.parse().choices[0].message.content == "It is 20 degrees."
    assert "units: metric" in fake_anthropic.last_system_prompt()

    fake_anthropic.enqueue_text("Tomorrow: 22 degrees.")
    stream = client.chat.completions.create(
        model="gpt-x",
        user="lee",
        stream=True,
        extra_headers={"X-Mnemo-Thread-Id": thread},
        messages=[{"role": "user", "content": "Tomorrow?"}],
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == (
        "Tomorrow: 22 degrees."
    )
    assert [m["content"] for m in thread_messages(gateway, "lee", thread)] == [
        "Weather?",
        "It is 20 degrees.",
        "Tomorrow?",
        "Tomorrow: 22 degrees.",
    ]


def test_retry_with_the_same_idempotency_key_is_stored_once(gateway, fake_anthropic):
    """A retried turn gets the stored answer back (no second LLM call, no second answer)."""
    body = {"prompt": "only once", "user_id": "ida", "thread_id": "th-idem"}
    fake_anthropic.enqueue_text("The first answer.")
    fake_anthropic.enqueue_text("A different second answer.")
    key = {"Idempotency-Key": "k-1"}
    first = httpx.post(gateway.url + "/v1/chat", json=body, headers=key)
    again = httpx.post(gateway.url + "/v1/chat", json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.json()["response"] == again.json()["response"] == "The first answer."
    assert again.json()["committed"] is True
    with httpx.stream(
        "POST", gateway.url + "/v1/chat", json={**body, "stream": True}, headers=key
    ) as s:
        assert "The first answer." in s.read().decode()
    assert len(fake_anthropic.chat_requests()) == 1
    assert [m["content"] for m in thread_messages(gateway, "ida", "th-idem")] == [
        "only once",
        "The first answer.",
    ]
    # the same key for another message is a client bug: refused, nothing stored
    r = httpx.post(gateway.url + "/v1/chat", json={**body, "prompt": "other"}, headers=key)
    assert r.status_code == 409 and r.json()["error"]["code"] == "idempotency_conflict"
    assert len(thread_messages(gateway, "ida", "th-idem")) == 2
    # through the Anthropic SDK, whose retries send the same Idempotency-Key
    client = anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)
    reply = client.messages.create(
        model="claude-opus-4-8",
        max_tokens=100,
        metadata={"user_id": "ida"},
        messages=[{"role": "user", "content": "only once"}],
        extra_headers={"X-Mnemo-Thread-Id": "th-idem", **key},
    )
    assert reply.content[0].text == "The first answer."
    assert len(fake_anthropic.chat_requests()) == 1


@pytest.mark.parametrize("status", [429, 529])
def test_failed_llm_call_stores_nothing(gateway_factory, memory_server, fake_anthropic, status):
    gw = gateway_factory(memory_server.address, llm={"max_retries": 0})
    fake_anthropic.enqueue_error(status)
    r = chat(gw, prompt="lost words", user_id="fay", thread_id="th-fail")
    assert r.status_code == 503
    fake_anthropic.enqueue_stream_failure("half an ans")
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat",
        json={"prompt": "lost too", "user_id": "fay", "thread_id": "th-fail", "stream": True},
    ) as s:
        assert "event: error" in s.read().decode()
    assert thread_messages(gw, "fay", "th-fail") == []


def test_llm_timeout_stores_nothing(gateway_factory, memory_server, fake_anthropic):
    gw = gateway_factory(memory_server.address, llm={"max_retries": 0, "timeout_s": 0.5})
    fake_anthropic.set_delay(3)
    r = chat(gw, prompt="slow", user_id="tim", thread_id="th-slow")
    assert r.status_code == 504
    assert thread_messages(gw, "tim", "th-slow") == []


def test_rate_limit_is_429_with_retry_after(
    gateway_factory, memory_server_factory, memory_settings, fake_anthropic
):
    mem = memory_server_factory(memory_settings(rate_limit={"per_minute": 2}))
    gw = gateway_factory(mem.address)
    assert chat(gw, prompt="1", user_id="rl").status_code == 200
    assert chat(gw, prompt="2", user_id="rl").status_code == 200
    calls = len(fake_anthropic.requests)
    r = chat(gw, prompt="3", user_id="rl")
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["retry-after"]) >= 1
    assert len(fake_anthropic.requests) == calls  # the LLM was not called


def _error(r: httpx.Response, name: str) -> tuple[int, dict]:
    """Status and error body with the thread/memory name and the request id taken out."""
    body = {k: v for k, v in r.json()["error"].items() if k != "request_id"}
    return r.status_code, json.loads(json.dumps(body).replace(name, "NAME"))


def test_thread_ids_are_per_user_and_foreign_ones_answer_like_missing(gateway, fake_anthropic):
    """Two users can both call their thread `trip-planning`; another user's thread (and
    memory) answers exactly like one that does not exist, on every thread/memory route."""
    r = chat(gateway, prompt="alice plans Lisbon", user_id="alice", thread_id="trip-planning")
    assert r.status_code == 200 and r.json()["committed"] is True
    r = chat(gateway, prompt="bob plans Oslo", user_id="bob", thread_id="trip-planning")
    assert r.status_code == 200 and r.json()["committed"] is True
    assert "Lisbon" not in fake_anthropic.last_system_prompt()  # bob's own, new thread
    assert thread_messages(gateway, "alice", "trip-planning")[0]["content"] == "alice plans Lisbon"
    assert thread_messages(gateway, "bob", "trip-planning")[0]["content"] == "bob plans Oslo"
    mem = httpx.post(
        f"{gateway.url}/v1/users/alice/memories", json={"text": "Alice keeps bees"}, timeout=30
    )
    assert mem.status_code == 201, mem.text
    mid = mem.json()["id"]
    base = f"{gateway.url}/v1/users/carol"
    for method, path, body in (
        ("GET", "/threads/{name}", None),
        ("POST", "/threads/{name}/close", None),
        ("DELETE", "/threads/{name}", None),
        ("PATCH", "/memories/{name}", {"text": "changed"}),
        ("DELETE", "/memories/{name}", None),
    ):
        name = "trip-planning" if "threads" in path else mid
        missing = "never-made" if "threads" in path else "f" + "0" * 24
        foreign = httpx.request(method, base + path.format(name=name), json=body, timeout=30)
        absent = httpx.request(method, base + path.format(name=missing), json=body, timeout=30)
        assert foreign.status_code == 404, (method, path, foreign.text)
        assert _error(foreign, name) == _error(absent, missing), (method, path)
    # nothing of alice's changed
    assert len(thread_messages(gateway, "alice", "trip-planning")) == 2
    listed = httpx.get(f"{gateway.url}/v1/users/alice/memories").json()["memories"]
    assert [(m["id"], m["text"]) for m in listed] == [(mid, "Alice keeps bees")]


def test_an_email_address_is_a_user_id(gateway, fake_anthropic):
    """OpenAI's `user` field usually carries an e-mail address: it names the user as is."""
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    fake_anthropic.enqueue_text("Noted.")
    client.chat.completions.create(
        model="gpt-4o",
        user="ada.lovelace+work@example.com",
        extra_headers={"X-Mnemo-Thread-Id": "th-mail"},
        messages=[{"role": "user", "content": "I live in London."}],
    )
    assert [
        m["content"] for m in thread_messages(gateway, "ada.lovelace+work@example.com", "th-mail")
    ] == [
        "I live in London.",
        "Noted.",
    ]


def test_long_and_multibyte_turns_are_stored_or_refused_never_lost(
    gateway_factory, memory_server_factory, memory_settings, fake_anthropic
):
    """The memory service stores messages up to MEMORY__MAX_MESSAGE_BYTES: a longer answer
    is stored truncated (not dropped with the user's message), a longer prompt is a 413."""
    limit = {"max_message_bytes": 1024}
    memory = memory_server_factory(memory_settings(memory=limit))
    gw = gateway_factory(memory.address, memory=limit)
    fake_anthropic.enqueue_text("word " * 400)  # 2000 bytes
    r = chat(gw, prompt="Tell me a long story.", user_id="lou", thread_id="th-long")
    assert r.status_code == 200 and r.json()["committed"] is True
    assert r.json()["response"] == "word " * 400  # the client gets all of it
    stored = thread_messages(gw, "lou", "th-long")
    assert stored[0]["content"] == "Tell me a long story."
    assert stored[1]["content"].startswith("word word")
    assert stored[1]["content"].endswith("[… answer truncated for memory: 2000 bytes]")
    assert len(stored[1]["content"].encode()) <= 1024
    # 400 characters, 1200 bytes: within GATEWAY__MAX_PROMPT_CHARS, over the byte limit
    r = chat(gw, prompt="語" * 400, user_id="lou", thread_id="th-long")
    assert r.status_code == 413 and r.json()["error"]["code"] == "prompt_too_large"
    assert r.json()["error"]["field"] == "prompt"
    assert len(thread_messages(gw, "lou", "th-long")) == 2


@pytest.mark.parametrize("budget", [8, 30, 80, 200])
def test_memory_in_the_prompt_never_exceeds_the_turn_budget(
    gateway_factory, memory_server, fake_anthropic, budget
):
    """The memory service fits the turn (budget.py); the sections the gateway renders
    into the system prompt cost no more than it counted, whatever the budget."""
    gw = gateway_factory(memory_server.address, gateway={"context_token_budget": budget})
    user = f"budget{budget}"
    for text in [f"User's hobby number {i} is collecting {'old ' * i}stamps" for i in range(8)]:
        r = httpx.post(f"{gw.url}/v1/users/{user}/memories", json={"text": text}, timeout=30)
        assert r.status_code in (200, 201), r.text
    for key, value in (("a", "x" * 13), ("tone", "terse " * 5)):
        put = httpx.put(f"{gw.url}/v1/users/{user}/preferences/{key}", json={"value": value})
        assert put.status_code == 200, put.text
    fake_anthropic.enqueue_text("Noted.")
    first = chat(gw, prompt="I collect stamps, " + "tell me more " * 6, user_id=user)
    assert first.status_code == 200, first.text
    fake_anthropic.enqueue_text("Stamps, mostly.")
    r = chat(gw, prompt="what are my hobbies?", user_id=user, thread_id=first.json()["thread_id"])
    assert r.status_code == 200, r.text
    system = fake_anthropic.last_system_prompt()
    instructions = "You are a helpful assistant."
    assert system.startswith(instructions)
    memory_part = system[len(instructions) :]
    if budget >= 30:
        assert memory_part  # something fitted: the test measures a real prompt
    assert estimate_tokens(memory_part) <= budget
