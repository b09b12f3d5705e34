"""
Inbox states in Chromium, across two tabs of one user: opening the list marks
it seen, archiving takes an item out of both (and "Archived" brings it back),
and a snoozed item comes back live, once, in both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from .demo import Bell, DemoServer

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]

SNOOZE = """async ([id, seconds]) => {
  const root = document.querySelector("[data-notifications]");
  const url = root.dataset.snoozeUrl.replace("/0/", `/${id}/`);
  const until = new Date(Date.now() + seconds * 1000).toISOString();
  const response = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: {"X-CSRFToken": root.dataset.csrfToken, "Content-Type": "application/json"},
    body: JSON.stringify({until}),
  });
  return response.status;
}"""


POST = """async ([name, id]) => {
  const root = document.querySelector("[data-notifications]");
  const response = await fetch(root.dataset[name].replace("/0/", `/${id}/`), {
    method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": root.dataset.csrfToken},
  });
  return response.status;
}"""


@pytest.fixture
def alice(login: Login, server: DemoServer) -> tuple[Bell, Bell]:
    """alice in two tabs of one browser, with one notification besides the demo's welcome."""
    first = login("alice")
    second = first.new_tab()
    server.notify("alice", "reviewed your draft")
    for tab in (first, second):
        expect(tab.item("reviewed your draft")).to_have_count(1)
        expect(tab.badge).to_have_text("2")
    return first, second


def test_opening_the_list_marks_it_seen_in_both_tabs(alice: tuple[Bell, Bell]) -> None:
    first, second = alice
    first.open_panel()
    for tab in (first, second):
        expect(tab.badge).to_be_hidden()
        expect(tab.item("reviewed your draft")).to_have_attribute("data-seen", "1")
        expect(tab.item("reviewed your draft")).to_have_attribute("data-unread", "1")  # seen is not read


def test_archiving_takes_an_item_out_of_both_tabs_and_archived_restores_it(alice: tuple[Bell, Bell]) -> None:
    first, second = alice
    first.open_panel()
    first.item("reviewed your draft").get_by_role("button", name="Archive").click()
    for tab in (first, second):
        expect(tab.item("reviewed your draft")).to_have_count(0)

    second.open_panel()
    second.root.get_by_role("button", name="Archived").click()
    archived = second.item("reviewed your draft")
    expect(archived).to_have_count(1)
    archived.get_by_role("button", name="Restore").click()
    expect(second.item("reviewed your draft")).to_have_count(0)
    expect(first.item("reviewed your draft")).to_have_count(1)


def test_a_snoozed_item_returns_live_once_in_both_tabs(alice: tuple[Bell, Bell], server: DemoServer) -> None:
    first, second = alice
    first.open_panel()
    for tab in (first, second):
        expect(tab.badge).to_be_hidden()
    nid = first.item("reviewed your draft").get_attribute("data-notification-id")
    assert first.page.evaluate(SNOOZE, [int(nid or 0), 2]) == 200
    for tab in (first, second):
        expect(tab.item("reviewed your draft")).to_have_count(0)

    for tab in (first, second):  # back when its time came, new and unseen
        expect(tab.item("reviewed your draft")).to_have_count(1)
        expect(tab.item("reviewed your draft")).to_have_attribute("data-seen", "0")
        expect(tab.badge).to_have_text("1")
    # A later notification is a barrier: had the wake come twice, it would be here by now.
    server.notify("alice", "after the wake")
    for tab in (first, second):
        expect(tab.item("after the wake")).to_have_count(1)
        expect(tab.item("reviewed your draft")).to_have_count(1)
        expect(tab.badge).to_have_text("2")


