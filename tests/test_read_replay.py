"""
Read state survives a reconnect: a read or unread change made while a tab's
stream was closed (a deploy, a network blip, the stream's maximum life) comes
in the replay from Last-Event-ID, exactly once, and a read change the stream
delivered live is not replayed again.
"""

from __future__ import annotations

import pytest

from notifications import api

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

WAIT = 10.0


def sentinel(stream, user, verb: str = "sentinel") -> int:
    """Notify ``user`` and wait for it on ``stream``: everything sent before it has arrived too."""
    nid = api.notify(user, verb)[0].pk
    stream.wait_for(lambda s: nid in s.notification_ids(), timeout=WAIT)
    return nid


def reads(stream) -> list[tuple[object, int]]:
    """The stream's read events as (ids, unread count)."""
    return [(e.json["ids"], e.json["unread_count"]) for e in stream.of("read")]


def test_a_read_change_made_while_the_stream_was_closed_comes_once_on_reconnect(browser, make_user):
    alice = make_user()
    tab = browser(alice)
    first = tab.stream().connected()
    nid = sentinel(first, alice, "read while away")
    cursor = first.last_id
    first.close()

    assert tab.post(f"/notifications/api/{nid}/read/").status_code == 200
    second = tab.stream(last_event_id=cursor).connected()
    later = sentinel(second, alice, "after the reconnect")
    assert reads(second) == [([nid], 0)] and not second.of("reset")
    assert second.notification_ids() == [later]
    second.close()

    third = tab.stream(last_event_id=second.last_id).connected()
    sentinel(third, alice, "after another reconnect")
    assert reads(third) == [] and not third.of("reset")


def test_a_read_change_delivered_live_is_not_replayed_after_a_reconnect(browser, make_user):
    alice = make_user()
    tab = browser(alice)
    first = tab.stream().connected()
    nid = sentinel(first, alice)
    assert tab.post(f"/notifications/api/{nid}/read/").status_code == 200
    first.wait_for(lambda s: bool(s.of("read")), timeout=WAIT)
    cursor = first.last_id
    first.close()

    second = tab.stream(last_event_id=cursor).connected()
    sentinel(second, alice, "after the reconnect")
    assert reads(second) == [] and not second.of("reset")


def test_missed_reads_and_notifications_together_reset_the_list(browser, make_user):
    """
    Each read event carries the badge of its own moment: beside missed rows
    the badge would be wrong, so the client reloads list and badge instead.
    """
    alice = make_user()
    tab = browser(alice)
    first = tab.stream().connected()
    old = sentinel(first, alice, "read while away")
    cursor = first.last_id
    first.close()

    api.notify(alice, "sent while away")
    assert tab.post(f"/notifications/api/{old}/read/").status_code == 200
    second = tab.stream(last_event_id=cursor).connected()
    assert second.of("reset") and not second.of("read") and not second.notifications()
    later = sentinel(second, alice, "after the reconnect")
    assert second.notification_ids() == [later]


def test_an_unread_change_made_while_away_comes_on_reconnect(browser, make_user):
    alice = make_user()
    tab = browser(alice)
    first = tab.stream().connected()
    nid = sentinel(first, alice)
    api.mark_read(alice, [nid])
    first.wait_for(lambda s: bool(s.of("read")), timeout=WAIT)
    cursor = first.last_id
    first.close()

    api.mark_unread(alice, [nid])
    second = tab.stream(last_event_id=cursor).connected()
    sentinel(second, alice, "after the reconnect")
    (event,) = second.of("read")
    assert event.json["ids"] == [nid] and event.json["unread"] is True


def test_a_replay_that_cannot_tell_which_read_changes_were_pruned_resets(browser, make_user):
    from datetime import timedelta

    from django.utils import timezone

    from notifications import feed
    from notifications.models import ReadEvent

    alice = make_user()
    tab = browser(alice)
    first = tab.stream().connected()
    nid = sentinel(first, alice)
    cursor = first.last_id
    first.close()

    api.mark_read(alice, [nid])
    api.mark_unread(alice, [nid])
    ReadEvent.objects.filter(user=alice).update(created=timezone.now() - timedelta(hours=2))
    assert feed.prune_read_events(3600) == 1  # the newest old one stays, for this
    second = tab.stream(last_event_id=cursor).connected()
    assert second.of("reset") and not second.of("read")


@pytest.mark.skipif(
    "postgres" in __import__("os").environ.get("DATABASE_URL", ""),
    reason="On PostgreSQL one snapshot orders notifications and read events: every cursor tells",
)
def test_an_id_cursor_without_read_events_resets_only_when_there_were_read_changes(browser, make_user):
    alice, bob = make_user(), make_user()
    for user in (alice, bob):
        tab = browser(user)
        first = tab.stream().connected()
        nid = sentinel(first, user)
        cursor = first.last_id.split("+")[0]  # as a client from before read events were replayed
        first.close()
        if user is alice:
            api.mark_read(alice, [nid])
        second = tab.stream(last_event_id=cursor).connected()
        sentinel(second, user, "after the reconnect")
        assert bool(second.of("reset")) is (user is alice)


def test_a_batched_replay_brings_each_stream_the_read_changes_its_own_replay_would(make_user):
    from notifications import feed
    from notifications.models import Audiences

    alice, bob = make_user(), make_user()
    first, second = (api.notify(user, "to be read")[0].pk for user in (alice, bob))
    start = feed.cursor_now()
    api.mark_read(alice, [first])
    api.mark_unread(alice, [first])
    api.mark_read(bob, [second])
    requests = [
        (Audiences.of(alice), start, 10),
        (Audiences.of(bob), start, 10),
        (Audiences.of(alice), feed.cursor_now(), 10),
    ]
    batched = feed.replay_many(requests)
    alone = [feed.replay(*request) for request in requests]
    assert [(r.rows, r.reads, r.usable) for r in batched] == [(r.rows, r.reads, r.usable) for r in alone]
    assert [len(r.reads) for r in batched] == [2, 1, 0]
