"""django-notifications-hq's URLs, JSON endpoints, templates and template tags, in-process."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.cache import cache
from django.template import Context, Template, TemplateSyntaxError
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse

from notifications import api
from notifications.models import Notification
from notifications.utils import id2slug

pytestmark = pytest.mark.django_db

User = get_user_model()
GET_MUTATIONS = override_settings(NOTIFICATIONS_HQ_GET_MUTATIONS=True)


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()


def client_for(user, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("name", "args", "path"),
    [
        ("all", [], "/notifications/"),
        ("unread", [], "/notifications/unread/"),
        ("mark_all_as_read", [], "/notifications/mark-all-as-read/"),
        ("mark_as_read", [110910], "/notifications/mark-as-read/110910/"),
        ("mark_as_unread", [110910], "/notifications/mark-as-unread/110910/"),
        ("delete", [110910], "/notifications/delete/110910/"),
        ("live_unread_notification_count", [], "/notifications/api/unread_count/"),
        ("live_all_notification_count", [], "/notifications/api/all_count/"),
        ("live_unread_notification_list", [], "/notifications/api/unread_list/"),
        ("live_all_notification_list", [], "/notifications/api/all_list/"),
    ],
)
def test_hq_url_names_reverse_to_hq_paths(name, args, path):
    assert reverse(f"notifications:{name}", args=args) == path


def test_mark_as_read_by_slug_with_post_redirects_to_unread(alice, bob):
    (row,) = api.notify(alice, "x")
    response = client_for(alice).post(reverse("notifications:mark_as_read", args=[id2slug(row.pk)]))
    assert response.status_code == 302 and response["Location"] == reverse("notifications:unread")
    row.refresh_from_db()
    assert row.unread is False


def test_mark_as_read_posts_need_the_csrf_token(alice):
    (row,) = api.notify(alice, "x")
    response = client_for(alice, csrf=True).post(reverse("notifications:mark_as_read", args=[row.slug]))
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.unread is True


def test_hq_get_links_are_refused_by_default_with_the_setting_named(alice):
    (row,) = api.notify(alice, "x")
    response = client_for(alice).get(reverse("notifications:mark_as_read", args=[row.slug]))
    assert response.status_code == 405
    assert "NOTIFICATIONS_HQ_GET_MUTATIONS" in response.json()["error"]
    row.refresh_from_db()
    assert row.unread is True


@GET_MUTATIONS
def test_hq_get_links_work_with_the_setting_and_follow_next(alice):
    (row,) = api.notify(alice, "x")
    client = client_for(alice)
    response = client.get(reverse("notifications:mark_as_read", args=[row.slug]), {"next": "/elsewhere/?a=1"})
    assert response["Location"] == "/elsewhere/?a=1"
    response = client.get(reverse("notifications:mark_as_unread", args=[row.slug]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("notifications:unread")
    row.refresh_from_db()
    assert row.unread is True
    client.get(reverse("notifications:mark_all_as_read"))
    row.refresh_from_db()
    assert row.unread is False


def test_get_mutations_setting_raises_a_warning():
    with GET_MUTATIONS:
        ids = [m.id for m in checks.run_checks()]
    assert "notifications.W101" in ids
    assert "notifications.W101" not in [m.id for m in checks.run_checks()]


def test_swapped_model_setting_is_a_system_check_error():
    with override_settings(NOTIFICATIONS_NOTIFICATION_MODEL="app.Notification"):
        errors = [m for m in checks.run_checks() if m.id == "notifications.E101"]
    assert errors and "not supported" in errors[0].msg


def test_someone_elses_slug_is_404(alice, bob):
    (row,) = api.notify(bob, "x")
    response = client_for(alice).post(reverse("notifications:mark_as_read", args=[row.slug]))
    assert response.status_code == 404
    row.refresh_from_db()
    assert row.unread is True


def test_delete_soft_deletes_with_soft_delete_and_deletes_without(alice):
    kept, gone = api.notify([alice], "kept") + api.notify([alice], "gone")
    client = client_for(alice)
    with override_settings(DJANGO_NOTIFICATIONS_CONFIG={"SOFT_DELETE": True}):
        response = client.post(reverse("notifications:delete", args=[kept.slug]))
    assert response["Location"] == reverse("notifications:all")
    assert Notification.objects.get(pk=kept.pk).deleted is True
    client.post(reverse("notifications:delete", args=[gone.slug]))
    assert not Notification.objects.filter(pk=gone.pk).exists()


def test_list_pages_render_hq_templates_with_broadcasts(alice):
    api.notify(alice, "personal")
    api.broadcast("to everyone")
    client = client_for(alice)
    response = client.get(reverse("notifications:all"))
    assert [t.name for t in response.templates][:2] == ["notifications/list.html", "notifications/notice.html"]
    assert b"personal" in response.content and b"to everyone" in response.content
    api.mark_all_read(alice)
    assert b"to everyone" not in client.get(reverse("notifications:unread")).content


def test_list_pages_redirect_anonymous_to_login():
    response = Client().get(reverse("notifications:all"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_live_unread_list_has_hq_shape_and_counts_broadcasts(alice, bob):
    (row,) = api.notify(alice, "commented", actor=bob, target=bob, data={"k": "v"})
    api.broadcast("news")
    data = client_for(alice).get(reverse("notifications:live_unread_notification_list")).json()
    assert data["unread_count"] == 2
    first = data["unread_list"][1]
    assert first["id"] == row.pk and first["slug"] == row.pk + 110909
    assert (first["actor"], first["verb"], first["target"], first["recipient"]) == ("bob", "commented", "bob", alice.pk)
    assert first["data"] == {"k": "v"} and first["unread"] is True and "timestamp" in first


def test_live_list_max_is_bounded_like_hq(alice):
    for i in range(12):
        api.notify(alice, f"n{i}")
    client = client_for(alice)
    url = reverse("notifications:live_all_notification_list")
    assert len(client.get(url, {"max": 3}).json()["all_list"]) == 3
    assert len(client.get(url, {"max": 500}).json()["all_list"]) == 10
    assert len(client.get(url, {"max": "x"}).json()["all_list"]) == 10
    assert client.get(url).json()["all_count"] == 12


def test_live_list_mark_as_read_needs_the_get_setting(alice):
    api.notify(alice, "x")
    client = client_for(alice)
    url = reverse("notifications:live_unread_notification_list")
    refused = client.get(url, {"mark_as_read": "true"})
    assert refused.status_code == 400 and "NOTIFICATIONS_HQ_GET_MUTATIONS" in refused.json()["error"]
    with GET_MUTATIONS:
        assert len(client.get(url, {"mark_as_read": "true"}).json()["unread_list"]) == 1
    assert api.unread_count(alice) == 0


def test_live_counts(alice):
    api.notify(alice, "x")
    api.broadcast("y")
    api.mark_all_read(alice)
    api.notify(alice, "z")
    client = client_for(alice)
    assert client.get(reverse("notifications:live_unread_notification_count")).json() == {"unread_count": 1}
    assert client.get(reverse("notifications:live_all_notification_count")).json() == {"all_count": 3}


def test_live_endpoints_answer_anonymous_with_zero():
    client = Client()
    assert client.get(reverse("notifications:live_unread_notification_count")).json() == {"unread_count": 0}
    assert client.get(reverse("notifications:live_all_notification_list")).json() == {"all_count": 0, "all_list": []}


# -- template tags ------------------------------------------------------------------


def render(source: str, user) -> str:
    request = RequestFactory().get("/")
    request.user = user
    return Template("{% load notifications_tags %}" + source).render(Context({"request": request, "user": user}))


def test_notifications_unread_is_per_user_never_a_shared_cache(alice, bob):
    api.notify(alice, "a1")
    api.notify(alice, "a2")
    assert render("{% notifications_unread %}", alice) == "2"
    assert render("{% notifications_unread %}", bob) == "0"
    assert render("{% notifications_unread as n %}[{{ n }}]", alice) == "[2]"


def test_badge_list_and_has_notification(alice, bob):
    api.notify(alice, "a1")
    assert render("{% live_notify_badge %}", alice) == "<span class='live_notify_badge'>1</span>"
    assert render("{% live_notify_list list_class='menu' %}", alice) == "<ul class='menu'></ul>"
    assert render("{{ user|has_notification }}", alice) == "True"
    assert render("{{ user|has_notification }}", bob) == "False"


def test_register_notify_callbacks_writes_hq_globals_and_the_stream(alice):
    html = render(
        "{% register_notify_callbacks callbacks='fill_notification_list,fill_notification_badge' nonce='n1' %}",
        alice,
    )
    assert html.startswith('<script nonce="n1">')
    assert 'notify_api_url = "/notifications/api/unread_list/";' in html
    assert 'notify_stream_url = "/notifications/stream/";' in html
    assert "notify_refresh_period = 15000;" in html
    assert "register_notifier(fill_notification_list);" in html
    assert "register_notifier(fill_notification_badge);" in html


def test_register_notify_callbacks_refuses_script_in_a_callback_name(alice):
    with pytest.raises(TemplateSyntaxError, match="not a JavaScript function name"):
        render("{% register_notify_callbacks callbacks='alert(1)' %}", alice)
