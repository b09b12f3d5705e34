"""
The live experience in Chromium: several users and tabs on one demo server.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .demo import SPY_ON_NOTIFICATIONS, Bell, DemoServer, send_from_form

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]


def ms_left(deadline: float) -> float:
    """Playwright timeout (ms) until ``deadline``; never 0, which means "no limit"."""
    return max(1.0, (deadline - time.monotonic()) * 1000)


@pytest.fixture
def tabs(login: Login) -> tuple[Bell, Bell, Bell]:
    """The issue's cast: alice in two tabs of one browser, bob in his own."""
    alice = login("alice")
    return alice, alice.new_tab(), login("bob")


def test_personal_notification_reaches_both_tabs_of_its_user_within_2s_and_nobody_else(
    tabs: tuple[Bell, Bell, Bell], login: Login
) -> None:
    alice1, alice2, bob = tabs
    admin = login("admin")
    expect(alice1.badge).to_have_text("1")  # the demo's welcome notification

    deadline = time.monotonic() + 2.0
    send_from_form(admin, "alice", "shared the quarterly report", "Q3 numbers are in.")
    for tab in (alice1, alice2):
        expect(tab.item("shared the quarterly report")).to_have_count(1, timeout=ms_left(deadline))
        expect(tab.badge).to_have_text("2", timeout=ms_left(deadline))
    expect(alice1.button).to_have_attribute("aria-label", "Notifications, 2 new")
    expect(alice2.toasts.filter(has_text="shared the quarterly report")).to_have_count(1)

    # A later notification to bob is a barrier: his stream delivers in order,
    # so had alice's reached him, it would be on his page before this one.
    send_from_form(admin, "bob", "for bob only")
    expect(bob.item("for bob only")).to_have_count(1)
    expect(bob.item("shared the quarterly report")).to_have_count(0)
    expect(bob.toasts.filter(has_text="shared the quarterly report")).to_have_count(0)
    expect(bob.badge).to_have_text("2")  # his welcome and his own
    for tab in (alice1, alice2):
        expect(tab.item("for bob only")).to_have_count(0)


def test_broadcast_from_the_admin_form_reaches_every_tab(
    tabs: tuple[Bell, Bell, Bell], login: Login, server: DemoServer
) -> None:
    admin = login("admin").page

    admin.goto(server.url("/admin/notifications/broadcast/add/"))
    admin.fill("#id_verb", "planned maintenance tonight")
    admin.fill("#id_description", "The site is read-only from 22:00 to 23:00 UTC.")
    admin.select_option("#id_level", "warning")
    admin.select_option("#id_audience", "all")
    deadline = time.monotonic() + 2.0
    admin.click("input[name=_save]")
    expect(admin.locator(".messagelist .success")).to_be_visible()
    for tab in tabs:
        expect(tab.item("planned maintenance tonight")).to_have_count(1, timeout=ms_left(deadline))
        expect(tab.badge).to_have_text("2")


def test_marking_read_in_one_tab_updates_the_other_without_reload(
    tabs: tuple[Bell, Bell, Bell], login: Login
) -> None:
    alice1, alice2, bob = tabs
    send_from_form(login("admin"), "everyone (broadcast)", "new office opens monday")
    for tab in tabs:
        expect(tab.item("new office opens monday")).to_have_count(1)
        expect(tab.badge).to_have_text("2")
    alice2.page.evaluate("window.sameDocument = true")

    alice1.open_panel()  # which marks what it shows seen: the badge counts what is unseen
    for tab in (alice1, alice2):
        expect(tab.badge).to_be_hidden()
    alice1.item("new office opens monday").get_by_role("button", name="Mark read").click()

    expect(alice2.item("new office opens monday")).to_have_attribute("data-unread", "0")
    expect(alice2.button).to_have_attribute("aria-label", "Notifications, 0 new")
    assert alice2.page.evaluate("window.sameDocument") is True
    expect(alice1.badge).to_be_hidden()
    # A broadcast's read state is per user.
    expect(bob.item("new office opens monday")).to_have_attribute("data-unread", "1")
    expect(bob.badge).to_have_text("2")


