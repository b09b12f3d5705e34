"""Grouping: a burst of one kind and key folds into one item, in every surface."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from notifications import api
from notifications.grouping import coalesce
from notifications.models import Notification
from notifications.render import as_dict
from project.models import Post

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def post():
    return Post.objects.create(title="Post 7")


def commenters(count, prefix="u"):
    return [User.objects.create_user(f"{prefix}{i}") for i in range(count)]


def comment(recipient, actor, post, **extra):
    return api.notify(
        recipient, "commented", actor=actor, target=post, kind="comment", data={"post": post.title}, **extra
    )


def listed(user):
    client = Client()
    client.force_login(user)
    return client.get("/notifications/api/?page_size=100").json()


def test_fifty_comments_from_fifty_users_list_as_one_item_and_others(alice, post):
    for user in commenters(50):
        comment(alice, user, post)
    page = listed(alice)
    (item,) = page["results"]
    assert item["count"] == 50
    assert item["actors"] == ["u0", "u1", "u2"]
    assert item["text"] == "u0, u1 and 48 others commented on Post 7"
    assert item["group"] and item["kind"] == "comment"
    assert item["id"] == Notification.objects.latest("id").pk  # the newest row stands for the group
    assert page["unread_count"] == 1  # the badge counts the group once


def test_each_grouped_update_is_a_new_row_whose_json_counts_the_members_so_far(alice, post):
    ids = [comment(alice, user, post)[0].pk for user in commenters(3)]
    assert len(set(ids)) == 3 and ids == sorted(ids)
    rows = Notification.objects.filter(pk__in=ids).order_by("id")
    assert len({r.group for r in rows}) == 1
    assert [as_dict(r)["count"] for r in rows] == [1, 2, 3]
    assert [as_dict(r)["text"] for r in rows] == [
        "u0 commented on Post 7",
        "u0 and u1 commented on Post 7",
        "u0, u1 and u2 commented on Post 7",
    ]


def test_one_actor_twice_counts_once_among_the_actors(alice, post):
    bob, carol = commenters(2)
    for actor in (bob, carol, bob):
        comment(alice, actor, post)
    (item,) = listed(alice)["results"]
    assert item["count"] == 3 and item["actors"] == ["u0", "u1"]
    assert item["text"] == "u0 and u1 commented on Post 7"


def test_other_targets_and_other_kinds_stay_apart(alice, post):
    other = Post.objects.create(title="Post 8")
    (bob,) = commenters(1)
    comment(alice, bob, post)
    comment(alice, bob, other)
    api.notify(alice, "mentioned you", actor=bob, target=post, kind="mention")
    assert sorted(i["count"] for i in listed(alice)["results"]) == [1, 1, 1]


def test_a_notification_after_the_window_opens_a_new_group(alice, post):
    bob, carol = commenters(2)
    comment(alice, bob, post, timestamp=timezone.now() - timedelta(minutes=11))
    comment(alice, carol, post)
    items = listed(alice)["results"]
    assert [i["count"] for i in items] == [1, 1]
    assert items[0]["group"] != items[1]["group"]


def test_a_window_slides_with_each_member(alice, post):
    bob, carol, dave = commenters(3)
    now = timezone.now()
    comment(alice, bob, post, timestamp=now - timedelta(minutes=18))
    comment(alice, carol, post, timestamp=now - timedelta(minutes=9))
    comment(alice, dave, post, timestamp=now)
    assert [i["count"] for i in listed(alice)["results"]] == [3]


def test_each_user_of_a_fan_out_joins_their_own_open_group(post):
    team = Group.objects.create(name="team")
    alice, bob, carol = commenters(3, prefix="member")
    team.user_set.add(alice, bob)
    (dave,) = commenters(1, prefix="actor")
    comment(alice, dave, post)  # alice has an open group; bob has none
    rows = comment(team, carol, post)
    counts = {r.recipient_id: as_dict(r)["count"] for r in rows}
    assert counts == {alice.pk: 2, bob.pk: 1}
    assert rows[0].group != rows[1].group or rows[0].recipient_id == rows[1].recipient_id


def test_marking_the_newest_read_marks_the_whole_group_read(alice, post):
    ids = [comment(alice, u, post)[0].pk for u in commenters(5)]
    client = Client()
    client.force_login(alice)
    response = client.post(f"/notifications/api/{ids[-1]}/read/")
    assert response.json()["unread_count"] == 0
    assert set(response.json()["ids"]) == set(ids)
    assert not Notification.objects.filter(unread=True).exists()


def test_a_new_member_of_a_read_group_is_news_again(alice, post):
    users = commenters(3)
    head = comment(alice, users[0], post)[0]
    api.mark_read(alice, [head.pk])
    comment(alice, users[1], post)
    (item,) = listed(alice)["results"]
    assert item["unread"] and item["count"] == 2
    assert api.unread_count(alice) == 1


def test_mark_all_read_reads_every_member(alice, post):
    for u in commenters(4):
        comment(alice, u, post)
    api.mark_all_read(alice)
    assert not Notification.objects.filter(unread=True).exists()


def test_deleting_the_newest_deletes_the_group(alice, post):
    ids = [comment(alice, u, post)[0].pk for u in commenters(3)]
    api.delete(alice, [ids[-1]])
    assert listed(alice)["results"] == []
    assert Notification.objects.filter(deleted=False).count() == 0


def test_the_bell_renders_one_item_per_group(alice, post):
    for u in commenters(4):
        comment(alice, u, post)
    client = Client()
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert html.count("data-notification-id=") == 1
    assert "u0, u1 and 2 others commented on Post 7" in html
    assert 'class="ntf-count" title="4 notifications">4<' in html


def test_coalesce_keeps_the_newest_row_of_each_group_in_id_order():
    rows = [
        (1, "a1", ("u1", "g")),
        (2, "x", None),
        (3, "a2", ("u1", "g")),
        (4, "b1", ("u2", "g")),
        (5, "y", ""),
        (6, "a3", ("u1", "g")),
    ]
    assert coalesce(rows) == [(2, "x", None), (4, "b1", ("u2", "g")), (5, "y", ""), (6, "a3", ("u1", "g"))]
    assert coalesce([]) == []
    alone = [(1, "x", None), (2, "y", "g")]
    assert coalesce(alone) == alone


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_count_every_member_of_one_group():
    alice = User.objects.create_user("alice")
    post = Post.objects.create(title="Post 7")
    actors = commenters(8)
    errors = []

    def write(actor):
        try:
            for _ in range(25):
                comment(alice, actor, post)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(a,)) for a in actors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    rows = list(Notification.objects.order_by("id"))
    assert len(rows) == 200 and len({r.group for r in rows}) == 1
    counts = [as_dict(r)["count"] for r in rows]
    assert counts == list(range(1, 201))  # ids grow in commit order within a group
    (item,) = listed(alice)["results"]
    assert item["count"] == 200 and len(item["actors"]) == 3
    assert connection.vendor in ("sqlite", "postgresql")


@pytest.mark.django_db(transaction=True)
def test_a_writer_of_a_group_waits_for_an_uncommitted_member_instead_of_opening_another():
    from django.db import transaction

    alice = User.objects.create_user("alice")
    post = Post.objects.create(title="Post 7")
    first, second = commenters(2)
    inserted, release = threading.Event(), threading.Event()

    def slow():
        with transaction.atomic():
            comment(alice, first, post)
            inserted.set()
            release.wait(5)
        connections.close_all()

    def fast():
        inserted.wait(5)
        comment(alice, second, post)
        connections.close_all()

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for t in threads:
        t.start()
    threads[1].join(0.5)  # the second writer is waiting for the first
    release.set()
    for t in threads:
        t.join(10)
    rows = list(Notification.objects.order_by("id"))
    assert [r.actor_display for r in rows] == ["u0", "u1"]
    assert len({r.group for r in rows}) == 1
    assert [as_dict(r)["count"] for r in rows] == [1, 2]
