"""
A page written for django-notifications-hq (its template tags and notify.js,
unchanged) updates live in Chromium, without polling.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from .demo import TIMEOUT_MS, DemoServer

pytestmark = pytest.mark.browser

# The page polls every 60 s: what arrives sooner came over the stream.
LIVE_MS = 3000
# Keeps notify.js's polling period at 0.3 s, whatever the page sets.
FAST_POLLING = """
Object.defineProperty(window, "notify_refresh_period", {
  get() { return 300; }, set(value) {}, configurable: true,
});
"""
NO_EVENTSOURCE = "delete window.EventSource;"


@pytest.fixture
def hq_page(browser: Browser, server: DemoServer) -> Iterator[object]:
    contexts = []

    def open_page(username: str, *init_scripts: str) -> Page:
        context = browser.new_context()
        context.set_default_timeout(TIMEOUT_MS)
        for script in init_scripts:
            context.add_init_script(script)
        contexts.append(context)
        page = context.new_page()
        page.goto(server.url("/login/?next=/hq/"))
        page.fill("#id_username", username)
        page.fill("#id_password", username)
        page.click("button[type=submit]")
        page.wait_for_url(server.url("/hq/"))
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_hq_page_shows_a_new_notification_live_over_the_stream(hq_page, server: DemoServer) -> None:
    page = hq_page("alice")
    expect(page.locator(".live_notify_badge")).to_have_text("1")  # the demo's welcome
    expect(page.locator(".live_notify_list li")).to_have_count(1)
    page.wait_for_function("window.notify_stream && notify_stream.readyState === EventSource.OPEN")

    server.notify("alice", "approved your <b>pull request</b>")
    start = time.monotonic()
    item = page.locator(".live_notify_list li", has_text="approved your <b>pull request</b>")
    expect(item).to_have_count(1, timeout=LIVE_MS)
    expect(page.locator(".live_notify_badge")).to_have_text("2", timeout=LIVE_MS)
    assert time.monotonic() - start < LIVE_MS / 1000
    expect(page.locator(".live_notify_list b")).to_have_count(0)  # text, never HTML


def test_hq_page_falls_back_to_polling_without_a_stream(hq_page, server: DemoServer) -> None:
    page = hq_page("bob", NO_EVENTSOURCE, FAST_POLLING)
    expect(page.locator(".live_notify_badge")).to_have_text("1")
    server.notify("bob", "polled in")
    expect(page.locator(".live_notify_list li", has_text="polled in")).to_have_count(1, timeout=LIVE_MS)
    expect(page.locator(".live_notify_badge")).to_have_text("2")