def snoozed_until(tab: Bell, choice: str) -> datetime:
    """Open the item's snooze choices, take ``choice``; the ``until`` the bell sent, as the server got it."""
    item = tab.item("reviewed your draft")
    nid = int(item.get_attribute("data-notification-id") or 0)
    item.locator("[data-notifications-snooze]").click()
    with tab.page.expect_response(lambda r: "/snooze/" in r.url and r.request.method == "POST") as answer:
        item.get_by_role("group", name="Snooze until").get_by_role("button", name=choice).click()
    assert answer.value.status == 200 and answer.value.json()["ids"] == [nid]
    expect(tab.item("reviewed your draft")).to_have_count(0)
    return datetime.fromisoformat(answer.value.request.post_data_json["until"].replace("Z", "+00:00"))


@pytest.mark.parametrize("choice", ["In 1 hour", "Tomorrow", "Next week"])
def test_a_snooze_offers_an_hour_tomorrow_and_next_week_in_the_browsers_time(
    login: Login, server: DemoServer, choice: str
) -> None:
    """Tomorrow and next week (Monday) begin at 9:00 where the browser is, here New York."""
    zone = ZoneInfo("America/New_York")
    tab = login("alice", timezone_id="America/New_York")
    server.notify("alice", "reviewed your draft")
    tab.open_panel()
    before = datetime.now(zone)
    until = snoozed_until(tab, choice).astimezone(zone)
    after = datetime.now(zone)
    if choice == "In 1 hour":
        assert before + timedelta(hours=1) - timedelta(seconds=1) <= until <= after + timedelta(hours=1)
        return
    assert (until.hour, until.minute, until.second) == (9, 0, 0)
    days = {(until.date() - day.date()).days for day in (before, after)}
    if choice == "Tomorrow":
        assert 1 in days
    else:
        assert until.weekday() == 0 and days & set(range(1, 8))


READ = """async (id) => {
  const root = document.querySelector("[data-notifications]");
  const response = await fetch(root.dataset.readUrl.replace("/0/", `/${id}/`), {
    method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": root.dataset.csrfToken},
  });
  return response.status;
}"""


def test_reading_an_unseen_item_takes_it_off_the_badge_in_both_tabs(alice: tuple[Bell, Bell]) -> None:
    first, second = alice
    nid = first.item("reviewed your draft").get_attribute("data-notification-id")
    assert first.page.evaluate(READ, int(nid or 0)) == 200
    for tab in (first, second):
        expect(tab.item("reviewed your draft")).to_have_attribute("data-unread", "0")
        expect(tab.badge).to_have_text("1")


# Every toast a tab shows from now on, by notification id (toasts vanish after
# 6 s, so counting those on screen at one moment could miss or double one).
RECORD_TOASTS = """() => {
  window.toastsShown = [];
  const region = document.querySelector("[data-notifications-toasts]");
  new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach((node) => {
    if (node.dataset && node.dataset.notificationId) window.toastsShown.push(node.dataset.notificationId);
  }))).observe(region, {childList: true});
}"""


def toasts_shown(tab: Bell, nid: str) -> int:
    return tab.page.evaluate("(id) => window.toastsShown.filter((shown) => shown === id).length", nid)


def test_a_woken_item_toasts_once_like_a_new_notification(alice: tuple[Bell, Bell], server: DemoServer) -> None:
    first, second = alice
    first.open_panel()
    nid = first.item("reviewed your draft").get_attribute("data-notification-id") or ""
    for tab in (first, second):
        expect(tab.badge).to_be_hidden()
        tab.page.evaluate(RECORD_TOASTS)
    assert first.page.evaluate(SNOOZE, [int(nid), 2]) == 200
    for tab in (first, second):
        expect(tab.item("reviewed your draft")).to_have_count(0)

    for tab in (first, second):  # back, counted again
        expect(tab.item("reviewed your draft")).to_have_count(1)
        expect(tab.badge).to_have_text("1")
    # A later notification is a barrier for a second toast of the wake, and
    # shows where a new notification toasts: in one tab, as the wake did.
    server.notify("alice", "after the wake")
    for tab in (first, second):
        expect(tab.item("after the wake")).to_have_count(1)
    later = first.item("after the wake").get_attribute("data-notification-id") or ""
    first.page.wait_for_timeout(500)
    woke = [toasts_shown(tab, nid) for tab in (first, second)]
    new = [toasts_shown(tab, later) for tab in (first, second)]
    assert sum(woke) == 1, woke
    assert woke == new, (woke, new)

    # A tab opened after the wake lists the item, and shows no toast for it.
    third = first.new_tab()
    third.page.evaluate(RECORD_TOASTS)
    expect(third.item("reviewed your draft")).to_have_count(1)
    expect(third.badge).to_have_text("2")
    third.page.wait_for_timeout(1000)
    assert toasts_shown(third, nid) == 0
    assert [toasts_shown(tab, nid) for tab in (first, second)] == woke


