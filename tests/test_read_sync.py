"""
Read state reaches every open stream of the user from the database, so tabs
converge within a poll interval even when the channel layer is down.
"""

from __future__ import annotations

import time

import pytest

from notifications import api

from .services import PrivateRedis

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]


def test_read_state_reaches_other_tabs_without_the_channel_layer(make_server, make_user, browser):
    gone = PrivateRedis().start()
    gone.stop()  # a Redis that is not there: every layer call fails
    srv = make_server(REDIS_URL=gone.url, NOTIFICATIONS_POLL_INTERVAL="1")
    user = make_user()
    tab = browser(user, on=srv)
    other_tab = tab.stream().connected()
    nid = api.notify(user, "to be read")[0].pk
    other_tab.wait_for(lambda s: nid in s.notification_ids(), timeout=5)

    assert tab.post(f"/notifications/api/{nid}/read/").status_code == 200
    started = time.monotonic()
    other_tab.wait_for(lambda s: bool(s.of("read")), timeout=5)
    assert time.monotonic() - started < 2.5  # one poll interval, and some
    (event,) = other_tab.of("read")
    assert event.json["ids"] == [nid] and event.json["unread_count"] == 0
    assert "Channel layer unavailable" in srv.log.read_text()
