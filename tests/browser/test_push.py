"""
Web Push in Chromium: the app's service worker shows a push delivered through
the DevTools protocol (no push service needed), with the group key as its tag,
and a click on it (dispatched inside the worker, to the worker's own handler:
DevTools cannot click a system notification) marks it read through its signed
read_url, closes it and opens its URL.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Page, Response, Worker, expect

from .demo import Bell, DemoServer

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]

SW = "/static/notifications/sw.js"

# Prints, as JSON, the push payloads (notifications.push.payload) of new
# comment notifications for alice, one per (post title, url).
PAYLOADS = """
import json
from django.contrib.auth import get_user_model
from notifications import api, push
from notifications.kinds import get_kind
from project.models import Post

alice = get_user_model().objects.get(username="alice")
payloads = []
for title, url in {notices!r}:
    post = Post.objects.get(title=title)
    (row,) = api.notify(alice, "commented", actor=alice, target=post, kind="comment", url=url)
    payloads.append(push.payload(row, get_kind("comment")))
print(json.dumps(payloads))
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

# Run inside the service worker: what a click on the notification tagged
# ``tag`` does there. The event goes to the worker's own listener, unchanged.
# Spies (which still make the real calls) record in ``self.windowCalls`` each
# window the worker focuses or opens, and how the browser answered; errors
# and unhandled rejections are kept in ``self.clickTrouble``.
#
# Chromium lets a worker focus or open a window only while it handles a real
# click: on this constructed event ``waitUntil`` throws and ``focus()`` and
# ``openWindow()`` are refused with InvalidAccessError ("Not allowed to...").
CLICK = """
async (tag) => {
  if (!self.clickTrouble) {
    const trouble = [];
    self.addEventListener("error", (e) => trouble.push(`error: ${e.message}`));
    self.addEventListener("unhandledrejection", (e) => trouble.push(`rejection: ${e.reason}`));
    self.clickTrouble = trouble;
    const calls = [];
    const spy = (prototype, name, url) => {
      const real = prototype[name];
      prototype[name] = function (...args) {
        const call = {call: name, url: url(this, args), outcome: null};
        calls.push(call);
        const answer = real.apply(this, args);
        answer.then(() => { call.outcome = "done"; }, (e) => { call.outcome = `${e.name}: ${e.message}`; });
        return answer;
      };
    };
    spy(Clients.prototype, "openWindow", (clients, [url]) => new URL(url, self.location.href).href);
    spy(WindowClient.prototype, "focus", (client) => client.url);
    self.windowCalls = calls;
  }
  const [notification] = await self.registration.getNotifications({tag});
  if (!notification) return false;
  self.dispatchEvent(new NotificationEvent("notificationclick", {notification}));
  return true;
}
"""


def payloads(server: DemoServer, *notices: tuple[str, str]) -> list[dict[str, Any]]:
    """Notify alice of a comment on each (post title, url); returns the pushes' payloads."""
    out = server.manage("shell", "-c", PAYLOADS.format(notices=notices))
    found: list[dict[str, Any]] = json.loads(out.strip().splitlines()[-1])
    return found


def unread(server: DemoServer, *ids: int) -> dict[int, bool]:
    """Each notification's ``unread``, read straight from the server's SQLite file."""
    marks = ",".join("?" * len(ids))
    with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True) as db:
        rows = db.execute(f"SELECT id, unread FROM notifications_notification WHERE id IN ({marks})", ids)
        return {nid: bool(flag) for nid, flag in rows}


