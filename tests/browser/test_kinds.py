"""
Kinds in Chromium: the preferences page, a critical kind, and grouping in the bell.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from .demo import Bell, DemoServer, send_from_form

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]

FIFTY_COMMENTS = """
from django.contrib.auth import get_user_model
from notifications import api
from project.models import Post

User = get_user_model()
alice = User.objects.get(username="alice")
post = Post.objects.get(title="Post 1")
for i in range(50):
    fan = User.objects.create(username=f"fan{i:02d}")
    api.notify(alice, "commented", actor=fan, target=post, kind="comment", data={"post": post.title})
"""


def send_kind(bell: Bell, recipient: str, kind: str, verb: str) -> None:
    """Send a notification of a kind through the demo's form."""
    bell.page.select_option("#id_kind", label=kind)
    send_from_form(bell, recipient, verb)


def test_a_kind_switched_off_on_the_preferences_page_no_longer_appears(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    alice.open_panel()
    alice.page.locator("[data-notifications-preferences]").click()
    page = alice.page
    page.wait_for_url(server.url("/preferences/"))
    mention = page.locator("#ntf-mention-in_app")
    expect(mention).to_be_checked()
    mention.uncheck()
    page.get_by_role("button", name="Save preferences").click()
    page.wait_for_url(server.url("/preferences/"))
    expect(page.locator("#ntf-mention-in_app")).not_to_be_checked()

    page.goto(server.url("/"))
    alice = Bell(page)
    alice.wait_connected()
    admin = login("admin")
    send_kind(admin, "alice", "Mentions", "mentioned you in Post 2")
    # A later notification of another kind is a barrier: the stream delivers
    # in order, so had the mention been written, it would be here first.
    send_kind(admin, "alice", "Security alerts (critical)", "signed in from a new device")
    expect(alice.item("signed in from a new device")).to_have_count(1)
    expect(alice.item("mentioned you")).to_have_count(0)
    page.reload()
    alice.wait_connected()
    expect(alice.item("mentioned you")).to_have_count(0)


def test_a_critical_kind_cannot_be_switched_off(login: Login, server: DemoServer) -> None:
    page = login("alice").page
    page.goto(server.url("/preferences/"))
    row = page.locator("tr[data-kind=security]")
    expect(row).to_contain_text("always on")
    boxes = row.locator("input[type=checkbox]")
    expect(boxes).to_have_count(3)
    for i in range(3):
        expect(boxes.nth(i)).to_be_checked()
        expect(boxes.nth(i)).to_be_disabled()


def test_the_preferences_form_works_without_javascript(browser: Browser, server: DemoServer) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(server.url("/login/"))
        page.fill("#id_username", "bob")
        page.fill("#id_password", "bob")
        page.click("button[type=submit]")
        page.goto(server.url("/preferences/"))
        page.locator("#ntf-comment-in_app").uncheck()
        page.locator("#ntf-mention-email").uncheck()
        page.get_by_role("button", name="Save preferences").click()
        page.wait_for_url(server.url("/preferences/"))
        expect(page.locator("#ntf-comment-in_app")).not_to_be_checked()
        expect(page.locator("#ntf-mention-email")).not_to_be_checked()
        expect(page.locator("#ntf-mention-in_app")).to_be_checked()
    finally:
        context.close()


def test_fifty_comments_from_fifty_users_show_one_item_with_the_badge_at_1_in_two_tabs(
    login: Login, server: DemoServer
) -> None:
    alice1 = login("alice")
    alice2 = alice1.new_tab()
    alice1.open_panel()
    alice1.page.get_by_role("button", name="Mark all read").click()  # the welcome notification
    for tab in (alice1, alice2):
        expect(tab.badge).to_be_hidden()

    server.manage("shell", "-c", FIFTY_COMMENTS)

    text = "fan00, fan01 and 48 others commented on Post 1"
    for tab in (alice1, alice2):
        expect(tab.item(text)).to_have_count(1)
        expect(tab.items.filter(has_text="commented")).to_have_count(1)
        expect(tab.item(text).locator(".ntf-count")).to_have_text("50")
        expect(tab.badge).to_have_text("1")
    alice1.page.reload()
    alice1.wait_connected()
    expect(alice1.item(text)).to_have_count(1)
    expect(alice1.items.filter(has_text="commented")).to_have_count(1)
    expect(alice1.badge).to_have_text("1")

    # Reading the group (its one item) reads it in every tab.
    alice1.open_panel()
    alice1.item(text).get_by_role("button", name="Mark read").click()
    for tab in (alice1, alice2):
        expect(tab.badge).to_be_hidden()
        expect(tab.item(text)).to_have_attribute("data-unread", "0")


BUTTON_STYLE = """(button) => {
  const style = getComputedStyle(button);
  return ["background-color", "color", "border-top-color", "border-top-left-radius", "padding-top",
          "padding-left", "font-family", "font-size", "font-weight"].map((name) => [name, style.getPropertyValue(name)]);
}"""


def test_the_preferences_pages_save_like_the_rest_of_the_demo(login: Login, server: DemoServer) -> None:
    """
    The save button looks like the demo's other main buttons (its "Send"), the
    page promises nothing about channels, and following the form's own URL
    gives a page with the form, not a JSON error.
    """
    alice = login("alice")
    page = alice.page
    send = page.get_by_role("button", name="Send", exact=True)
    expected = send.evaluate(BUTTON_STYLE)
    assert dict(expected)["background-color"] not in ("", "rgba(0, 0, 0, 0)")  # a styled button

    for url in ("/preferences/", "/notifications/preferences/"):
        response = page.goto(server.url(url))
        assert response is not None and response.ok
        assert response.headers["content-type"].startswith("text/html")
        save = page.get_by_role("button", name="Save preferences")
        expect(save).to_be_visible()
        assert save.evaluate(BUTTON_STYLE) == expected, url
        expect(page.locator("body")).not_to_contain_text("once those channels exist")
