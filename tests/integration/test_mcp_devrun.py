"""The issue's bar for MCP: the official SDK's client, connected to ``make run``'s ``/mcp`` in
api-key mode, lists the tools, adds a memory for user A, finds it with the search tool, and
cannot see it as user B."""

from __future__ import annotations

import asyncio

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from .test_devrun import DevRun


async def _as(url: str, key: str, steps):
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as http,
        Client(streamable_http_client(url + "/mcp", http_client=http)) as client,
    ):
        return await steps(client)


def test_mcp_on_make_run_in_api_key_mode(tmp_path, monkeypatch):
    keys = tmp_path / "api-keys"
    keys.write_text("k-ann team ann\nk-ben team ben\n")
    monkeypatch.setenv("AUTH__MODE", "api-key")
    monkeypatch.setenv("AUTH__API_KEYS_FILE", str(keys))
    run = DevRun(tmp_path / "var", tmp_path / "devrun.log")
    with run.explained():
        run.start()
        try:

            async def ann(client):
                tools = {t.name for t in (await client.list_tools()).tools}
                assert {"search_memories", "add_memory", "delete_memory"} <= tools
                added = await client.call_tool("add_memory", {"text": "My locker code is 4711"})
                assert not added.is_error, added.content
                found = await client.call_tool("search_memories", {"query": "locker code"})
                assert not found.is_error, found.content
                hits = [r["memory"]["text"] for r in found.structured_content["results"]]
                assert "My locker code is 4711" in hits
                return added.structured_content["id"]

            async def ben(client):
                found = await client.call_tool("search_memories", {"query": "locker code"})
                assert not found.is_error, found.content
                assert all(
                    "4711" not in r["memory"]["text"] for r in found.structured_content["results"]
                )
                listed = await client.call_tool("list_memories", {})
                assert listed.structured_content["memories"] == []
                gone = await client.call_tool("delete_memory", {"memory_id": memory_id})
                assert gone.is_error and gone.structured_content["error"]["code"] == "not_found"

            memory_id = asyncio.run(_as(run.url, "k-ann", ann))
            asyncio.run(_as(run.url, "k-ben", ben))
            # ann's memory is still there after ben's attempt
            asyncio.run(_as(run.url, "k-ann", ann))
        finally:
            assert run.interrupt() == 0
