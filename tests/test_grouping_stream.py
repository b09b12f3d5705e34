"""
Grouping on the stream, against a real server: a grouped update is a new event
that replaces its group's item, replays and reloads show one item with the
right count, and reading the group reaches every tab.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from notifications import api
from project.models import Post

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

FAST = {"NOTIFICATIONS_POLL_INTERVAL": "0.2"}  # rows written by this process, found fast


def shown(stream) -> dict[str, dict]:
    """What a client shows: per group the newest event (the client's rule), by group or id."""
    items: dict[str, dict] = {}
    for n in stream.notifications():
        key = n["group"] or f"id:{n['id']}"
        if key not in items or items[key]["id"] < n["id"]:
            items[key] = n
    return items


def people(count: int) -> list:
    """Users who only act (no password to hash: they never log in)."""
    User = get_user_model()
    start = User.objects.count()
    return [User.objects.create(username=f"actor{start + i}") for i in range(count)]


def comment(recipient, actor, post):
    return api.notify(
        recipient, "commented", actor=actor, target=post, kind="comment", data={"post": post.title}
    )


def test_a_burst_of_1000_shows_one_item_with_count_1000_in_every_tab_within_2s(make_server, browser, make_user):
    server = make_server(**FAST)
    alice = make_user()
    actors = people(20)
    post = Post.objects.create(title="Post 7")
    user = browser(alice, on=server)
    tabs = [user.stream().connected(), user.stream().connected()]

    started = time.monotonic()
    for i in range(1000):
        comment(alice, actors[i % 20], post)
    done = time.monotonic()
    for tab in tabs:
        tab.wait_for(lambda s: [n["count"] for n in shown(s).values()] == [1000], timeout=2.0)
    elapsed = time.monotonic() - done
    (item,) = shown(tabs[0]).values()
    assert item["text"].endswith("and 18 others commented on Post 7")
    ids = tabs[0].notification_ids()
    assert ids == sorted(ids) and len(ids) == len(set(ids))  # in order, once each
    print(f"burst of 1000 written in {done - started:.1f} s; last tab complete {elapsed:.2f} s after the last commit; "
          f"frames per tab: {[len(t.notifications()) for t in tabs]}")
    assert elapsed < 2.0


def test_a_burst_of_1000_sends_at_most_a_few_dozen_frames(make_server, browser, make_user):
    server = make_server(**FAST)
    alice, (bob,) = make_user(), people(1)
    post = Post.objects.create(title="Post 7")
    tab = browser(alice, on=server).stream().connected()
    started = time.monotonic()
    for _ in range(1000):
        comment(alice, bob, post)
    written = time.monotonic() - started
    tab.wait_for(lambda s: [n["count"] for n in shown(s).values()] == [1000], timeout=5.0)
    frames = len(tab.notifications())
    # While rows keep coming, reads space out to BURST_SPACING_MAX (0.5 s), so
    # the frames follow how long the burst took to write (10 s: about 26-30),
    # not its 1,000 rows; a writer that stalls longer than a spacing starts a
    # new ramp of six short waits. Room for a few stalls of a busy machine.
    limit = 20 + int(3 * written)
    print(f"burst of 1000 written in {written:.1f} s: {frames} frames (limit {limit})")
    assert frames <= limit


def test_a_reconnect_with_an_old_cursor_replays_one_item_with_the_right_count(make_server, browser, make_user):
    server = make_server(**FAST)
    alice = make_user()
    actors = people(50)
    post = Post.objects.create(title="Post 7")
    user = browser(alice, on=server)
    first = user.stream().connected()
    cursor = first.last_id
    first.close()

    for actor in actors:
        comment(alice, actor, post)
    second = user.stream(last_event_id=cursor).connected()
    second.wait_for(lambda s: [n["count"] for n in shown(s).values()] == [50], timeout=3.0)
    (item,) = shown(second).values()
    ids = second.notification_ids()
    assert ids == sorted(set(ids))  # once each, in order
    # The replay itself sends the group's newest row only (the live path may
    # still send rows the hub read meanwhile; the client keeps the newest).
    assert second.notifications()[0]["count"] == 50
    assert item["text"] == f"{actors[0].username}, {actors[1].username} and 48 others commented on Post 7"
    # And a page reload: the list shows the same one item.
    page = user.http.get("/notifications/api/").json()
    assert [(n["id"], n["count"]) for n in page["results"]] == [(item["id"], 50)]
    assert page["unread_count"] == 1


def test_a_grouped_update_is_a_new_event_with_the_same_group_and_a_higher_count(make_server, browser, make_user):
    server = make_server(**FAST)
    alice, (bob, carol) = make_user(), people(2)
    post = Post.objects.create(title="Post 7")
    tab = browser(alice, on=server).stream().connected()
    comment(alice, bob, post)
    tab.wait_for(lambda s: len(s.notifications()) == 1, timeout=3.0)
    comment(alice, carol, post)
    tab.wait_for(lambda s: len(s.notifications()) == 2, timeout=3.0)
    first, second = tab.notifications()
    assert second["id"] > first["id"] and second["group"] == first["group"]
    assert (first["count"], second["count"]) == (1, 2)
    assert second["actors"] == [bob.username, carol.username]


def test_marking_the_group_read_reaches_every_tab(make_server, browser, make_user):
    server = make_server(**FAST)
    alice = make_user()
    actors = people(5)
    post = Post.objects.create(title="Post 7")
    user = browser(alice, on=server)
    tabs = [user.stream().connected(), user.stream().connected()]
    ids = [comment(alice, actor, post)[0].pk for actor in actors]
    for tab in tabs:
        tab.wait_for(lambda s: ids[-1] in s.notification_ids(), timeout=3.0)

    response = user.post(f"/notifications/api/{ids[-1]}/read/")
    assert response.status_code == 200 and response.json()["unread_count"] == 0
    for tab in tabs:
        tab.wait_for(lambda s: s.of("read"), timeout=3.0)
        (event,) = tab.of("read")
        assert set(event.json["ids"]) == set(ids) and event.json["unread_count"] == 0


def test_concurrent_writers_of_one_group_end_with_the_full_count_in_every_tab(make_server, browser, make_user):
    import threading

    from django.db import connections

    server = make_server(**FAST)
    alice = make_user()
    actors = people(4)
    post = Post.objects.create(title="Post 7")
    user = browser(alice, on=server)
    tabs = [user.stream().connected(), user.stream().connected()]
    errors: list[BaseException] = []

    def write(actor) -> None:
        try:
            for _ in range(50):
                comment(alice, actor, post)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    for tab in tabs:
        tab.wait_for(lambda s: [n["count"] for n in shown(s).values()] == [200], timeout=3.0)
        ids = tab.notification_ids()
        assert ids == sorted(set(ids))  # once each, in order
        # Every frame's count is the group as of that row: it only grows.
        counts = [n["count"] for n in tab.notifications()]
        assert counts == sorted(counts)
    page = user.http.get("/notifications/api/").json()
    assert [n["count"] for n in page["results"]] == [200] and page["unread_count"] == 1
