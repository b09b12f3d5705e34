"""
The client's honesty about its connection: reconnecting, resuming, resetting,
and backing off when the server is full.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Request, Response, expect

from .demo import NO_WEB_LOCKS, Bell, DemoServer

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]
RECONNECT_MS = 45_000  # backoff is capped at 30 s, plus jitter and the server's start


def stream_requests(bell: Bell) -> list[Request]:
    """Every stream request the tab makes from now on."""
    requests: list[Request] = []
    bell.page.on("request", lambda r: requests.append(r) if "/stream/" in r.url else None)
    return requests


def test_after_a_server_crash_missed_notifications_arrive_exactly_once(
    login: Login, server: DemoServer
) -> None:
    alice = login("alice")
    server.notify("alice", "before the crash")
    expect(alice.item("before the crash")).to_have_count(1)
    requests = stream_requests(alice)

    server.kill()
    expect(alice.status).to_have_attribute("data-state", "reconnecting")
    expect(alice.status).to_have_text("reconnecting")
    server.notify("alice", "missed while down (1)")
    server.notify("alice", "missed while down (2)")
    server.start()

    expect(alice.status).to_have_attribute("data-state", "connected", timeout=RECONNECT_MS)
    expect(alice.status).to_have_text("connected")
    # A notification sent after the restart arrives after anything replayed.
    server.notify("alice", "after the restart")
    expect(alice.item("after the restart")).to_have_count(1)
    expect(alice.item("missed while down (1)")).to_have_count(1)
    expect(alice.item("missed while down (2)")).to_have_count(1)
    expect(alice.item("before the crash")).to_have_count(1)
    expect(alice.items).to_have_count(5)
    expect(alice.badge).to_have_text("5")
    expect(alice.items.locator(".ntf-verb")).to_have_text(
        [
            "after the restart",
            "missed while down (2)",
            "missed while down (1)",
            "before the crash",
            "welcome to the demo",
        ]
    )
    assert requests, "the client never reconnected"
    assert all(r.headers.get("last-event-id") for r in requests), "a reconnect did not resume"


@pytest.mark.parametrize(
    "server", [{"NOTIFICATIONS_REPLAY_LIMIT": "2"}], indirect=True, ids=["replay-limit-2"]
)
def test_too_far_behind_the_client_reloads_its_list(login: Login, server: DemoServer) -> None:
    alice = login("alice")
    api_calls: list[str] = []
    alice.page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)

    server.kill()
    expect(alice.status).to_have_attribute("data-state", "reconnecting")
    server.manage("notify", "--user", "alice", "missed in a burst", "--count", "5")
    server.start()

    expect(alice.status).to_have_attribute("data-state", "connected", timeout=RECONNECT_MS)
    expect(alice.item("missed in a burst")).to_have_count(5)
    expect(alice.badge).to_have_text("6")
    assert any("page_size=" in url for url in api_calls), "the list was not reloaded from the API"
    expect(alice.toasts).to_have_count(0)  # a reset is no news: no toast storm


@pytest.mark.parametrize(
    "server",
    [{"NOTIFICATIONS_MAX_STREAMS_PER_USER": "1"}],
    indirect=True,
    ids=["one-stream-per-user"],
)
def test_a_full_server_is_retried_after_retry_after_seconds(login: Login) -> None:
    # Tabs of one browser share one stream; without Web Locks each has its own.
    alice1 = login("alice", init_script=NO_WEB_LOCKS)
    refused: list[float] = []
    retried: list[float] = []

    def on_response(response: Response) -> None:
        if "/stream/" in response.url and response.status == 503:
            refused.append(time.monotonic())

    page = alice1.page.context.new_page()
    page.on("response", on_response)
    page.on(
        "request",
        lambda r: retried.append(time.monotonic()) if refused and "/stream/" in r.url else None,
    )
    page.goto(alice1.page.url)
    alice2 = Bell(page)
    expect(alice2.status).to_have_attribute("data-state", "reconnecting")
    assert refused

    alice1.page.close()  # frees the one stream alice may have
    expect(alice2.status).to_have_attribute("data-state", "connected", timeout=20_000)
    assert retried[0] - refused[0] >= 9.5  # the server said Retry-After: 10


SHORT_LIFE = pytest.mark.parametrize(
    "server", [{"NOTIFICATIONS_MAX_STREAM_LIFE": "2"}], indirect=True, ids=["stream-life-2s"]
)


@SHORT_LIFE
def test_a_stream_at_the_end_of_its_life_is_resumed_seamlessly(
    login: Login, server: DemoServer
) -> None:
    alice = login("alice")
    with alice.page.expect_request(lambda r: "/stream/" in r.url) as resumed:
        pass  # the server ends each stream after about 2 s
    assert resumed.value.headers.get("last-event-id")
    server.notify("alice", "after the stream's end")
    expect(alice.item("after the stream's end")).to_have_count(1)
    expect(alice.status).to_have_attribute("data-state", "connected")


@SHORT_LIFE
def test_after_logging_out_in_another_tab_the_status_says_signed_out(login: Login) -> None:
    alice1 = login("alice")
    alice2 = alice1.new_tab()
    alice2.page.get_by_role("button", name="Log out").click()
    expect(alice2.page.locator("#id_username")).to_be_visible()

    expect(alice1.status).to_have_attribute("data-state", "signed-out")
    expect(alice1.status).to_have_text("signed out")
