"""The admin pages and the template tag."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.template import Context, Template
from django.test import RequestFactory

from notifications import api
from notifications.models import Broadcast, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(admin)
    return client


def test_changelists_use_a_constant_number_of_queries(admin_client, django_assert_max_num_queries):
    users = [get_user_model().objects.create_user(f"u{i}") for i in range(3)]
    api.notify(users, "hello")
    api.broadcast("all")
    with django_assert_max_num_queries(12) as few:
        assert admin_client.get("/admin/notifications/notification/").status_code == 200
    api.notify([get_user_model().objects.create_user(f"v{i}") for i in range(20)], "more")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert admin_client.get("/admin/notifications/notification/").status_code == 200
    assert admin_client.get("/admin/notifications/broadcast/").status_code == 200


def test_admin_creates_a_group_broadcast(admin_client):
    team = Group.objects.create(name="team")
    response = admin_client.post(
        "/admin/notifications/broadcast/add/",
        {"verb": "release at 5", "description": "", "level": "info", "url": "", "audience": "group",
         "audience_group": team.pk, "expires_at_0": "", "expires_at_1": "", "data": "{}"},
    )
    assert response.status_code == 302, response.content
    row = Broadcast.objects.get()
    assert (row.audience, row.audience_group, row.recipient, row.actor_display) == ("group", team, None, "root")


def test_admin_group_broadcast_needs_a_group(admin_client):
    response = admin_client.post(
        "/admin/notifications/broadcast/add/",
        {"verb": "x", "level": "info", "audience": "group", "data": "{}"},
    )
    assert response.status_code == 200
    assert "Pick the group" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_admin_mark_read_action(admin_client):
    user = get_user_model().objects.create_user("u")
    row = api.notify(user, "x")[0]
    admin_client.post("/admin/notifications/notification/", {"action": "mark_read", "_selected_action": [row.pk]})
    assert not Notification.objects.get(pk=row.pk).unread


def test_bell_tag_renders_hooks_and_escapes_text():
    user = get_user_model().objects.create_user("alice")
    api.notify(user, "<img src=x onerror=alert(1)>")
    request = RequestFactory().get("/")
    request.user = user
    html = Template("{% load notifications %}{% notifications_bell %}").render(Context({"request": request}))
    assert "data-notifications-badge" in html and "data-notifications-status" in html
    assert 'data-notification-id="' in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "notifications/notifications.js" in html


def test_bell_tag_renders_nothing_for_anonymous():
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    assert Template("{% load notifications %}{% notifications_bell %}").render(Context({"request": request})).strip() == ""