def test_a_list_answer_older_than_a_change_does_not_bring_the_item_back(alice: tuple[Bell, Bell]) -> None:
    """
    The first tab reloads its list (the item came back from "Archived") and the
    answer, with the item in it, is held on its way while the second tab
    snoozes the item and the first gets the stream's event: once delivered,
    that older answer must not put the snoozed item back.
    """
    first, second = alice
    nid = int(first.item("reviewed your draft").get_attribute("data-notification-id") or 0)
    held: list[Any] = []

    def is_list(url: str) -> bool:
        return urlsplit(url).path.endswith("/notifications/api/")

    released: list[bool] = []

    def hold(route: Any) -> None:
        if released:
            route.continue_()
        else:
            held.append((route, route.fetch()))  # the server's answer now, delivered later

    first.page.route(is_list, hold)
    assert second.page.evaluate(POST, ["archiveUrl", nid]) == 200
    expect(first.item("reviewed your draft")).to_have_count(0)
    assert second.page.evaluate(POST, ["unarchiveUrl", nid]) == 200
    for _ in range(100):  # the unarchived event makes the first tab reload its inbox
        if held:
            break
        first.page.wait_for_timeout(100)
    assert held, "the first tab never asked for its list again"
    assert second.page.evaluate(SNOOZE, [nid, 600]) == 200
    first.page.wait_for_timeout(1500)  # the snoozed event reaches the first tab
    released.append(True)
    for route, response in held:
        route.fulfill(response=response)
    first.page.wait_for_timeout(1500)
    expect(first.item("reviewed your draft")).to_have_count(0)
    expect(second.item("reviewed your draft")).to_have_count(0)


def test_a_list_made_again_keeps_the_open_snooze_choices_and_the_focus(alice: tuple[Bell, Bell]) -> None:
    """
    The second tab restores an archived item: the first reloads its list,
    which makes every item again, while a keyboard user is on a snooze
    choice there. The choices stay open and the focus stays on that choice.
    """
    first, second = alice
    welcome = first.items.filter(has_not_text="reviewed your draft")
    nid = int(welcome.get_attribute("data-notification-id") or 0)
    assert first.page.evaluate(POST, ["archiveUrl", nid]) == 200
    expect(welcome).to_have_count(0)
    first.open_panel()
    draft = first.item("reviewed your draft")
    draft.locator("[data-notifications-snooze]").click()
    first.page.keyboard.press("Tab")
    tomorrow = draft.locator("[data-notifications-snooze-until=tomorrow]")
    expect(tomorrow).to_be_focused()
    before = draft.element_handle()

    assert second.page.evaluate(POST, ["unarchiveUrl", nid]) == 200
    expect(welcome).to_have_count(1)  # the first tab's list came again
    first.page.wait_for_function("(old) => !old.isConnected", arg=before)  # its items were made anew
    expect(draft.locator("[data-notifications-snooze-choices]")).to_be_visible()
    expect(draft.locator("[data-notifications-snooze]")).to_have_attribute("aria-expanded", "true")
    expect(tomorrow).to_be_focused()
    first.page.keyboard.press("Enter")
    expect(draft).to_have_count(0)
