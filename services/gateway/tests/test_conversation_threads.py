"""One conversation = one thread with no header (ADR 0011), through the real SDKs.

An SDK client resends the conversation and appends a message on every call; each call must
land in the same thread (same ``X-Mnemo-Thread-Id``, all turns stored there), and a
conversation with another opening, or another user's, must not.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest


def stored(gw, user: str, thread: str, headers: dict[str, str] | None = None) -> list[str]:
    r = httpx.get(f"{gw.url}/v1/users/{user}/threads/{thread}", headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    return [m["content"] for m in r.json()["messages"]]


def anthropic_call(client, user, system, messages, stream: bool) -> tuple[str, str]:
    """(answer, X-Mnemo-Thread-Id) of one Messages call."""
    kwargs = {"model": "m", "max_tokens": 64, "metadata": {"user_id": user}}
    if system is not None:
        kwargs["system"] = system
    if stream:
        with client.messages.stream(messages=messages, **kwargs) as s:
            text = "".join(s.text_stream)
            return text, s.response.headers["x-mnemo-thread-id"]
    raw = client.messages.with_raw_response.create(messages=messages, **kwargs)
    return raw.parse().content[0].text, raw.headers["x-mnemo-thread-id"]


def openai_call(client, user, system, messages, stream: bool) -> tuple[str, str]:
    """(answer, X-Mnemo-Thread-Id) of one Chat Completions call."""
    sent = ([{"role": "system", "content": system}] if system is not None else []) + messages
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-x", user=user, messages=sent, stream=stream
    )
    thread = raw.headers["x-mnemo-thread-id"]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        text = raw.parse().choices[0].message.content
    return text, thread


def sdk_client(kind: str, gw):
    if kind == "anthropic":
        return anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0), anthropic_call
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0), openai_call


def converse(kind, gw, user, prompts, *, system="Be brief.", stream=False):
    """Run one conversation, resending the history like an SDK app; returns
    (thread ids of every call, the conversation's messages)."""
    client, call = sdk_client(kind, gw)
    messages: list[dict[str, str]] = []
    threads = []
    for prompt in prompts:
        messages.append({"role": "user", "content": prompt})
        answer, thread = call(client, user, system, list(messages), stream)
        messages.append({"role": "assistant", "content": answer})
        threads.append(thread)
    return threads, [m["content"] for m in messages]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize("calls", [2, 10])
def test_a_conversation_is_one_thread(gateway, fake_anthropic, kind, stream, calls):
    prompts = [f"message {i} of the {kind} chat" for i in range(calls)]
    threads, conversation = converse(kind, gateway, "ada", prompts, stream=stream)
    assert len(set(threads)) == 1, threads
    assert threads[0].startswith("cv_")
    assert stored(gateway, "ada", threads[0]) == conversation
    assert len(conversation) == 2 * calls
    # the client's own history is what the model sees, as sent
    assert len(fake_anthropic.last_request.body["messages"]) == 2 * calls - 1


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_other_openings_and_other_users_are_other_threads(gateway, fake_anthropic, kind):
    first, _ = converse(kind, gateway, "ada", ["plan a trip", "to Lisbon"])
    other, _ = converse(kind, gateway, "ada", ["fix my bike", "the chain"])
    # the same first message under another system prompt is another conversation
    persona, _ = converse(kind, gateway, "ada", ["plan a trip"], system="You are a pirate.")
    no_system, _ = converse(kind, gateway, "ada", ["plan a trip"], system=None)
    bobs, _ = converse(kind, gateway, "bob", ["plan a trip", "to Lisbon"])
    ids = {first[0], other[0], persona[0], no_system[0], bobs[0]}
    assert len(ids) == 5, ids
    assert stored(gateway, "ada", first[0])[0] == "plan a trip"
    assert stored(gateway, "bob", bobs[0])[0] == "plan a trip"
    assert len(stored(gateway, "ada", first[0])) == 4  # nothing of the other conversations


def test_a_retried_first_call_continues_in_the_same_thread(gateway, fake_anthropic):
    """The retry of a first call is the same request: it must not fork the conversation."""
    client = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=2)
    fake_anthropic.enqueue_error(529)  # first attempt fails upstream: the SDK retries
    fake_anthropic.enqueue_text("Hello Ada.")
    body = {"model": "m", "max_tokens": 20, "metadata": {"user_id": "ada"}}
    raw = client.messages.with_raw_response.create(
        messages=[{"role": "user", "content": "hi"}], **body
    )
    assert raw.parse().content[0].text == "Hello Ada."
    thread = raw.headers["x-mnemo-thread-id"]
    fake_anthropic.enqueue_text("Fine, thanks.")
    again = client.messages.with_raw_response.create(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello Ada."},
            {"role": "user", "content": "how are you?"},
        ],
        **body,
    )
    assert again.headers["x-mnemo-thread-id"] == thread
    assert stored(gateway, "ada", thread) == ["hi", "Hello Ada.", "how are you?", "Fine, thanks."]


def test_the_opening_is_compared_in_canonical_form(gateway, fake_anthropic):
    """String or text-block content, and moved cache_control breakpoints, are the same
    conversation (SDK apps add cache breakpoints as the conversation grows)."""
    client = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)
    _, first = anthropic_call(
        client, "ada", "Be brief.", [{"role": "user", "content": "hello there"}], False
    )
    blocks = [{"type": "text", "text": "hello there", "cache_control": {"type": "ephemeral"}}]
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    _, second = anthropic_call(
        client,
        "ada",
        system,
        [
            {"role": "user", "content": blocks},
            {"role": "assistant", "content": "hi"},
            {"role": "user", "content": "more"},
        ],
        False,
    )
    assert first == second


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_the_thread_header_still_wins(gateway, fake_anthropic, kind):
    client, call = sdk_client(kind, gateway)
    client = client.with_options(default_headers={"X-Mnemo-Thread-Id": "trip-planning"})
    _, thread = call(client, "ada", "Be brief.", [{"role": "user", "content": "one"}], False)
    _, thread2 = call(client, "ada", None, [{"role": "user", "content": "two"}], True)
    assert thread == thread2 == "trip-planning"
    assert stored(gateway, "ada", "trip-planning")[::2] == ["one", "two"]


def test_tenants_with_the_same_user_and_opening_get_different_threads(
    gateway_factory, memory_server, fake_anthropic, tmp_path
):
    keys = tmp_path / "api-keys"
    keys.write_text("k-acme acme\nk-other other\n")
    gw = gateway_factory(
        memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
    )
    threads = []
    for key in ("k-acme", "k-other"):
        client = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
        _, thread = anthropic_call(client, "ada", "S", [{"role": "user", "content": "hi"}], False)
        threads.append(thread)
        assert stored(gw, "ada", thread, {"x-api-key": key}) == ["hi", "fake reply to: hi"]
    assert threads[0] != threads[1]
