"""
A project whose user model is its own (tests/customuser): a UUID primary key,
login by email, no groups. Runs only under tests/settings_custom_user.py, with
a database of its own:

    ./dev test --ds=tests.settings_custom_user tests/test_custom_user.py

(tests/conftest.py leaves this module out of runs under other settings.)
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import checks, mail
from django.test import Client

from notifications import api, worker
from notifications.kinds import Kind
from notifications.models import Notification

from .conftest import CSRF, CUSTOM_USER_MODEL

if settings.AUTH_USER_MODEL != CUSTOM_USER_MODEL:  # named on the command line, other settings
    pytest.skip("needs --ds=tests.settings_custom_user", allow_module_level=True)

User = get_user_model()
HEARTBEAT = 2.0
POLL = 2.0  # the server's NOTIFICATIONS_POLL_INTERVAL (default)
_names = itertools.count()


def test_the_user_model_is_the_projects_own():
    assert User._meta.label == "customuser.Member" and User.USERNAME_FIELD == "email"
    assert isinstance(User._meta.pk.get_default(), uuid.UUID) and not hasattr(User, "groups")


@pytest.fixture
def make_user(transactional_db: Any) -> Any:
    """A committed member the server can see: ``make_user(staff=True)``."""

    def make(*, staff: bool = False) -> Any:
        email = f"member{next(_names)}_{os.getpid()}@example.com"
        return User.objects.create_user(email, password="pw", is_staff=staff)

    return make


def logged_in(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies["csrftoken"] = CSRF
    return client


def post(client: Client, path: str, **kwargs: Any) -> Any:
    return client.post(path, HTTP_X_CSRFTOKEN=CSRF, **kwargs)


# -- the JSON API ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_json_api_lists_and_marks_read_a_members_notifications(make_user):
    alice, bob = make_user(), make_user()
    first, second = (api.notify(alice, verb)[0].pk for verb in ("one", "two"))
    api.notify(bob, "not for alice")
    everyone = api.broadcast("to everyone").pk
    client = logged_in(alice)
    body = client.get("/notifications/api/").json()
    assert [n["id"] for n in body["results"]] == [everyone, second, first]
    assert body["unread_count"] == 3
    assert post(client, f"/notifications/api/{first}/read/").status_code == 200
    assert post(client, f"/notifications/api/{everyone}/read/").status_code == 200
    assert client.get("/notifications/api/unread-count/").json()["unread_count"] == 1


@pytest.mark.django_db
def test_a_grouped_kind_groups_each_members_notifications_by_their_actors_emails(make_user):
    from project.models import Post

    post = Post.objects.create(title="Post 7")
    alice, bob, carol, dave = (make_user() for _ in range(4))
    for actor in (carol, dave):
        api.notify(User.objects.filter(pk__in=[alice.pk, bob.pk]), "commented", actor=actor, target=post, kind="comment")
    for member in (alice, bob):
        (item,) = logged_in(member).get("/notifications/api/").json()["results"]
        assert item["count"] == 2 and item["actors"] == [carol.email, dave.email]


@pytest.mark.django_db
def test_group_broadcasts_reach_nobody_and_staff_broadcasts_reach_staff(make_user):
    member, staff = make_user(), make_user(staff=True)
    api.broadcast("to a group", audience=Group.objects.create(name="editors"))
    to_staff = api.broadcast("to staff", audience="staff").pk
    to_all = api.broadcast("to everyone").pk
    assert list(Notification.objects.for_user(member).values_list("pk", flat=True)) == [to_all]
    assert sorted(Notification.objects.for_user(staff).values_list("pk", flat=True)) == [to_staff, to_all]


def test_every_users_poke_group_has_a_name_the_channel_layer_accepts():
    from channels.layers import BaseChannelLayer

    from notifications.hub import user_group

    names = {user_group(pk) for pk in (7, uuid.uuid4(), "alice@example.com", "x" * 200)}
    assert len(names) == 4
    assert all(BaseChannelLayer().require_valid_group_name(name) for name in names)


@pytest.mark.django_db
def test_a_database_check_warns_that_stored_group_broadcasts_reach_nobody():
    assert not [m for m in checks.run_checks(databases=["default"]) if m.id == "notifications.W021"]
    api.broadcast("to a group", audience=Group.objects.create(name="editors"))
    (warning,) = [m for m in checks.run_checks(databases=["default"]) if m.id == "notifications.W021"]
    assert "reach nobody" in warning.msg and "customuser.Member" in warning.msg


# -- the stream, on a real server ------------------------------------------------------


def arrives(stream: Any, nid: int) -> None:
    stream.wait_for(lambda s: nid in s.notification_ids(), timeout=POLL * 3)


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_members_stream_opens_and_gets_their_notifications_and_broadcasts(browser, make_user):
    alice, bob = make_user(), make_user()
    stream = browser(alice).stream().connected()
    assert stream.status == 200
    mine = api.notify(alice, "for alice")[0].pk
    api.notify(bob, "for bob")
    api.broadcast("to a group", audience=Group.objects.create(name="editors"))
    api.broadcast("to staff", audience="staff")
    everyone = api.broadcast("to everyone").pk
    arrives(stream, everyone)
    assert stream.notification_ids() == [mine, everyone]


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_staff_members_stream_gets_staff_broadcasts(browser, make_user):
    stream = browser(make_user(staff=True)).stream().connected()
    to_staff = api.broadcast("to staff", audience="staff").pk
    arrives(stream, to_staff)


def ends_within_a_heartbeat(stream: Any, since: float) -> None:
    stream.wait_for(lambda s: s.ended, timeout=HEARTBEAT + 2)
    assert time.monotonic() - since <= HEARTBEAT + 0.5, "ended later than a heartbeat"


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["logout", "password change"])
def test_signing_out_ends_the_members_streams_within_a_heartbeat(browser, make_user, make_server, how):
    srv = make_server(NOTIFICATIONS_HEARTBEAT=str(HEARTBEAT))
    alice, bob = make_user(), make_user()
    tab = browser(alice, on=srv)
    streams = [tab.stream().connected(), tab.stream().connected()]
    bystander = browser(bob, on=srv).stream().connected()
    started = time.monotonic()
    if how == "logout":
        assert tab.post("/logout/").status_code == 302
    else:
        alice.set_password("a new password")
        alice.save()
        started = time.monotonic()  # (hashing takes a while: time from the commit)
    for stream in streams:
        ends_within_a_heartbeat(stream, started)
    again = tab.stream()
    again.wait_for(lambda s: s.ended)
    assert again.status == 403
    # The sweep kept going: the bystander still gets what is sent to them.
    arrives(bystander, api.notify(bob, "still here")[0].pk)
    assert not bystander.ended


# -- admin and django-notifications-hq's views ----------------------------------------


@pytest.mark.django_db
def test_the_admin_changelists_load_and_search_by_email(make_user):
    alice = make_user()
    api.notify(alice, "hello")
    api.broadcast("to everyone")
    client = logged_in(make_user(staff=True))
    for path in ("notification", "broadcast", "delivery"):
        assert client.get(f"/admin/notifications/{path}/").status_code == 200
    found = client.get("/admin/notifications/notification/", {"q": alice.email})
    assert found.status_code == 200 and found.context["cl"].result_count == 1


@pytest.mark.django_db
def test_the_admin_refuses_a_group_broadcast_when_members_have_no_groups(make_user):
    client = logged_in(make_user(staff=True))
    group = Group.objects.create(name="editors")
    form = {"verb": "to a group", "level": "info", "audience": "group", "audience_group": group.pk, "data": "{}"}
    response = post(client, "/admin/notifications/broadcast/add/", data=form)
    assert response.status_code == 200 and "has no groups" in response.content.decode()
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_hq_views_list_count_and_mark_read_for_a_member(make_user):
    alice = make_user()
    row = api.notify(alice, "hello")[0]
    client = logged_in(alice)
    assert client.get("/notifications/").status_code == 200
    assert client.get("/notifications/api/unread_count/").json() == {"unread_count": 1}
    listed = client.get("/notifications/api/unread_list/").json()["unread_list"]
    assert [n["id"] for n in listed] == [row.pk]
    assert post(client, f"/notifications/mark-as-read/{row.slug}/").status_code == 302
    assert client.get("/notifications/api/unread_count/").json() == {"unread_count": 0}


# -- away delivery: email and push -----------------------------------------------------


@pytest.fixture
def by_email(declare):
    return declare(Kind("awaytest", label="Reviews", channels={"in_app": True, "email": True}))


@pytest.mark.django_db
def test_an_email_goes_to_the_members_address_and_its_unsubscribe_link_works(make_user, by_email):
    alice = make_user()
    api.notify(alice, "asked", kind="awaytest")
    assert worker.drain()["sent"] == 1
    (message,) = mail.outbox
    assert message.to == [alice.email]
    link = message.extra_headers["List-Unsubscribe"][1:-1].removeprefix("http://127.0.0.1:8000")
    response = Client().post(link, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    api.notify(alice, "asked again", kind="awaytest")
    worker.drain()
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_push_reaches_the_members_browser_and_its_read_link_marks_it_read(make_user, service, vapid, declare):
    declare(Kind("ping", label="Pings", channels={"in_app": True, "push": True}))
    alice = make_user()
    device = json.dumps(service.device("a").as_json())
    client = logged_in(alice)
    response = post(client, "/notifications/api/push/subscribe/", data=device, content_type="application/json")
    assert response.status_code == 201, response.content
    (row,) = api.notify(alice, "pinged you", kind="ping")
    assert worker.drain() == {"sent": 1}
    (got,) = service.received
    response = Client(enforce_csrf_checks=True).post(got.payload["read_url"])
    assert response.status_code == 200 and response.json() == {"marked": [row.pk]}
    assert not Notification.objects.get(pk=row.pk).unread
