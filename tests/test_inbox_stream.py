"""
Inbox states on the stream: seen, archived and woken snoozes reach every open
stream of the user once, live or in the replay after a reconnect.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications import api

from .test_read_replay import sentinel

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

WAIT = 15.0


def states(stream, state: str) -> list[dict]:
    return [e.json for e in stream.of("read") if e.json.get("state") == state]


def test_seen_and_archive_reach_every_stream_of_the_user(browser, make_user):
    alice = make_user()
    tab = browser(alice)
    one, two = tab.stream().connected(), tab.stream().connected()
    nid = sentinel(one, alice)
    two.wait_for(lambda s: nid in s.notification_ids(), timeout=WAIT)
    assert tab.post("/notifications/api/seen/", json={"ids": [nid]}).status_code == 200
    assert tab.post(f"/notifications/api/{nid}/archive/").status_code == 200
    for stream in (one, two):
        stream.wait_for(lambda s: bool(states(s, "archived")), timeout=WAIT)
        assert [e["ids"] for e in states(stream, "seen")] == [[nid]]
        assert states(stream, "archived")[0]["unseen_count"] == 0


def test_a_snoozed_item_wakes_live_once_on_every_stream(browser, make_user):
    alice = make_user()
    tab = browser(alice)
    one, two = tab.stream().connected(), tab.stream().connected()
    nid = sentinel(one, alice)
    until = (timezone.now() + timedelta(seconds=1)).isoformat()
    assert tab.post(f"/notifications/api/{nid}/snooze/", json={"until": until}).status_code == 200
    for stream in (one, two):
        stream.wait_for(lambda s: bool(states(s, "woken")), timeout=WAIT)
    later = sentinel(one, alice, "after the wake")
    two.wait_for(lambda s: later in s.notification_ids(), timeout=WAIT)
    for stream in (one, two):
        (woken,) = states(stream, "woken")
        assert [n["id"] for n in woken["items"]] == [nid] and woken["unseen_count"] == 1


def test_a_wake_missed_while_away_comes_once_on_reconnect(browser, make_user):
    alice = make_user()
    tab = browser(alice)
    first = tab.stream().connected()
    nid = sentinel(first, alice)
    api.snooze(alice, [nid], timezone.now() + timedelta(minutes=5))
    first.wait_for(lambda s: bool(states(s, "snoozed")), timeout=WAIT)
    cursor = first.last_id
    first.close()

    api.wake_due(timezone.now() + timedelta(minutes=10))
    second = tab.stream(last_event_id=cursor).connected()
    sentinel(second, alice, "after the reconnect")
    assert [[n["id"] for n in e["items"]] for e in states(second, "woken")] == [[nid]]
    cursor = second.last_id
    second.close()

    third = tab.stream(last_event_id=cursor).connected()
    sentinel(third, alice, "after another reconnect")
    assert states(third, "woken") == [] and not third.of("reset")
