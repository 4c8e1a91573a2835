"""The web page in headless Chromium (Playwright): chat with streaming, a remembered fact
after a new thread, deleting it; the offline provider visibly labelled."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.browser


def test_chat_stream_remembered_fact_and_delete(platform, fake_anthropic, browser_page):
    gw, worker = platform
    page = browser_page
    page.goto(gw.url)
    page.get_by_test_id("provider").filter(has_text="anthropic").wait_for()
    assert page.get_by_test_id("offline-banner").is_hidden()
    page.get_by_test_id("user-id").fill("pia")
    page.get_by_test_id("user-id").press("Tab")

    fake_anthropic.enqueue_text("Porto is a lovely city to live in, enjoy it!")
    page.get_by_test_id("prompt").fill("Hi there. I live in Porto.")
    page.get_by_test_id("prompt").press("Enter")
    answer = page.locator("[data-testid=msg-assistant][data-done='1']")
    answer.wait_for()
    assert answer.inner_text() == "Porto is a lovely city to live in, enjoy it!"
    assert fake_anthropic.last_request.body["stream"] is True  # it was streamed end to end
    page.get_by_test_id("status").filter(has_text="remembered").wait_for()
    page.get_by_test_id("thread").first.wait_for()

    # a new conversation: the fact extracted by the worker shows in the memory panel
    page.get_by_test_id("new-thread").click()
    # the fact, not the message memory that keeps the words "Hi there. I live in Porto."
    fact = page.get_by_test_id("memory").filter(has_text="Porto").filter(has_not_text="Hi there")
    for _ in range(60):
        if fact.count():
            break
        page.get_by_test_id("refresh-memory").click()
        page.wait_for_timeout(1000)
    else:
        pytest.fail("the fact never appeared; worker log:\n" + worker.log_tail())
    assert page.get_by_test_id("messages").inner_text() == ""

    fact.get_by_test_id("delete-memory").click()
    fact.wait_for(state="detached")
    listed = httpx.get(gw.url + "/v1/users/pia/memories").json()["memories"]
    assert not any("Porto" in m["text"] for m in listed if m["kind"] != "message")


def test_offline_provider_is_labelled(gateway_factory, browser_page):
    gw = gateway_factory(None, llm_fake=None)
    page = browser_page
    page.goto(gw.url)
    page.get_by_test_id("offline-banner").wait_for(state="visible")
    assert "OFFLINE" in page.get_by_test_id("provider").inner_text()
