"""The MCP server at /mcp, driven by the official SDK's streamable-HTTP client against a real
gateway and memory service: tools listed and called, identity bound as on the REST API."""

from __future__ import annotations

import re
import time
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import jwt
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

SECRET = "test-secret-with-enough-entropy-0123456789"
TOOLS = {
    "search_memories",
    "list_memories",
    "add_memory",
    "correct_memory",
    "delete_memory",
    "list_threads",
    "get_preferences",
    "set_preference",
    "delete_preference",
    "memory_context",
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_ACCEPT = {"accept": "application/json, text/event-stream"}


@asynccontextmanager
async def mcp(url: str, **headers: str):
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http)) as client,
    ):
        yield client


async def rest(method: str, url: str, **kwargs) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as http:
        return await http.request(method, url, **kwargs)


async def ok(client, tool: str, **args):
    result = await client.call_tool(tool, args)
    assert not result.is_error, f"{tool}: {result.content}"
    return result.structured_content


async def err(client, tool: str, **args) -> dict:
    result = await client.call_tool(tool, args)
    assert result.is_error, f"{tool} should have failed: {result.structured_content}"
    return result


@pytest.fixture
def key_gateway(gateway_factory, memory_server, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("k-ada acme ada\nk-bob acme bob\nk-acme acme\nk-other other\n")
    return gateway_factory(
        memory_server.address, auth={"mode": "api-key", "api_keys_file": str(keys)}
    )


async def test_tools_and_prompt_are_listed(gateway):
    async with mcp(gateway.url) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():  # no tool lets the model name the user
            assert "user_id" not in tool.input_schema.get("properties", {}), tool.name
        assert tools["search_memories"].input_schema["required"] == ["query"]
        for name in ("search_memories", "list_memories", "list_threads", "get_preferences"):
            assert tools[name].annotations.read_only_hint is True, name
        for name in ("delete_memory", "delete_preference"):
            assert tools[name].annotations.destructive_hint is True, name
        assert tools["add_memory"].annotations.destructive_hint is False
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert "memory_context" in prompts


async def test_user_a_finds_own_memory_user_b_cannot(key_gateway):
    async with mcp(key_gateway.url, **{"x-api-key": "k-ada"}) as ada:
        added = await ok(ada, "add_memory", text="I keep three beehives on my roof")
        assert added["id"] and added["kind"] == "fact"
        found = await ok(ada, "search_memories", query="beehives on the roof")
        assert added["id"] in [r["memory"]["id"] for r in found["results"]]
    async with mcp(key_gateway.url, Authorization="Bearer k-bob") as bob:
        found = await ok(bob, "search_memories", query="beehives on the roof")
        assert all("beehive" not in r["memory"]["text"] for r in found["results"])
        assert (await ok(bob, "list_memories"))["memories"] == []
        # ada's memory id is not bob's to change or delete
        gone = await err(bob, "delete_memory", memory_id=added["id"])
        assert gone.structured_content["error"]["code"] == "not_found"
        fixed = await err(bob, "correct_memory", memory_id=added["id"], text="hacked")
        assert fixed.structured_content["error"]["status"] == 404
    # the same name in another tenant is another user; a tenant key acts for its users
    async with mcp(key_gateway.url, **{"x-api-key": "k-other", "x-mnemo-user-id": "ada"}) as c:
        assert (await ok(c, "list_memories"))["memories"] == []
    async with mcp(key_gateway.url, **{"x-api-key": "k-acme", "x-mnemo-user-id": "ada"}) as c:
        assert [m["id"] for m in (await ok(c, "list_memories"))["memories"]] == [added["id"]]
    r = await rest(
        "GET", key_gateway.url + "/v1/users/ada/memories", headers={"x-api-key": "k-ada"}
    )
    assert [m["text"] for m in r.json()["memories"]] == ["I keep three beehives on my roof"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({"x-api-key": "k-nope"}, 401, "invalid_api_key"),
        ({"x-api-key": "k-ada", "x-mnemo-user-id": "bob"}, 403, "forbidden"),
        ({"x-api-key": "k-acme"}, 422, "invalid_id"),  # a tenant key must name its user
        ({"x-api-key": "k-acme", "x-mnemo-user-id": "bad:id"}, 422, "invalid_id"),
        ({"x-api-key": "k-ada", "origin": "http://evil.example"}, 403, "forbidden_origin"),
    ],
)
def test_refused_before_mcp_with_the_api_error(key_gateway, headers, status, code):
    r = httpx.post(key_gateway.url + "/mcp", json=INITIALIZE, headers={**MCP_ACCEPT, **headers})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_same_origin_and_no_origin_are_served(key_gateway):
    for extra in ({}, {"origin": key_gateway.url}):
        r = httpx.post(
            key_gateway.url + "/mcp",
            json=INITIALIZE,
            headers={**MCP_ACCEPT, "x-api-key": "k-ada", **extra},
        )
        assert r.status_code == 200, r.text
        assert r.json()["result"]["serverInfo"]["name"] == "mnemo"
        assert r.headers["content-type"].startswith("application/json")
        assert "mcp-session-id" not in r.headers  # stateless: no session to keep


