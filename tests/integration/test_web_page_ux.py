"""The web page as a new user meets it, in headless Chromium: the memory panel fills in by
itself after an answer, a name is asked for when the server has no sign-in, one column at
390 px, and ``/docs`` renders Swagger UI with nothing fetched from off the machine."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

FACT_WAIT_MS = 45_000  # the worker extracts in the background (a loaded 2-core machine)


def _pick(page, name: str) -> None:
    page.get_by_test_id("pick-user").fill(name)
    page.get_by_test_id("pick-user-go").click()
    page.get_by_test_id("prompt").wait_for(state="visible")


def _say(page, text: str) -> None:
    done = page.locator("[data-testid=msg-assistant][data-done='1']")
    before = done.count()
    page.get_by_test_id("prompt").fill(text)
    page.get_by_test_id("prompt").press("Enter")
    done.nth(before).wait_for()


def test_memory_panel_shows_new_facts_without_a_click(offline_platform, browser_page):
    gw, worker = offline_platform
    page = browser_page
    clicks: list[str] = []
    page.expose_function("noteClick", lambda t: clicks.append(t))
    page.add_init_script(
        "document.addEventListener('click', e => window.noteClick("
        "(e.target.dataset && e.target.dataset.testid) || e.target.tagName), true)"
    )
    page.goto(gw.url)
    _pick(page, "noor")
    nothing_yet = page.get_by_test_id("memories-note").filter(has_text="Nothing yet")
    nothing_yet.wait_for(timeout=FACT_WAIT_MS)

    # each answer brings its facts into the panel once the worker wrote them: the family,
    # not one example (a second fact after a second turn, the first still listed)
    memory = page.get_by_test_id("memory")
    for said, word in (("I live in Lisbon.", "Lisbon"), ("I work as a carpenter.", "carpenter")):
        _say(page, said)
        fact = memory.filter(has_text=word).filter(has_not_text=said)
        try:
            fact.wait_for(timeout=FACT_WAIT_MS)
        except Exception:
            pytest.fail(f"the {word} fact never appeared; worker log:\n" + worker.log_tail())
    assert memory.filter(has_text="Lisbon").count() >= 1
    assert "refresh-memory" not in clicks, clicks  # nobody clicked ↻
    assert page.get_by_test_id("memories-note").is_hidden()


def test_no_sign_in_asks_for_a_name_and_sends_it(gateway_factory, browser_page):
    gw = gateway_factory(None, llm_fake=None)
    page = browser_page
    requests = []
    page.on("request", lambda r: requests.append(r))
    page.goto(gw.url)
    picker = page.get_by_test_id("user-picker")
    picker.wait_for(state="visible")
    assert page.get_by_test_id("prompt").is_hidden()
    # nothing of the gateway's shared default user was asked for before a name was chosen
    assert not [r.url for r in requests if "/v1/users/" in r.url]

    page.get_by_test_id("pick-user").fill("two words")
    page.get_by_test_id("pick-user-go").click()
    page.get_by_test_id("pick-user-note").filter(has_text="no spaces").wait_for()
    assert page.get_by_test_id("prompt").is_hidden()

    _pick(page, "ada@example.org")
    assert picker.is_hidden()
    _say(page, "Hello there")
    named = [r for r in requests if "/v1/" in r.url and r.url != gw.url + "/v1/info"]
    assert named, "the page sent nothing after a name was picked"
    for r in named:
        assert r.headers.get("x-mnemo-user-id") == "ada@example.org", (r.method, r.url)
    chat = next(r for r in named if r.url.endswith("/v1/chat"))
    assert chat.post_data_json["user_id"] == "ada@example.org"
    assert any("/v1/users/ada%40example.org/" in r.url for r in named)

    page.reload()  # the name is remembered by this browser
    page.get_by_test_id("prompt").wait_for(state="visible")
    assert picker.is_hidden()
    assert page.get_by_test_id("user-id").input_value() == "ada@example.org"


def _boxes(page) -> dict[str, dict[str, float]]:
    """The three panes' boxes once the page has settled: the memory panel filled in (its
    note or a memory shown), no request in flight, all three read in one script call so no
    pane grows between one reading and the next."""
    page.wait_for_function(
        "() => !document.getElementById('memories-note').hidden"
        " || document.querySelector('#memories li') !== null"
    )
    page.wait_for_load_state("networkidle")
    return page.evaluate(
        """() => Object.fromEntries(["threads-pane", "chat-pane", "memory-pane"].map((id) => {
            const r = document.getElementById(id).getBoundingClientRect();
            return [id, {x: r.x + window.scrollX, y: r.y + window.scrollY,
                         width: r.width, height: r.height}];
        }))"""
    )


@pytest.mark.parametrize("width", [390, 360])
def test_phone_width_is_one_column(gateway_factory, chromium, width):
    gw = gateway_factory(None, llm_fake=None)
    page = chromium.new_page(viewport={"width": width, "height": 844})
    page.set_default_timeout(30_000)
    page.goto(gw.url)
    _pick(page, "pia")
    boxes = _boxes(page)
    # every pane spans the width (nothing squeezed side by side), stacked: chat, memory, threads
    for name, box in boxes.items():
        assert box["x"] >= 0 and box["x"] <= 1, (name, box)
        assert box["width"] >= width - 2, (name, box)
    chat, mem, threads = boxes["chat-pane"], boxes["memory-pane"], boxes["threads-pane"]
    assert chat["y"] + chat["height"] <= mem["y"] + 1
    assert mem["y"] + mem["height"] <= threads["y"] + 1
    # no sideways scrolling, and the composer fits the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for testid in ("prompt", "send", "user-id", "new-memory"):
        box = page.get_by_test_id(testid).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (testid, box)
    assert boxes["chat-pane"]["height"] >= 300  # room to read the conversation


def test_desktop_width_keeps_three_columns(gateway_factory, chromium):
    gw = gateway_factory(None, llm_fake=None)
    page = chromium.new_page(viewport={"width": 1280, "height": 800})
    page.goto(gw.url)
    _pick(page, "pia")
    b = _boxes(page)
    assert b["threads-pane"]["x"] < b["chat-pane"]["x"] < b["memory-pane"]["x"]
    assert abs(b["threads-pane"]["y"] - b["memory-pane"]["y"]) <= 1


def test_docs_render_with_no_request_leaving_the_machine(gateway_factory, browser_page):
    gw = gateway_factory(None, llm_fake=None)
    page = browser_page
    leaving: list[str] = []
    console: list[str] = []

    def only_loopback(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            leaving.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.goto(gw.url + "/docs")
    page.locator(".swagger-ui .info .title").filter(has_text="Mnemo gateway").wait_for()
    page.locator(".opblock-summary-path", has_text="/v1/chat").first.wait_for()
    assert page.locator(".opblock").count() > 20  # every operation is listed
    assert not page.locator(".swagger-ui .errors-wrapper").count()
    assert leaving == []
    assert not [c for c in console if "Content Security Policy" in c], console