def test_mark_all_read_clears_the_badge_in_every_tab(login: Login) -> None:
    alice1 = login("alice")
    alice2 = alice1.new_tab()
    send_from_form(login("admin"), "alice", "left a comment")
    expect(alice2.badge).to_have_text("2")

    alice1.open_panel()
    alice1.page.get_by_role("button", name="Mark all read").click()

    for tab in (alice1, alice2):
        expect(tab.badge).to_be_hidden()
        expect(tab.button).to_have_attribute("aria-label", "Notifications, 0 new")
        expect(tab.items.and_(tab.page.locator("[data-unread='1']"))).to_have_count(0)


def test_markup_in_a_notification_is_shown_as_text(login: Login) -> None:
    verb = "<img src=x onerror=alert(1)>"
    description = "<script>alert(2)</script>"
    alice = login("alice")
    dialogs: list[str] = []
    alice.page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    send_from_form(login("admin"), "alice", verb, description)

    def shown_as_text() -> None:
        item = alice.item(verb)
        expect(item).to_have_count(1)
        expect(item.locator(".ntf-verb")).to_have_text(f"admin {verb}")
        expect(item.locator(".ntf-desc")).to_have_text(description)
        for region in ("[data-notifications-list]", "[data-notifications-toasts]"):
            expect(alice.page.locator(f"{region} img, {region} script")).to_have_count(0)

    expect(alice.toasts.filter(has_text=verb)).to_have_text(f"admin {verb}{description}×")
    shown_as_text()  # inserted live by the client
    alice.page.reload()
    alice.wait_connected()
    shown_as_text()  # rendered by the template
    assert dialogs == []


def test_desktop_notification_is_raised_once_when_allowed(login: Login) -> None:
    alice = login("alice", permissions=["notifications"], init_script=SPY_ON_NOTIFICATIONS)
    assert alice.page.evaluate("Notification.permission") == "granted"

    send_from_form(login("admin"), "alice", "deployed to production", "All checks passed.")

    item = alice.item("deployed to production")
    expect(item).to_have_count(1)
    raised = alice.page.evaluate("window.raisedNotifications")
    assert raised == [
        {
            "title": "admin deployed to production",
            "options": {
                "body": "All checks passed.",
                "tag": f"notification-{item.get_attribute('data-notification-id')}",
            },
        }
    ]


# A browser that has not asked yet: the user grants permission when asked.
NOTIFICATIONS_NOT_ASKED_YET = """
(() => {
  let permission = "default";
  const raised = [];
  Object.defineProperty(window, "raisedNotifications", { value: raised });
  window.Notification = class {
    static get permission() { return permission; }
    static requestPermission() { permission = "granted"; return Promise.resolve(permission); }
    constructor(title) { raised.push(title); }
    addEventListener() {}
  };
})();
"""


def test_desktop_notifications_can_be_enabled_from_the_panel(login: Login) -> None:
    alice = login("alice", init_script=NOTIFICATIONS_NOT_ASKED_YET)
    alice.open_panel()
    enable = alice.page.get_by_role("button", name="Enable desktop notifications")
    enable.click()
    expect(enable).to_be_hidden()

    send_from_form(login("admin"), "alice", "replied to your comment")

    expect(alice.item("replied to your comment")).to_have_count(1)
    assert alice.page.evaluate("window.raisedNotifications") == ["admin replied to your comment"]


def test_bell_and_list_work_from_the_keyboard(login: Login) -> None:
    alice = login("alice")
    page = alice.page

    alice.button.focus()
    page.keyboard.press("Enter")
    expect(alice.panel).to_be_visible()
    expect(alice.button).to_have_attribute("aria-expanded", "true")

    welcome = alice.item("welcome to the demo")
    welcome.focus()
    page.keyboard.press("Enter")
    expect(welcome).to_have_attribute("data-unread", "0")
    expect(alice.badge).to_be_hidden()
    expect(alice.button).to_have_attribute("aria-label", "Notifications, 0 new")

    page.keyboard.press("Escape")
    expect(alice.panel).to_be_hidden()
    expect(alice.button).to_have_attribute("aria-expanded", "false")
    expect(alice.button).to_be_focused()
