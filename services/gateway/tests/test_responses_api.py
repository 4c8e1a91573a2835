"""``POST /v1/responses`` through the real ``openai`` SDK: text turns with memory, plain and
streamed, one thread per conversation, and what Mnemo cannot honour refused by name."""

from __future__ import annotations

import httpx
import openai
import pytest


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


def stored(gw, user: str, thread: str) -> list[str]:
    r = httpx.get(f"{gw.url}/v1/users/{user}/threads/{thread}", timeout=10)
    assert r.status_code == 200, r.text
    return [m["content"] for m in r.json()["messages"]]


def test_a_response_with_memory_is_committed(gateway, client, fake_anthropic):
    httpx.put(gateway.url + "/v1/users/ada/preferences/tone", json={"value": "terse"})
    fake_anthropic.enqueue_text("Lisbon is lovely.")
    raw = client.responses.with_raw_response.create(
        model="gpt-x", instructions="Be brief.", input="Where should I travel?", user="ada"
    )
    resp = raw.parse()
    assert resp.output_text == "Lisbon is lovely."
    assert resp.status == "completed" and resp.usage.output_tokens > 0
    system = fake_anthropic.last_system_prompt()
    assert system.startswith("Be brief.") and "tone: terse" in system
    assert fake_anthropic.last_user_message() == "Where should I travel?"
    thread = raw.headers["x-mnemo-thread-id"]
    assert stored(gateway, "ada", thread) == ["Where should I travel?", "Lisbon is lovely."]
    # another user's call carries none of ada's memory
    client.responses.create(model="gpt-x", input="Where should I travel?", user="bob")
    assert "terse" not in fake_anthropic.last_system_prompt()


def test_a_streamed_conversation_is_one_thread(gateway, client, fake_anthropic):
    items: list[dict[str, str]] = []
    threads = []
    for prompt in ("first question", "second question", "third question"):
        items.append({"role": "user", "content": prompt})
        fake_anthropic.enqueue_text(f"answer to the {prompt} in several words")
        raw = client.responses.with_raw_response.create(
            model="gpt-x", input=list(items), user="cy", stream=True
        )
        threads.append(raw.headers["x-mnemo-thread-id"])
        events = list(raw.parse())
        kinds = [e.type for e in events]
        assert kinds[:4] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
        ]
        assert kinds[-1] == "response.completed" and kinds.count("response.output_text.delta") > 1
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == events[-1].response.output_text
        items.append({"role": "assistant", "content": text})
    assert len(set(threads)) == 1
    assert stored(gateway, "cy", threads[0]) == [i["content"] for i in items]


def test_the_sdk_stream_helper_accumulates_the_answer(gateway, client, fake_anthropic):
    fake_anthropic.enqueue_text("one two three four")
    with client.responses.stream(
        model="gpt-x",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "count"}]}],
        max_output_tokens=50,
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "one two three four" == final.output_text
    assert fake_anthropic.last_request.body["max_tokens"] == 50


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"store": False}, "store"),
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"text": {"format": {"type": "json_object"}}}, "text"),
        ({"reasoning": {"effort": "high"}}, "reasoning"),
        ({"top_p": 0.5}, "top_p"),
        ({"metadata": {"k": "v"}}, "metadata"),
        (
            {"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]},
            "input.0.type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input.0.content",
        ),
        ({"input": []}, "input"),
        ({"temperature": 5}, "temperature"),
        ({"user": 42}, "user"),
        ({"safety_identifier": ["x"]}, "safety_identifier"),
    ],
)
def test_what_mnemo_cannot_honour_is_refused_by_name(gateway, fake_anthropic, extra, field):
    body = {"model": "gpt-x", "input": "hi", **extra}
    r = httpx.post(gateway.url + "/v1/responses", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert fake_anthropic.requests == []


def test_an_answer_cut_at_max_output_tokens_is_incomplete(gateway, client, fake_anthropic):
    fake_anthropic.enqueue_text("cut short", stop_reason="max_tokens")
    resp = client.responses.create(model="gpt-x", input="long story", max_output_tokens=3)
    assert resp.status == "incomplete"
    assert resp.incomplete_details.reason == "max_output_tokens"
    fake_anthropic.enqueue_text("cut short again", stop_reason="max_tokens")
    events = list(client.responses.create(model="gpt-x", input="again", stream=True))
    assert events[-1].type == "response.incomplete"


def test_an_openai_compatible_upstream_answers_through_chat_completions(
    gateway_factory, memory_server, fake_openai
):
    gw = gateway_factory(memory_server.address, llm_fake=fake_openai)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
    fake_openai.enqueue_text("from the compatible server")
    resp = client.responses.create(model="gpt-x", instructions="Sys.", input="hello")
    assert resp.output_text == "from the compatible server"
    assert fake_openai.last_request.path == "/v1/chat/completions"
    assert fake_openai.last_system_prompt() == "Sys."
