"""The admin pages and the template tag."""

import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from notifications import api
from notifications.models import Broadcast, BroadcastReceipt, Delivery, Notification

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


def visible_text(response) -> str:
    """What a person reads on an admin page: no tags, no attributes, no scripts."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


# Per admin page: the words shown in French and in German, and the English they
# translate, which must not show. Column headers, filter titles, form labels,
# help texts, model names, action descriptions and custom columns.
TRANSLATED_PAGES = {
    "/admin/": [
        ("deliveries", "Envois", "Zustellungen"),
        ("broadcast receipts", "Accusés de lecture de diffusion", "Lesebestätigungen von Rundmitteilungen"),
    ],
    "/admin/notifications/notification/": [
        ("recipient", "Destinataire", "Empfänger"),
        ("actor", "Auteur", "Urheber"),
        ("level", "Par niveau", "Nach Stufe"),
        ("deleted", "Par supprimée", "Nach gelöscht"),
        ("as unread", "comme non lues", "als ungelesen"),
    ],
    "/admin/notifications/notification/{notification}/change/": [
        ("recipient", "Destinataire :", "Empfänger:"),
        ("Empty for a broadcast", "Vide pour une diffusion.", "Leer bei einer Rundmitteilung."),
        ("level", "Niveau :", "Stufe:"),
        ("data", "Données :", "Daten:"),
        ("unread", "Non lue", "Ungelesen"),
    ],
    "/admin/notifications/broadcast/": [
        ("audience", "Groupe destinataire", "Zielgruppe (Gruppe)"),
        ("expires at", "Expire le", "Läuft ab am"),
        ("read by", "Lue par", "Gelesen von"),
    ],
    "/admin/notifications/broadcast/add/": [
        ("audience", "Public :", "Zielgruppe:"),
        ("expires at", "Expire le :", "Läuft ab am:"),
    ],
    "/admin/notifications/broadcastreceipt/": [
        ("read at", "Lue le", "Gelesen am"),
        ("hidden", "Masquée", "Ausgeblendet"),
    ],
    "/admin/notifications/delivery/": [
        ("channel", "Par canal", "Nach Kanal"),
        ("attempts", "Tentatives", "Versuche"),
        ("due", "Échéance", "Fällig am"),
        ("state", "Par état", "Nach Status"),
    ],
}


@pytest.mark.parametrize("language", ["fr", "de"])
@pytest.mark.parametrize("page", list(TRANSLATED_PAGES))
def test_the_admin_speaks_french_and_german(admin_client, page, language):
    user = get_user_model().objects.create_user("u")
    row = api.notify(user, "hello")[0]
    broadcast = api.broadcast("release", audience="all")
    BroadcastReceipt.objects.create(notification=broadcast, user=user)
    Delivery.objects.create(notification=row, recipient=user, channel="email", due=timezone.now())
    response = admin_client.get(page.format(notification=row.pk), HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    text = visible_text(response)
    for english, french, german in TRANSLATED_PAGES[page]:
        assert (french if language == "fr" else german) in text
        assert not re.search(rf"\b{english}\b", text, flags=re.I), f"{english!r} in {text}"


def test_the_admin_actions_message_is_translated(admin_client):
    user = get_user_model().objects.create_user("u")
    rows = api.notify(user, "x") + api.notify(user, "y")
    response = admin_client.post(
        "/admin/notifications/notification/",
        {"action": "mark_read", "_selected_action": [row.pk for row in rows]},
        HTTP_ACCEPT_LANGUAGE="fr",
        follow=True,
    )
    text = visible_text(response)
    assert "2 notifications mises à jour." in text
    assert "updated" not in text


@pytest.mark.parametrize(
    ("language", "label", "announced"),
    [
        ("en", "Notifications, 1 new", "1 new notification"),
        ("fr", "Notifications, 1 nouvelle", "1 nouvelle notification"),
        ("de", "Benachrichtigungen, 1 neue", "1 neue Benachrichtigung"),
    ],
)
def test_the_bell_says_new_not_unread_before_any_script_runs(language, label, announced):
    """The badge counts what is unread and not seen yet: the words say "new"."""
    from django.utils import translation

    from notifications.templatetags.notifications import client_strings

    user = get_user_model().objects.create_user("alice")
    seen, fresh = api.notify(user, "seen already") + api.notify(user, "fresh")
    api.mark_seen(user, [seen.pk])
    request = RequestFactory().get("/")
    request.user = user
    with translation.override(language):
        html = Template("{% load notifications %}{% notifications_bell %}").render(Context({"request": request}))
        strings = client_strings()
    assert f'aria-label="{label}"' in html
    assert re.search(rf"data-notifications-announce[^>]*>{announced}<", html)
    assert strings["bellLabel"]["one"].replace("%(count)s", "1") == label
    assert strings["unread"]["one"].replace("%(count)s", "1") == announced
