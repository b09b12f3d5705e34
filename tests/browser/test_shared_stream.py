"""
One stream per browser, not per tab: the tabs of one user share the stream one
of them holds, and another takes over when it goes. Over HTTP/1.1 a browser
opens at most 6 connections per host, so eight tabs with a stream each would
leave the seventh and eighth (and any further page) waiting forever.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Request, Route, expect

from .demo import NO_WEB_LOCKS, SPY_ON_NOTIFICATIONS, Bell, DemoServer, send_from_form

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]
TABS = 8


def ms_left(deadline: float) -> float:
    """Playwright timeout (ms) until ``deadline``; never 0, which means "no limit"."""
    return max(1.0, (deadline - time.monotonic()) * 1000)


def is_stream(url: str) -> bool:
    return "/notifications/stream/" in url


@pytest.fixture
def staff(login: Login, server: DemoServer) -> Page:
    """admin's browser, on a page without a bell (so it holds no stream), to read the hub's figures."""
    admin = login("admin").page
    admin.goto(server.url("/admin/"))
    return admin


@pytest.fixture
def tabs(login: Login) -> list[Bell]:
    """alice's demo page in eight tabs of one browser, each showing "connected"."""
    alice = login("alice")
    return [alice] + [alice.new_tab() for _ in range(TABS - 1)]


