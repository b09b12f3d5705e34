"""
The bell with the keyboard alone and a screen reader, and axe-core on the
demo's pages: no violations of WCAG 2.1 A/AA (contrast included) or of
axe's best practices.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .axe import install_axe, violations
from .demo import Bell, DemoServer

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]


@pytest.fixture(scope="session")
def axe() -> Path:
    return install_axe()


def test_space_opens_the_list_and_tab_reaches_each_item(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    server.notify("alice", "second thing")
    expect(alice.items).to_have_count(2)
    page = alice.page

    alice.button.focus()
    page.keyboard.press(" ")
    expect(alice.panel).to_be_visible()
    expect(alice.button).to_have_attribute("aria-expanded", "true")
    panel_id = alice.panel.get_attribute("id")
    assert panel_id and alice.button.get_attribute("aria-controls") == panel_id

    focused = []
    for _ in range(12):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.dataset.notificationId || ''"))
    ids = [alice.items.nth(i).get_attribute("data-notification-id") for i in range(2)]
    assert [f for f in focused if f][:2] == ids


def test_escape_closes_the_list_from_an_item_and_focus_returns_to_the_bell(login: Login) -> None:
    alice = login("alice")
    page = alice.page
    alice.button.focus()
    page.keyboard.press("Enter")
    expect(alice.panel).to_be_visible()
    alice.items.first.focus()

    page.keyboard.press("Escape")

    expect(alice.panel).to_be_hidden()
    expect(alice.button).to_have_attribute("aria-expanded", "false")
    expect(alice.button).to_be_focused()


def tab_to(page: Page, selector: str, presses: int = 40) -> None:
    """Press Tab until the focus is on an element matching ``selector``, as a keyboard user would."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_bell_is_used_with_the_keyboard_alone(login: Login, server: DemoServer) -> None:
    """From the top of the page: reach the bell, open it, read, archive, restore, snooze (choices), close."""
    alice = login("alice")
    server.notify("alice", "second thing")
    expect(alice.items).to_have_count(2)
    page = alice.page
    second = alice.item("second thing")
    nid = second.get_attribute("data-notification-id")
    in_item = f'[data-notification-id="{nid}"]'

    page.evaluate("document.activeElement && document.activeElement.blur()")
    tab_to(page, "[data-notifications-bell]")
    page.keyboard.press("Enter")
    expect(alice.panel).to_be_visible()
    expect(alice.badge).to_be_hidden()  # opened by the keyboard, the list is seen as by a click

    tab_to(page, in_item)
    page.keyboard.press("Enter")  # on the item: marks it read
    expect(second).to_have_attribute("data-unread", "0")

    tab_to(page, f"{in_item} [data-notifications-archive]")
    page.keyboard.press("Enter")
    expect(second).to_have_count(0)
    expect(alice.button).to_be_focused()  # not lost with the removed button
    expect(alice.panel).to_be_visible()

    tab_to(page, "[data-notifications-archived]")
    page.keyboard.press("Enter")
    expect(page.locator("[data-notifications-archived]")).to_have_attribute("aria-pressed", "true")
    expect(second).to_have_count(1)
    tab_to(page, f"{in_item} [data-notifications-restore]")
    page.keyboard.press("Enter")
    expect(second).to_have_count(0)
    expect(alice.button).to_be_focused()
    tab_to(page, "[data-notifications-archived]")
    page.keyboard.press("Space")
    expect(page.locator("[data-notifications-archived]")).to_have_attribute("aria-pressed", "false")
    expect(second).to_have_count(1)

    snooze = page.locator(f"{in_item} [data-notifications-snooze]")
    tab_to(page, f"{in_item} [data-notifications-snooze]")
    page.keyboard.press("Enter")  # the choices open, the first focused
    expect(snooze).to_have_attribute("aria-expanded", "true")
    expect(page.locator(f"{in_item} [data-notifications-snooze-until=later]")).to_be_focused()
    page.keyboard.press("Escape")  # they close; the list stays open
    expect(snooze).to_have_attribute("aria-expanded", "false")
    expect(page.locator(f"{in_item} [data-notifications-snooze-choices]")).to_be_hidden()
    expect(snooze).to_be_focused()
    expect(alice.panel).to_be_visible()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(page.locator(f"{in_item} [data-notifications-snooze-until=tomorrow]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(second).to_have_count(0)
    expect(alice.items).to_have_count(1)  # the welcome stays
    expect(alice.button).to_be_focused()

    page.keyboard.press("Escape")
    expect(alice.panel).to_be_hidden()
    expect(alice.button).to_have_attribute("aria-expanded", "false")
    expect(alice.button).to_be_focused()
    page.keyboard.press("Space")  # and opens again from the bell
    expect(alice.panel).to_be_visible()


def test_live_region_announces_the_new_count(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    region = alice.page.locator("[data-notifications] [aria-live=polite][role=status]").filter(
        has_text="new notification"
    )
    expect(region).to_have_text("1 new notification")
    expect(alice.button).to_have_attribute("aria-label", "Notifications, 1 new")

    server.notify("alice", "news")

    expect(region).to_have_text("2 new notifications")
    expect(alice.button).to_have_attribute("aria-label", "Notifications, 2 new")


def test_a_toast_does_not_take_the_focus(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    page = alice.page
    page.fill("#id_verb", "")
    page.focus("#id_verb")
    page.keyboard.type("half typed")

    server.notify("alice", "arrives while typing")

    expect(alice.toasts.filter(has_text="arrives while typing")).to_have_count(1)
    expect(page.locator("#id_verb")).to_be_focused()
    page.keyboard.type(" on")
    expect(page.locator("#id_verb")).to_have_value("half typed on")


def test_axe_finds_nothing_on_the_home_page_with_the_list_closed(login: Login, axe: Path) -> None:
    alice = login("alice")
    expect(alice.badge).to_be_visible()  # the welcome is new: axe checks the badge's contrast too
    assert violations(alice.page, axe) == []


def test_axe_finds_nothing_on_the_home_page_with_the_list_open(
    login: Login, server: DemoServer, axe: Path
) -> None:
    alice = login("alice")
    server.notify("alice", "read me", "--description", "with a description")
    expect(alice.items).to_have_count(2)
    alice.open_panel()
    assert violations(alice.page, axe) == []


def test_axe_finds_nothing_with_a_snoozes_choices_open(login: Login, axe: Path) -> None:
    alice = login("alice")
    alice.open_panel()
    alice.items.first.locator("[data-notifications-snooze]").click()
    expect(alice.items.first.locator("[data-notifications-snooze-choices]")).to_be_visible()
    assert violations(alice.page, axe) == []


def test_axe_finds_nothing_on_the_preferences_page(login: Login, server: DemoServer, axe: Path) -> None:
    alice = login("alice")
    alice.page.goto(server.url("/preferences/"))
    alice.wait_connected()
    assert violations(alice.page, axe) == []


LOOKS = """(element) => {
  const style = getComputedStyle(element);
  return ["background-color", "color", "border-radius", "font-weight", "padding-top", "padding-left", "font-family"]
    .map((name) => [name, style.getPropertyValue(name)]);
}"""


def test_the_preferences_save_button_looks_like_the_demos_buttons(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    send = alice.page.locator("[data-send-form] button[type=submit]").evaluate(LOOKS)
    alice.page.goto(server.url("/preferences/"))
    save = alice.page.locator("[data-notifications-preferences-form] button[type=submit]")
    expect(save).to_be_visible()
    assert save.evaluate(LOOKS) == send
    assert dict(send)["background-color"] not in ("rgba(0, 0, 0, 0)", "rgb(239, 239, 239)")  # not the browser's


def test_axe_finds_nothing_on_the_home_page_with_a_toast(login: Login, server: DemoServer, axe: Path) -> None:
    alice = login("alice")
    server.notify("alice", "toasted", "--description", "with a description")
    expect(alice.toasts.filter(has_text="toasted")).to_have_count(1)
    assert violations(alice.page, axe) == []


def test_axe_finds_nothing_on_the_hq_page(login: Login, server: DemoServer, axe: Path) -> None:
    """The demo's page written for django-notifications-hq (its tags and notify.js)."""
    alice = login("alice")
    server.notify("alice", "on the hq page")
    alice.page.goto(server.url("/hq/"))
    expect(alice.page.locator(".live_notify_list li").filter(has_text="on the hq page")).to_have_count(1)
    assert violations(alice.page, axe) == []


def test_axe_finds_nothing_on_the_notifications_page(login: Login, server: DemoServer, axe: Path) -> None:
    alice = login("alice")
    alice.page.goto(server.url("/notifications/"))
    expect(alice.page.locator("[data-notification-id]")).to_have_count(1)
    assert violations(alice.page, axe) == []
