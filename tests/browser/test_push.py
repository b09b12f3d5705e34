"""
Web Push in Chromium: the app's service worker shows a push delivered through
the DevTools protocol (no push service needed), with the group key as its tag.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .demo import Bell, DemoServer

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]

PAYLOAD = """
from django.contrib.auth import get_user_model
from notifications import api, push
from notifications.kinds import get_kind
from project.models import Post

alice = get_user_model().objects.get(username="alice")
post = Post.objects.get(title="Post 1")
(row,) = api.notify(alice, "commented", actor=alice, target=post, kind="comment", url="/")
print(__import__("json").dumps(push.payload(row, get_kind("comment"))))
"""

# (``serviceWorker.ready`` would wait forever: the worker's scope is its folder.)
REGISTER = """
async (url) => {
  const registration = await navigator.serviceWorker.register(url);
  const worker = registration.installing || registration.waiting || registration.active;
  if (worker.state !== "activated") {
    await new Promise((done) => worker.addEventListener("statechange", () => worker.state === "activated" && done()));
  }
  return registration.active.scriptURL;
}
"""

SHOWN = """
async (url) => {
  const registration = await navigator.serviceWorker.getRegistration(url);
  return (await registration.getNotifications()).map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data}));
}
"""


def test_the_service_worker_shows_a_delivered_push_with_its_group_as_tag(login: Login, server: DemoServer) -> None:
    payload = json.loads(server.manage("shell", "-c", PAYLOAD).strip().splitlines()[-1])
    alice = login("alice", permissions=["notifications"])
    page = alice.page
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    assert page.evaluate(REGISTER, "/static/notifications/sw.js").endswith("/static/notifications/sw.js")
    deadline = time.monotonic() + 10
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    registration = next(r for r in registrations if not r["isDeleted"])
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": server.url("").rstrip("/"), "registrationId": registration["registrationId"], "data": json.dumps(payload)},
    )
    shown: list[dict] = []
    while not shown and time.monotonic() < deadline + 10:
        page.wait_for_timeout(100)
        shown = page.evaluate(SHOWN, "/static/notifications/sw.js")
    assert shown == [
        {
            "title": "Comments",
            "body": payload["body"],
            "tag": payload["tag"],
            "data": {"url": "/", "read_url": payload["read_url"]},
        }
    ]
    assert payload["tag"].startswith("comment:target:")


def test_the_bell_offers_notifications_on_this_device_when_push_is_configured(login: Login) -> None:
    alice = login("alice")
    alice.open_panel()
    button = alice.page.locator("[data-notifications-push]")
    expect(button).to_be_visible()
    expect(button).to_have_text("Notify me on this device")
