"""
Links in Chromium: static/notifications/links.js (the browser client's and the
service worker's rule) gives what notifications/links.py gives, and every link
the rule lets through is http(s) to Chromium's own URL parser.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from notifications import links

from ..test_url_safety import SAFE, UNSAFE
from .demo import DemoServer
from .test_push import Login, Pushes, payloads

pytestmark = pytest.mark.browser

LINKS_JS = Path(links.__file__).parent / "static" / "notifications" / "links.js"
BASE = "https://app.example/dir/page?x=1"

# Pieces browsers treat specially, put together at random (the same every run).
PIECES = [
    "javascript", "JaVaScRiPt", "script", "java", "data", "vbscript", "http", "https", "HTTP",
    "file", "x", "1", "+", ".", "-", ":", "/", "\\", "//", "?", "#", "%0a", "%3a", "&colon;",
    " ", "\t", "\n", "\r", "\x00", "\x0b", "\x1f", "\x7f", "\xa0", "\u200b", "\ufeff", "\u2028",
    "evil.example", "@", "[::1]",
]


def corpus() -> list[str]:
    draw = random.Random(20261206)
    found = [*UNSAFE, *SAFE]
    for _ in range(3000):
        found.append("".join(draw.choice(PIECES) for _ in range(draw.randint(1, 5))))
    return found


@pytest.fixture(scope="module")
def page(browser: Browser) -> Page:
    page = browser.new_page()
    page.add_script_tag(path=str(LINKS_JS))
    return page


def test_links_js_gives_what_links_py_gives(page: Page) -> None:
    urls = corpus()
    in_browser = page.evaluate("(urls) => urls.map(self.notificationsSafeUrl)", urls)
    assert [(u, b) for u, b in zip(urls, in_browser, strict=True) if b != links.safe_url(u)] == []


def test_every_link_the_rule_accepts_is_http_or_https_in_chromium(page: Page) -> None:
    accepted = [u for u in corpus() if u and links.is_safe(u)]
    parsed = page.evaluate(
        """([urls, base]) => urls.map((url) => {
             try {
               const resolved = new URL(url, base);
               return [resolved.protocol, resolved.host];
             } catch (error) {
               return ["invalid", ""];  // a link to nowhere
             }
           })""",
        [accepted, BASE],
    )
    wrong = [
        (url, protocol, host)
        for url, (protocol, host) in zip(accepted, parsed, strict=True)
        if protocol not in ("http:", "https:", "invalid")
        # Without a scheme of its own, a link stays on the page's site.
        or (protocol != "invalid" and not links._SCHEME.match(url) and host != "app.example")
    ]
    assert len(accepted) > 500 and wrong == []


def test_a_push_with_a_javascript_url_opens_the_site_on_click(login: Login, server: DemoServer) -> None:
    (payload,) = payloads(server, ("Post 1", "/preferences/"))
    hostile = {**payload, "url": "java\tscript:alert(document.domain)"}  # as an old payload could hold
    alice = login("alice", permissions=["notifications"])
    pushes = Pushes(alice.page, server)
    assert [n["tag"] for n in pushes.show(hostile)] == [hostile["tag"]]

    pushes.click(hostile["tag"])

    (call,) = pushes.window_calls(1)
    assert (call["call"], call["url"]) == ("focus", server.url("/")), pushes.trouble()


def test_a_live_notification_links_to_its_url_in_the_bell(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    server.notify("alice", "linked here", "--url", "/preferences/")
    alice.open_panel()
    link = alice.item("linked here").locator("a.ntf-target")
    expect(link).to_have_attribute("href", "/preferences/")
