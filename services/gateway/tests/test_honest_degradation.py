"""``X-Mnemo-Memory`` never says ``ok`` for a turn that lacked memory or was not stored —
on every chat endpoint, streamed or not (issue 11).

Streams send their headers before the commit: the final status closes the stream (the
``done`` event of /v1/chat, ``event: mnemo`` of /v1/messages, an SSE comment of
/v1/chat/completions), and the real SDKs still parse those streams.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2
from mnemo_common.testing.procs import free_port, wait_for

CASES = [(ep, stream) for ep in ("chat", "messages", "completions") for stream in (False, True)]
CASES.append(("responses", False))  # its stream carries no final memory status
UNSTORED = "mnemo_gateway_turns_unstored_total"


def metric(gw: Any, name: str) -> float:
    total = 0.0
    for line in httpx.get(gw.url + "/metrics").text.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


def send(gw: Any, endpoint: str, stream: bool, prompt: str, thread: str) -> httpx.Response:
    headers = {"X-Mnemo-Thread-Id": thread, "X-Mnemo-User-Id": "hana"}
    if endpoint == "chat":
        path = "/v1/chat"
        body: dict[str, Any] = {"prompt": prompt, "thread_id": thread, "user_id": "hana"}
    elif endpoint == "messages":
        path = "/v1/messages"
        body = {"model": "m", "max_tokens": 64, "messages": [{"role": "user", "content": prompt}]}
    elif endpoint == "responses":
        path = "/v1/responses"
        body = {"model": "m", "input": prompt}
    else:
        path = "/v1/chat/completions"
        body = {"model": "m", "messages": [{"role": "user", "content": prompt}]}
    r = httpx.post(gw.url + path, json={**body, "stream": stream}, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return r


def outcome(r: httpx.Response, endpoint: str, stream: bool) -> dict[str, Any]:
    """What the client is told about memory once the turn is done."""
    if not stream:
        doc = r.json() if endpoint == "chat" else {}
        return {
            "memory": r.headers["x-mnemo-memory"],
            "missing": r.headers.get("x-mnemo-memory-missing", ""),
            "committed": doc.get("committed"),
        }
    frames = [f for f in r.text.split("\n\n") if f.strip()]
    if endpoint == "completions":
        (comment,) = [f for f in frames if f.startswith(": mnemo ")]
        doc = json.loads(comment[len(": mnemo ") :])
    else:
        name = "done" if endpoint == "chat" else "mnemo"
        (frame,) = [f for f in frames if f.startswith(f"event: {name}\n")]
        doc = json.loads(frame.split("data: ", 1)[1])
    return {**doc, "missing": ",".join(doc["missing"])}


def stored_messages(gw: Any, thread: str) -> list[str]:
    r = httpx.get(gw.url + f"/v1/users/hana/threads/{thread}")
    return [] if r.status_code == 404 else [m["content"] for m in r.json()["messages"]]


def test_vector_store_down_every_endpoint_says_degraded_but_stores(
    memory_server_factory, memory_settings, gateway_factory
):
    """PrepareTurn answered without recall (``degraded: ["vector_store"]``): the answers say
    degraded and name it, and the turns are still stored."""
    settings = memory_settings(
        chromadb_url=f"http://127.0.0.1:{free_port()}",  # no Chroma there
        shortterm={"recall_timeout_s": 1.0},
    )
    server = memory_server_factory(settings)
    gw = gateway_factory(server.address)
    for endpoint, stream in CASES:
        thread = f"vs-{endpoint}-{int(stream)}"
        r = send(gw, endpoint, stream, "what do you recall?", thread)
        assert r.headers["x-mnemo-memory"] == "degraded", (endpoint, stream)
        out = outcome(r, endpoint, stream)
        assert out["memory"] == "degraded" and out["missing"] == "vector_store", out
        if out.get("committed") is not None:
            assert out["committed"] is True
        assert stored_messages(gw, thread)[0] == "what do you recall?"


def test_the_sdks_read_the_streams_that_carry_the_final_status(memory_server, gateway_factory):
    gw = gateway_factory(memory_server.address)
    client = anthropic.Anthropic(
        base_url=gw.url,
        api_key="unused",
        max_retries=0,
        default_headers={"X-Mnemo-Thread-Id": "sdk-a", "X-Mnemo-User-Id": "hana"},
    )
    with client.messages.stream(
        model="m", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    ) as s:
        assert s.get_final_text() == "fake reply to: hello"
    oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    chunks = list(
        oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            extra_headers={"X-Mnemo-Thread-Id": "sdk-o"},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "fake reply to: hi"
    assert stored_messages(gw, "sdk-a") == ["hello", "fake reply to: hello"]


@pytest.fixture
def redis_memory(fresh_redis, memory_server_factory, memory_settings):
    settings = memory_settings(redis_url=fresh_redis.url, rate_limit={"enabled": False})
    return fresh_redis, memory_server_factory(settings, longterm=None)


def serving(server: Any) -> bool:
    try:
        reply = server.health_stub().Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def test_redis_killed_during_the_llm_call_every_endpoint_says_not_stored(
    redis_memory, gateway_factory, fake_anthropic
):
    """Redis dies after PrepareTurn, while the LLM answers: the commit fails and every
    endpoint says so (today: 200 with ``X-Mnemo-Memory: ok``, the turn silently lost)."""
    redis, server = redis_memory
    gw = gateway_factory(server.address, gateway={"memory_timeout_s": 5.0})

    def kill_redis_then_answer(body: Any) -> str:
        redis.kill()  # the LLM call is in flight: PrepareTurn has answered
        return "answered while redis died"

    before = metric(gw, UNSTORED)
    for endpoint, stream in CASES:
        thread = f"rk-{endpoint}-{int(stream)}"
        fake_anthropic.set_default_reply(None)
        r = send(gw, endpoint, stream, "kept?", thread)  # stored: the thread exists
        assert outcome(r, endpoint, stream)["memory"] == "ok"
        fake_anthropic.set_default_reply(kill_redis_then_answer)
        r = send(gw, endpoint, stream, "lost?", thread)
        assert "answered" in r.text  # the user got the answer (streams: in pieces)
        out = outcome(r, endpoint, stream)
        assert (out["memory"], out["missing"]) == ("degraded", "not_stored"), (endpoint, out)
        if out.get("committed") is not None:
            assert out["committed"] is False
        redis.start()
        wait_for(lambda: serving(server), 20, "the memory service to see Redis again")
        fake_anthropic.set_default_reply(None)
        assert stored_messages(gw, thread) == ["kept?", "fake reply to: kept?"]
    assert metric(gw, UNSTORED) - before == len(CASES)


def test_memory_service_unreachable_is_degraded_and_counted_unstored(gateway_factory):
    gw = gateway_factory(f"127.0.0.1:{free_port()}", gateway={"memory_timeout_s": 1.0})
    before = metric(gw, UNSTORED + '{endpoint="chat",reason="memory_unavailable"}')
    for endpoint, stream in CASES:
        out = outcome(send(gw, endpoint, stream, "anyone?", "un"), endpoint, stream)
        assert out["memory"] == "degraded"
        assert out["missing"] == "memory_service,not_stored", (endpoint, stream, out)
    after = metric(gw, UNSTORED + '{endpoint="chat",reason="memory_unavailable"}')
    assert after - before == 2


def test_model_still_loading_after_a_restart_says_degraded(
    memory_process, memory_settings, gateway_factory, tmp_path
):
    """The embedding model has not loaded (after a restart it takes a while; here it never
    does: its files are FIFOs nobody writes): recall is missing, every endpoint says so,
    and the turns are stored."""
    import os

    model_dir = tmp_path / "model-that-never-loads"
    model_dir.mkdir()
    for name in ("modules.json", "config.json", "config_sentence_transformers.json"):
        os.mkfifo(model_dir / name)
    proc = memory_process(
        memory_settings(),
        env={"SERVER__GRACE_S": "1", "EMBEDDING__MODEL_PATH": str(model_dir)},
    ).start()
    gw = gateway_factory(proc.address)
    for endpoint, stream in CASES:
        thread = f"ml-{endpoint}-{int(stream)}"
        r = send(gw, endpoint, stream, "remember me?", thread)
        out = outcome(r, endpoint, stream)
        assert (out["memory"], out["missing"]) == ("degraded", "vector_store"), (endpoint, out)
        assert stored_messages(gw, thread)[0] == "remember me?"
    assert proc.health("mnemo.memory.v1.Recall") == "NOT_SERVING"