async def test_jwt_subject_is_the_user(gateway_factory, memory_server):
    gw = gateway_factory(memory_server.address, auth={"mode": "jwt", "jwt_secret": SECRET})
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, "HS256")
    async with mcp(gw.url, Authorization=f"Bearer {token}") as alice:
        await ok(alice, "set_preference", key="tone", value="dry")
    r = await rest(
        "GET", gw.url + "/v1/users/alice/preferences", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.json()["values"] == {"tone": "dry"}
    r = await rest(
        "POST",
        gw.url + "/mcp",
        json=INITIALIZE,
        headers={**MCP_ACCEPT, "Authorization": f"Bearer {token}", "x-mnemo-user-id": "bob"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await rest(
        "POST",
        gw.url + "/mcp",
        json=INITIALIZE,
        headers={**MCP_ACCEPT, "Authorization": "Bearer x"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_token")


async def test_every_tool_and_the_prompt(gateway, fake_anthropic):
    fake_anthropic.enqueue_text("Noted.")
    r = await rest(
        "POST",
        gateway.url + "/v1/chat",
        json={"user_id": "mia", "prompt": "hello there", "thread_id": "th-mia"},
    )
    assert r.status_code == 200
    async with mcp(gateway.url, **{"x-mnemo-user-id": "mia"}) as client:
        threads = await ok(client, "list_threads")
        assert [t["thread_id"] for t in threads["threads"]] == ["th-mia"]
        assert threads["threads"][0]["user_id"] == "mia"

        mem = await ok(client, "add_memory", text="My cat is called Pixel", importance=7)
        assert mem["importance"] == 7
        fixed = await ok(client, "correct_memory", memory_id=mem["id"], text="My cat is Pico")
        assert fixed["text"] == "My cat is Pico"
        listed = await ok(client, "list_memories", kinds=["fact"])
        assert "My cat is Pico" in [m["text"] for m in listed["memories"]]

        assert (await ok(client, "set_preference", key="language", value="pt"))["values"] == {
            "language": "pt"
        }
        assert (await ok(client, "get_preferences"))["values"] == {"language": "pt"}

        context = (await ok(client, "memory_context", query="what is my cat called?"))["context"]
        assert "My cat is Pico" in context and "language: pt" in context
        # exactly what a chat turn in a new thread puts into the system prompt
        fake_anthropic.enqueue_text("Pico.")
        await rest(
            "POST",
            gateway.url + "/v1/chat",
            json={"user_id": "mia", "prompt": "what is my cat called?", "instructions": "Hi."},
        )
        assert fake_anthropic.last_system_prompt() == "Hi.\n\n" + context
        prompt = await client.get_prompt("memory_context", {"query": "what is my cat called?"})
        text = prompt.messages[0].content.text
        assert "My cat is Pico" in text and "what is my cat called?" in text

        assert (await ok(client, "delete_preference", key="language"))["values"] == {}
        assert (await ok(client, "delete_memory", memory_id=mem["id"]))["deleted"] is True
        empty = (await ok(client, "memory_context", query="what is my cat called?"))["context"]
        assert "Pico" not in empty
    # the REST API sees what the tools did (auth none: the header named the user)
    r = await rest("GET", gateway.url + "/v1/users/mia/memories", params={"kind": "fact"})
    assert "Pico" not in r.text


async def test_bad_arguments_are_tool_errors(gateway):
    async with mcp(gateway.url) as client:
        for tool, args, named in [
            ("search_memories", {}, "query"),
            ("search_memories", {"query": ""}, "query"),
            ("search_memories", {"query": "x", "top_k": 0}, "top_k"),
            ("add_memory", {"text": "x", "kind": "rumour"}, "kind"),
            ("add_memory", {"text": "x", "importance": 11}, "importance"),
            ("set_preference", {"key": "k"}, "value"),
            ("no_such_tool", {}, "no_such_tool"),
        ]:
            result = await err(client, tool, **args)
            assert named in result.content[0].text, (tool, args, result.content[0].text)
        empty = await err(client, "correct_memory", memory_id="m1")
        assert empty.structured_content["error"]["code"] == "empty_update"
        bad = await err(client, "delete_memory", memory_id="bad id!")
        assert bad.structured_content["error"] | {} == {
            "code": "invalid_id",
            "type": "invalid_request_error",
            "message": bad.structured_content["error"]["message"],
            "field": "memory_id",
            "status": 422,
        }
        assert bad.content[0].text.startswith("invalid_id: memory_id ")
        missing = await err(client, "delete_memory", memory_id="mem_nope")
        assert missing.structured_content["error"]["code"] == "not_found"
        bad_key = await err(client, "set_preference", key="bad key", value="v")
        assert bad_key.structured_content["error"]["field"] == "key"
        with pytest.raises(MCPError, match="invalid_request"):
            await client.get_prompt("memory_context", {"query": "  "})
        # the server is still answering after all of that
        assert (await ok(client, "get_preferences"))["values"] == {}


async def test_memory_disabled_is_a_tool_error_with_the_api_code(gateway_factory):
    gw = gateway_factory(None)
    async with mcp(gw.url) as client:
        result = await err(client, "search_memories", query="anything")
        assert result.structured_content["error"]["code"] == "memory_disabled"
        assert result.structured_content["error"]["status"] == 503
        assert result.content[0].text.startswith("memory_disabled: ")


async def test_memory_context_does_not_count_against_the_rate_limit(
    gateway_factory, memory_server_factory, memory_settings, fake_anthropic
):
    server = memory_server_factory(memory_settings(rate_limit={"per_minute": 1}))
    gw = gateway_factory(server.address)
    async with mcp(gw.url, **{"x-mnemo-user-id": "rl"}) as client:
        for _ in range(3):
            await ok(client, "memory_context", query="anything")
    fake_anthropic.enqueue_text("still allowed")
    r = await rest("POST", gw.url + "/v1/chat", json={"user_id": "rl", "prompt": "hi"})
    assert r.status_code == 200, r.text  # the one turn a minute was not used up
    r = await rest("POST", gw.url + "/v1/chat", json={"user_id": "rl", "prompt": "again"})
    assert r.status_code == 429


def test_the_docs_example_runs(key_gateway, capsys):
    text = (Path(__file__).parents[3] / "docs" / "mcp.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, re.S)
    exec(compile(example.replace("http://127.0.0.1:8000", key_gateway.url), "mcp.md", "exec"), {})
    out = capsys.readouterr().out
    assert "search_memories" in out and "I keep three beehives" in out


async def test_memory_service_down_is_memory_unavailable(
    gateway_factory, memory_server_factory, memory_settings
):
    server = memory_server_factory(memory_settings(), longterm=None)
    gw = gateway_factory(server.address)
    async with mcp(gw.url) as client:
        await ok(client, "get_preferences")
        server.stop()
        for tool, args in [
            ("get_preferences", {}),
            ("memory_context", {"query": "anything"}),
        ]:
            result = await err(client, tool, **args)
            error = result.structured_content["error"]
            assert (error["code"], error["status"]) == ("memory_unavailable", 503), error
