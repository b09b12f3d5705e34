"""
A tab that was disconnected while its user read a notification elsewhere
shows the read state once it reconnects, without a reload.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .demo import Bell, DemoServer

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]
RECONNECT_MS = 45_000  # backoff is capped at 30 s, plus jitter and the server's start

MARK_READ = """
from django.contrib.auth import get_user_model
from notifications import api
alice = get_user_model().objects.get(username="alice")
api.mark_read(alice, api.visible(alice).filter(verb="read while the server was down").values_list("id", flat=True))
"""


def test_a_read_made_while_the_server_was_down_shows_after_the_reconnect(
    login: Login, server: DemoServer
) -> None:
    alice = login("alice")
    server.notify("alice", "read while the server was down")
    item = alice.item("read while the server was down")
    expect(item).to_have_attribute("data-unread", "1")
    expect(alice.button).to_have_attribute("aria-label", "Notifications, 2 new")
    lists: list[str] = []
    alice.page.on("request", lambda r: lists.append(r.url) if "/api/?" in r.url else None)

    server.kill()
    expect(alice.status).to_have_attribute("data-state", "reconnecting")
    server.manage("shell", "-c", MARK_READ)
    server.start()

    expect(alice.status).to_have_attribute("data-state", "connected", timeout=RECONNECT_MS)
    expect(item).to_have_attribute("data-unread", "0")
    expect(alice.button).to_have_attribute("aria-label", "Notifications, 1 new")
    assert lists == []  # replayed, not reloaded
