"""Fixtures of the cross-service suites."""

from __future__ import annotations

import os
import sys
import uuid

import pytest
from mnemo_common.testing.procs import ManagedProcess

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium():
    """Headless Chromium (the system's, driven by Playwright)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium):
    """A page of :func:`chromium` (30 s default timeout)."""
    page = chromium.new_page()
    page.set_default_timeout(30_000)
    return page


@pytest.fixture
def platform(memory_server_factory, memory_settings, chroma_server, gateway_factory, tmp_path):
    """Memory service (in-process) and worker (subprocess) sharing Redis and a Chroma server."""
    yield from _platform(
        memory_server_factory, memory_settings, chroma_server, gateway_factory, tmp_path
    )


@pytest.fixture
def offline_platform(
    memory_server_factory, memory_settings, chroma_server, gateway_factory, tmp_path
):
    """:func:`platform` with the gateway on the offline provider too (no key: ``make run``),
    and no rate limit (a test may say fifty things in a minute)."""
    yield from _platform(
        memory_server_factory,
        memory_settings,
        chroma_server,
        gateway_factory,
        tmp_path,
        {"rate_limit": {"enabled": False}},
        llm_fake=None,
    )


def _platform(
    memory_server_factory,
    memory_settings,
    chroma_server,
    gateway_factory,
    tmp_path,
    extra=None,
    **gw,
):
    prefix = "it" + uuid.uuid4().hex[:8]
    settings = memory_settings(
        chromadb_url=chroma_server.url,
        vector={"collection_prefix": prefix},
        memory={"extract_every_messages": 2},
        **(extra or {}),
    )
    memory = memory_server_factory(settings)
    env = {
        **os.environ,
        "REDIS_URL": settings.effective_redis_url,
        "REDIS__KEY_PREFIX": settings.redis.key_prefix,
        "CHROMADB_URL": chroma_server.url,
        "VECTOR__COLLECTION_PREFIX": prefix,
        "LLM__PROVIDER": "offline",
        "MEMORY__EXTRACT_EVERY_MESSAGES": "2",
        "WORKER__METRICS_PORT": "0",
        "WORKER__BLOCK_MS": "100",
        "LOG__JSON": "false",
        "HF_HUB_OFFLINE": "1",
    }
    worker = ManagedProcess(
        [sys.executable, "-m", "mnemo_memory", "worker"], env=env, log_path=tmp_path / "worker.log"
    ).start()
    gateway = gateway_factory(memory.address, **gw)
    try:
        yield gateway, worker
    finally:
        worker.stop()