class Pushes:
    """The app's service worker registered on ``page``, and pushes delivered to it through DevTools."""

    def __init__(self, page: Page, server: DemoServer):
        self.page = page
        self.server = server
        self.cdp = page.context.new_cdp_session(page)
        registrations: list[dict[str, Any]] = []
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
        self.cdp.send("ServiceWorker.enable")
        assert page.evaluate(REGISTER, SW).endswith(SW)
        deadline = time.monotonic() + 10
        while not registrations and time.monotonic() < deadline:
            page.wait_for_timeout(50)
        # The browser is shared across tests: take this server's registration,
        # not one left by an earlier test's page on another port.
        origin = server.url("")
        while time.monotonic() < deadline:
            mine = [r for r in registrations if not r["isDeleted"] and r["scopeURL"].startswith(origin)]
            if mine:
                break
            page.wait_for_timeout(50)
        assert mine, f"no service worker registration for {origin}: {registrations}"
        self.registration_id = mine[-1]["registrationId"]

    def deliver(self, payload: dict[str, Any]) -> None:
        self.cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": self.server.url("").rstrip("/"),
                "registrationId": self.registration_id,
                "data": json.dumps(payload),
            },
        )

    def show(self, *pushes: dict[str, Any], timeout: float = 30) -> list[dict[str, Any]]:
        """
        Deliver ``pushes`` one after the other, each once the previous one is
        shown; what the worker shows then. A delivery DevTools drops (seen
        when two follow each other closely) is repeated after a few seconds:
        a push of the same tag replaces, so a repeat shows nothing twice.
        """
        deadline = time.monotonic() + timeout
        for payload in pushes:
            while True:
                self.deliver(payload)
                retry = min(deadline, time.monotonic() + 5)
                while time.monotonic() < retry and not self._has(payload):
                    self.page.wait_for_timeout(100)
                if self._has(payload) or time.monotonic() >= deadline:
                    break
        return self.shown()

    def _has(self, payload: dict[str, Any]) -> bool:
        return any(n["tag"] == payload["tag"] and n["data"]["read_url"] == payload["read_url"] for n in self.shown())

    def shown(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.page.evaluate(SHOWN, SW)
        return found

    def worker(self) -> Worker:
        """The running service worker, as Playwright sees it."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            workers = [w for w in self.page.context.service_workers if w.url.endswith(SW)]
            if workers:
                return workers[-1]
            self.page.wait_for_timeout(50)
        raise AssertionError(f"No service worker for {SW} in {self.page.context.service_workers}")

    def click(self, tag: str) -> None:
        assert self.worker().evaluate(CLICK, tag), f"no notification tagged {tag!r} to click"

    def trouble(self) -> list[str]:
        found: list[str] = self.worker().evaluate("self.clickTrouble || []")
        return found

    def window_calls(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        """The windows the worker focused or opened, once ``count`` calls have an outcome."""
        deadline = time.monotonic() + timeout
        calls: list[dict[str, Any]] = self.worker().evaluate("self.windowCalls")
        while not (len(calls) >= count and all(c["outcome"] for c in calls)) and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
            calls = self.worker().evaluate("self.windowCalls")
        return calls


def read_responses(page: Page) -> list[Response]:
    """Every response to a push read_url the browser context gets from now on (the worker's included)."""
    responses: list[Response] = []
    page.context.on("response", lambda r: "/notifications/api/push/read/" in r.url and responses.append(r))
    return responses


def test_the_service_worker_shows_a_delivered_push_with_its_group_as_tag(login: Login, server: DemoServer) -> None:
    (payload,) = payloads(server, ("Post 1", "/"))
    alice = login("alice", permissions=["notifications"])
    pushes = Pushes(alice.page, server)
    # Delivered through DevTools, which sometimes drops the first delivery to a
    # worker just registered (seen once in CI): ``show`` delivers it again
    # until it is shown, and a push of the same tag replaces, so one shows.
    assert pushes.show(payload) == [
        {
            "title": "Comments",
            "body": payload["body"],
            "tag": payload["tag"],
            "data": {"url": "/", "read_url": payload["read_url"]},
        }
    ]
    assert payload["tag"].startswith("comment:target:")


def test_a_click_on_a_push_marks_it_read_closes_it_and_focuses_or_opens_its_page(
    login: Login, server: DemoServer
) -> None:
    # One push for a page alice has open (focused on click), one for another (opened).
    here, elsewhere = payloads(server, ("Post 1", "/"), ("Post 2", "/preferences/"))
    ids = [here["id"], elsewhere["id"]]
    alice = login("alice", permissions=["notifications"])
    page = alice.page
    assert page.url == server.url("/")
    pushes = Pushes(page, server)
    assert sorted(n["tag"] for n in pushes.show(here, elsewhere)) == sorted([here["tag"], elsewhere["tag"]])
    assert unread(server, *ids) == {here["id"]: True, elsewhere["id"]: True}
    responses = read_responses(page)

    pushes.click(here["tag"])
    pushes.click(elsewhere["tag"])

    deadline = time.monotonic() + 10
    while (any(unread(server, *ids).values()) or len(responses) < 2) and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert unread(server, *ids) == {here["id"]: False, elsewhere["id"]: False}, pushes.trouble()
    assert sorted((r.url, r.status, r.json()["marked"]) for r in responses) == sorted(
        (server.url(p["read_url"]), 200, [p["id"]]) for p in (here, elsewhere)
    )
    assert pushes.shown() == []  # both closed
    calls = sorted(pushes.window_calls(2), key=lambda c: c["call"])  # the two clicks run concurrently
    assert [(c["call"], c["url"]) for c in calls] == [
        ("focus", server.url("/")),  # the tab alice has open, not a new one
        ("openWindow", server.url("/preferences/")),
    ], pushes.trouble()
    # The browser's answer: done on a real click, refused on this constructed one.
    assert calls[0]["outcome"] in ("done", "InvalidAccessError: Not allowed to focus a window.")
    assert calls[1]["outcome"] in ("done", "InvalidAccessError: Not allowed to open a window.")
    if calls[1]["outcome"] == "done":
        expect(page.context.pages[-1]).to_have_url(server.url("/preferences/"))


def test_a_click_on_a_push_with_a_tampered_read_url_marks_nothing_read(login: Login, server: DemoServer) -> None:
    first, second = payloads(server, ("Post 1", "/"), ("Post 2", "/"))
    prefix = "/notifications/api/push/read/"
    token_of = {p["id"]: p["read_url"].removeprefix(prefix).rstrip("/") for p in (first, second)}
    # The second notification's id and recipient under the first one's timestamp and signature...
    stamp_and_signature = token_of[first["id"]].partition(":")[2]
    forged = token_of[second["id"]].partition(":")[0] + ":" + stamp_and_signature
    assert forged != token_of[second["id"]]
    # ...and the second one's own token with one character of its signature changed.
    stamp_value, _, signature = token_of[second["id"]].rpartition(":")
    middle = len(signature) // 2
    broken = f"{stamp_value}:{signature[:middle]}{'A' if signature[middle] != 'A' else 'B'}{signature[middle + 1 :]}"
    tampered = [
        {**first, "read_url": f"{prefix}{forged}/"},
        {**second, "read_url": f"{prefix}{broken}/"},
    ]
    alice = login("alice", permissions=["notifications"])
    page = alice.page
    pushes = Pushes(page, server)
    shown = pushes.show(*tampered)
    assert sorted(n["data"]["read_url"] for n in shown) == sorted(p["read_url"] for p in tampered)
    responses = read_responses(page)

    for payload in tampered:
        pushes.click(payload["tag"])

    deadline = time.monotonic() + 10
    while len(responses) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert sorted((r.url, r.status) for r in responses) == sorted(
        (server.url(p["read_url"]), 400) for p in tampered
    ), pushes.trouble()
    assert unread(server, first["id"], second["id"]) == {first["id"]: True, second["id"]: True}
    assert pushes.shown() == []


def test_the_bell_offers_notifications_on_this_device_when_push_is_configured(login: Login) -> None:
    alice = login("alice")
    alice.open_panel()
    button = alice.page.locator("[data-notifications-push]")
    expect(button).to_be_visible()
    expect(button).to_have_text("Notify me on this device")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def p256_public_key() -> str:
    """A fresh P-256 public key, uncompressed (65 bytes), base64url: what browsers send as p256dh."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return b64url(key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def vapid_env() -> dict[str, str]:
    """A VAPID pair of the server's own, through the environment (as ``notifications_vapid_keys`` makes them)."""
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {
        "NOTIFICATIONS_VAPID_PUBLIC_KEY": b64url(public),
        "NOTIFICATIONS_VAPID_PRIVATE_KEY": b64url(key.private_numbers().private_value.to_bytes(32, "big")),
    }


# Chromium's push service (FCM) is out of reach here: only ``subscribe`` and
# ``getSubscription`` are replaced, by a subscription the browser "has" from
# the first until ``unsubscribe()``. Every ``subscribe`` call's options are
# kept in ``window.fakePush.calls``; the rest (button, permission, the POSTs
# with their CSRF token, the views) is the page's own code.
FAKE_PUSH_MANAGER = """
(() => {
  const info = %s;
  const state = {current: null, calls: []};
  Object.defineProperty(window, "fakePush", {value: state});
  const make = () => ({
    endpoint: info.endpoint,
    expirationTime: null,
    options: null,
    getKey: () => null,
    toJSON: () => ({endpoint: info.endpoint, expirationTime: null, keys: {...info.keys}}),
    unsubscribe: async () => { state.current = null; return true; },
  });
  PushManager.prototype.subscribe = async function (options) {
    const key = options && options.applicationServerKey;
    state.calls.push({
      userVisibleOnly: options && options.userVisibleOnly,
      applicationServerKey: key ? btoa(String.fromCharCode(...new Uint8Array(key.buffer || key)))
        .replace(/[+]/g, "-").replace(/[/]/g, "_").replace(/=+$/, "") : null,
    });
    state.current = state.current || make();
    return state.current;
  };
  PushManager.prototype.getSubscription = async function () { return state.current; };
})();
"""

# Prints, as JSON, alice's push subscriptions: [[endpoint, p256dh, auth], ...].
SUBSCRIPTIONS = """
import json
from notifications.models import PushSubscription
rows = PushSubscription.objects.filter(user__username="alice").order_by("id")
print(json.dumps([[s.endpoint, s.p256dh, s.auth] for s in rows]))
"""


def subscriptions(server: DemoServer) -> list[list[str]]:
    """Alice's push subscriptions in the server's database: [endpoint, p256dh, auth] each."""
    found: list[list[str]] = json.loads(server.manage("shell", "-c", SUBSCRIPTIONS).strip().splitlines()[-1])
    return found


def wait_subscriptions(server: DemoServer, page: Page, count: int, timeout: float = 20) -> list[list[str]]:
    deadline = time.monotonic() + timeout
    found = subscriptions(server)
    while len(found) != count and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        found = subscriptions(server)
    return found


# The fake subscription's endpoint is the demo server itself: allowed by its address.
@pytest.mark.parametrize(
    "server", [{**vapid_env(), "NOTIFICATIONS_PUSH_SERVICES": "127.0.0.1"}], indirect=True, ids=["vapid-keys"]
)
def test_the_demo_turns_device_notifications_on_and_off(login: Login, server: DemoServer) -> None:
    endpoint = server.url(f"/push/{secrets.token_urlsafe(16)}")
    keys = {"p256dh": p256_public_key(), "auth": b64url(secrets.token_bytes(16))}
    fake = FAKE_PUSH_MANAGER % json.dumps({"endpoint": endpoint, "keys": keys})
    alice = login("alice", permissions=["notifications"], init_script=fake)
    page = alice.page
    posts: list[tuple[str, str, str | None]] = []
    page.on(
        "request",
        lambda r: "/notifications/api/push/" in r.url
        and posts.append((r.url, r.method, r.headers.get("x-csrftoken"))),
    )
    alice.open_panel()
    button = page.locator("[data-notifications-push]")
    expect(button).to_be_visible()
    expect(button).to_have_text("Notify me on this device")
    assert subscriptions(server) == []

    button.click()

    expect(button).to_have_text("Stop notifying this device")
    assert wait_subscriptions(server, page, 1) == [[endpoint, keys["p256dh"], keys["auth"]]]
    # The page subscribed with the server's own VAPID public key, for visible pushes only.
    assert page.evaluate("window.fakePush.calls") == [
        {"userVisibleOnly": True, "applicationServerKey": server.env["NOTIFICATIONS_VAPID_PUBLIC_KEY"]}
    ]

    button.click()

    expect(button).to_have_text("Notify me on this device")
    assert wait_subscriptions(server, page, 0) == []
    assert page.evaluate("window.fakePush.current") is None  # the browser unsubscribed too
    csrf = page.locator("[data-notifications]").get_attribute("data-csrf-token")
    assert posts == [
        (server.url("/notifications/api/push/subscribe/"), "POST", csrf),
        (server.url("/notifications/api/push/unsubscribe/"), "POST", csrf),
    ]