def wait_for(condition: Callable[[], bool], page: Page, timeout: float, what: str) -> None:
    """Poll ``condition`` (letting the browser run) until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"after {timeout} s: {what}"
        page.wait_for_timeout(100)


def holders(tabs: list[Bell]) -> list[Bell]:
    return [tab for tab in tabs if tab.stream_role == "holder"]


def wait_for_streams(server: DemoServer, staff: Page, count: int, timeout: float = 5) -> None:
    wait_for(
        lambda: server.open_streams(staff)["streams"] == count,
        staff,
        timeout,
        f"the server does not hold {count} stream(s): {server.open_streams(staff)}",
    )


def test_eight_tabs_share_one_stream_and_a_ninth_page_still_loads(
    tabs: list[Bell], staff: Page, server: DemoServer
) -> None:
    wait_for(lambda: len(holders(tabs)) == 1, staff, 5, "no single tab holds the stream")
    assert sorted(tab.stream_role or "" for tab in tabs) == ["holder"] + ["relayed"] * (TABS - 1)
    wait_for_streams(server, staff, 1)
    assert server.open_streams(staff)["users"] == 1

    # Over HTTP/1.1 a ninth tab would wait behind six streams; it loads at once.
    page = tabs[0].page.context.new_page()
    started = time.monotonic()
    response = page.goto(server.url("/"), timeout=5_000)
    assert response is not None and response.ok
    assert time.monotonic() - started < 5
    ninth = Bell(page)
    ninth.wait_connected()
    ninth.open_panel()
    with page.expect_response(lambda r: "/read/" in r.url, timeout=5_000) as marked:
        ninth.item("welcome to the demo").get_by_role("button", name="Mark read").click()
    assert marked.value.ok
    for tab in [*tabs, ninth]:
        expect(tab.item("welcome to the demo")).to_have_attribute("data-unread", "0")
        expect(tab.badge).to_be_hidden()
    assert server.open_streams(staff)["streams"] == 1


def test_a_notification_reaches_all_eight_tabs_within_2s_and_toasts_once(
    tabs: list[Bell], staff: Page, server: DemoServer
) -> None:
    staff.goto(server.url("/"))
    admin = Bell(staff)
    admin.wait_connected()

    deadline = time.monotonic() + 2.0
    send_from_form(admin, "alice", "shared the quarterly report", "Q3 numbers are in.")
    for tab in tabs:
        expect(tab.item("shared the quarterly report")).to_have_count(1, timeout=ms_left(deadline))
    for tab in tabs:
        expect(tab.badge).to_have_text("2")
    tabs[0].page.wait_for_timeout(1000)  # a second toast would be up by now
    toasts = [tab.toasts.filter(has_text="shared the quarterly report").count() for tab in tabs]
    assert sum(toasts) == 1, toasts


def test_marking_read_in_any_tab_updates_every_tab(tabs: list[Bell], server: DemoServer) -> None:
    server.notify("alice", "left a comment")
    for tab in tabs:
        expect(tab.item("left a comment")).to_have_count(1)
        expect(tab.badge).to_have_text("2")

    reader = tabs[5]
    reader.open_panel()  # which marks what it shows seen, in every tab
    for tab in tabs:
        expect(tab.badge).to_be_hidden()
    reader.item("left a comment").get_by_role("button", name="Mark read").click()

    for tab in tabs:
        expect(tab.item("left a comment")).to_have_attribute("data-unread", "0")
        expect(tab.button).to_have_attribute("aria-label", "Notifications, 0 new")


def test_a_desktop_notification_is_raised_once_per_browser(
    login: Login, server: DemoServer
) -> None:
    alice = login("alice", permissions=["notifications"], init_script=SPY_ON_NOTIFICATIONS)
    tabs = [alice, alice.new_tab(), alice.new_tab()]

    server.notify("alice", "deployed to production")
    for tab in tabs:
        expect(tab.item("deployed to production")).to_have_count(1)
    alice.page.wait_for_timeout(1000)  # a second one would be raised by now
    raised = [tab.page.evaluate("window.raisedNotifications.length") for tab in tabs]
    assert sum(raised) == 1, raised


def test_when_the_holding_tab_closes_another_takes_over_and_nothing_is_lost_or_doubled(
    tabs: list[Bell], staff: Page, server: DemoServer
) -> None:
    wait_for(lambda: len(holders(tabs)) == 1, staff, 5, "no single tab holds the stream")
    holder = holders(tabs)[0]
    remaining = [tab for tab in tabs if tab is not holder]
    context = holder.page.context
    server.notify("alice", "before the hand-over")
    for tab in tabs:
        expect(tab.item("before the hand-over")).to_have_count(1)

    # Hold the next stream request back: what is sent meanwhile reaches no
    # stream, so the tab taking over must resume it from the relayed cursor.
    held: list[Route] = []
    context.route(is_stream, lambda route: held.append(route))
    closed = time.monotonic()
    holder.page.close()
    wait_for(lambda: bool(held), staff, 5, "no tab asked for the stream")
    wait_for(
        lambda: len(holders(remaining)) == 1,
        staff,
        5 - (time.monotonic() - closed),
        "no tab took over",
    )
    server.notify("alice", "during the hand-over (1)")
    server.notify("alice", "during the hand-over (2)")
    resumed: Request = held[0].request
    for route in held:
        route.continue_()
    context.unroute(is_stream)

    server.notify("alice", "after the hand-over")
    for tab in remaining:
        expect(tab.item("after the hand-over")).to_have_count(1)
        expect(tab.items.locator(".ntf-verb")).to_have_text(
            [
                "after the hand-over",
                "during the hand-over (2)",
                "during the hand-over (1)",
                "before the hand-over",
                "welcome to the demo",
            ]
        )
        expect(tab.badge).to_have_text("5")
        expect(tab.status).to_have_attribute("data-state", "connected")
    assert resumed.headers.get("last-event-id"), "the tab taking over did not resume"
    assert len(held) == 1, "more than one tab took over"
    wait_for_streams(server, staff, 1)


def test_every_tab_shows_the_state_of_the_shared_stream(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    tabs = [alice, alice.new_tab(), alice.new_tab()]
    wait_for(lambda: len(holders(tabs)) == 1, alice.page, 5, "no single tab holds the stream")

    server.kill()
    for tab in tabs:
        expect(tab.status).to_have_attribute("data-state", "reconnecting")
    server.start()
    for tab in tabs:
        expect(tab.status).to_have_attribute("data-state", "connected", timeout=45_000)


# The holding tab's page stops running for 8 s: a frozen or hung tab.
HANG = "setTimeout(() => { const end = Date.now() + 8000; while (Date.now() < end); })"


def test_a_holder_that_hangs_loses_the_stream_within_seconds_and_catches_up_after(
    login: Login, server: DemoServer
) -> None:
    alice = login("alice")
    tabs = [alice, alice.new_tab(), alice.new_tab()]
    wait_for(lambda: len(holders(tabs)) == 1, alice.page, 5, "no single tab holds the stream")
    holder = holders(tabs)[0]
    others = [tab for tab in tabs if tab is not holder]

    holder.page.evaluate(HANG)
    wait_for(lambda: len(holders(others)) == 1, others[0].page, 5, "no tab took over")
    server.notify("alice", "while a tab hung")
    for tab in others:
        expect(tab.item("while a tab hung")).to_have_count(1)

    # Running again, it follows the new holder and shows what it missed.
    expect(holder.root).to_have_attribute("data-stream", "relayed", timeout=15_000)
    expect(holder.item("while a tab hung")).to_have_count(1)
    expect(holder.badge).to_have_text("2")
    server.notify("alice", "after the hang")
    for tab in tabs:
        expect(tab.item("after the hang")).to_have_count(1)
        expect(tab.badge).to_have_text("3")
    assert len(holders(tabs)) == 1


def test_without_web_locks_each_tab_keeps_its_own_stream(
    login: Login, staff: Page, server: DemoServer
) -> None:
    alice = login("alice", init_script=NO_WEB_LOCKS)
    tabs = [alice, alice.new_tab(), alice.new_tab()]
    assert alice.page.evaluate("'locks' in navigator") is False
    assert [tab.stream_role for tab in tabs] == ["own"] * 3
    wait_for_streams(server, staff, 3)

    server.notify("alice", "reached every tab")
    for tab in tabs:
        expect(tab.item("reached every tab")).to_have_count(1)
        expect(tab.badge).to_have_text("2")
    tabs[1].open_panel()  # which marks what it shows seen, in every tab
    for tab in tabs:
        expect(tab.badge).to_be_hidden()
    tabs[1].item("reached every tab").get_by_role("button", name="Mark read").click()
    for tab in tabs:
        expect(tab.item("reached every tab")).to_have_attribute("data-unread", "0")


@pytest.mark.parametrize(
    "server", [{"NOTIFICATIONS_HEARTBEAT": "1"}], indirect=True, ids=["heartbeat-1s"]
)
def test_a_dead_link_is_noticed_after_two_heartbeats_and_reconnected(
    login: Login, server: DemoServer
) -> None:
    alice = login("alice")
    expect(alice.root).to_have_attribute("data-heartbeat", "1")

    server.pause()  # the connection stays open and carries nothing, not even heartbeats
    try:
        paused = time.monotonic()
        expect(alice.status).to_have_attribute("data-state", "reconnecting", timeout=15_000)
        noticed = time.monotonic() - paused
    finally:
        server.resume()

    # Two heartbeats and two seconds of slack: 4 s after the last byte, which
    # came at most one heartbeat before the pause.
    assert 2.5 <= noticed <= 6.0, noticed
    expect(alice.status).to_have_attribute("data-state", "connected", timeout=20_000)
    server.notify("alice", "after the dead link")
    expect(alice.item("after the dead link")).to_have_count(1)


@pytest.mark.parametrize(
    "server",
    [{"NOTIFICATIONS_MAX_STREAM_LIFE": "2", "NOTIFICATIONS_RETRY_MS": "4000"}],
    indirect=True,
    ids=["life-2s-retry-4s"],
)
def test_reconnects_wait_the_retry_the_server_asks_for(login: Login) -> None:
    alice = login("alice")
    # The page's own timings of the streams it finished: [start, end] in ms.
    finished = (
        "performance.getEntriesByType('resource')"
        ".filter((e) => e.name.includes('/notifications/stream/'))"
        ".map((e) => [e.startTime, e.responseEnd])"
    )
    wait_for(
        lambda: len(alice.page.evaluate(finished)) >= 3, alice.page, 40, "no three streams ended"
    )

    streams = alice.page.evaluate(finished)
    waits = [(nxt[0] - ended[1]) / 1000 for ended, nxt in zip(streams, streams[1:])]
    # Each stream lives about 2 s; then the client waits retry: 4 s, plus up to 1 s of jitter.
    assert all(3.9 <= wait <= 5.5 for wait in waits), waits
