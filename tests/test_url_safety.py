"""
Links never run script: a notification's url, data["url"] and data["actions"][].href
are refused at write unless relative or http(s), and rows that hold another
link (written before the rule, or with the ORM) render without it everywhere.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse

from notifications import api, links, worker
from notifications.admin import BroadcastForm, NotificationForm
from notifications.kinds import Kind
from notifications.models import Notification
from notifications.push import payload
from notifications.signals import notify

pytestmark = pytest.mark.django_db

User = get_user_model()

UNSAFE = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "JAVASCRIPT:alert(1)",
    " javascript:alert(1)",
    "javascript:alert(1) ",
    "\x01javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "java\rscript:alert(1)",
    "javascript\x7f:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "mailto:someone@example.com",
    "//evil.example/path",
    "/\\evil.example/path",
    "\\\\evil.example/path",
    "\\/evil.example/path",
]
SAFE = [
    "",
    "/inbox/7/",
    "inbox/7",
    "?page=2",
    "#top",
    "http://example.com/a",
    "https://example.com/a?b=c#d",
    "HTTPS://example.com/a",
    "/search?q=javascript:alert(1)",
    "/path/javascript:alert(1)",
    "./javascript:alert(1)",
    "1javascript:alert(1)",
]
JS = "javascript:alert(1)"


@pytest.mark.parametrize("url", UNSAFE)
def test_notify_refuses_a_url_that_is_not_relative_or_http(alice, url):
    with pytest.raises(ValueError, match="relative URL .* or an absolute http"):
        api.notify(alice, "hello", url=url)
    assert not Notification.objects.exists()


@pytest.mark.parametrize("url", SAFE)
def test_notify_keeps_a_relative_or_http_url_as_given(alice, url):
    (row,) = api.notify(alice, "hello", url=url)
    row.refresh_from_db()
    assert row.url == url


def test_broadcast_refuses_a_javascript_url():
    with pytest.raises(ValueError, match="url has the scheme 'javascript'"):
        api.broadcast("hello", url=JS)
    assert not Notification.objects.exists()


def test_notify_refuses_a_javascript_url_in_data(alice):
    with pytest.raises(ValueError, match=r'data\["url"\]'):
        api.notify(alice, "hello", data={"url": JS})
    assert not Notification.objects.exists()


def test_notify_refuses_a_javascript_action_href(alice):
    actions = [{"title": "Open", "href": "/ok/"}, {"title": "Run", "href": "java\tscript:alert(1)"}]
    with pytest.raises(ValueError, match=r'data\["actions"\]\[1\]\["href"\]'):
        api.notify(alice, "hello", data={"actions": actions})
    assert not Notification.objects.exists()


def test_notify_send_with_a_javascript_url_raises_and_writes_nothing(alice, bob):
    with pytest.raises(ValueError, match="scheme 'javascript'"):
        notify.send(bob, recipient=alice, verb="hello", url=JS)
    assert not Notification.objects.exists()


def test_notify_send_with_a_javascript_url_in_data_raises_and_writes_nothing(alice, bob):
    with pytest.raises(ValueError, match=r'data\["url"\]'):
        notify.send(bob, recipient=alice, verb="hello", data={"url": JS})
    assert not Notification.objects.exists()


@pytest.fixture
def post_save_restored():
    """post_save's receivers as they were before the test (notify_on_save connects for good)."""
    from django.db.models.signals import post_save

    saved = list(post_save.receivers)
    yield
    with post_save.lock:
        post_save.receivers = saved
        post_save.sender_receivers_cache.clear()


def test_notify_send_with_a_javascript_action_href_raises(alice, bob):
    # hq puts extra keywords into data: actions=[...] is data["actions"].
    with pytest.raises(ValueError, match=r'data\["actions"\]\[0\]\["href"\]'):
        notify.send(bob, recipient=alice, verb="hello", actions=[{"title": "Run", "href": JS}])
    assert not Notification.objects.exists()


def test_notify_on_save_with_a_javascript_url_raises(alice, post_save_restored):
    from django.contrib.auth.models import Group

    api.notify_on_save(Group, recipient=alice, verb="group made", url=JS)
    with pytest.raises(ValueError, match="scheme 'javascript'"):
        Group.objects.create(name="team")
    assert not Notification.objects.exists()


@pytest.mark.parametrize("form", [NotificationForm, BroadcastForm])
def test_the_admin_forms_refuse_a_javascript_url(alice, form):
    filled = form(data={"recipient": alice.pk, "verb": "hi", "level": "info", "url": JS, "data": "{}", "audience": "all"})
    assert not filled.is_valid()
    assert "url" in filled.errors and "relative URL" in filled.errors["url"][0]


@pytest.mark.parametrize(("code", "words"), [("fr", "n’est pas un lien sûr"), ("de", "ist kein sicherer Link")])
def test_the_admin_refuses_an_unsafe_link_in_the_users_language(alice, code, words):
    from django.utils import translation

    with translation.override(code):
        filled = NotificationForm(data={
            "recipient": alice.pk, "verb": "hi", "level": "info", "url": "/ok",
            "data": json.dumps({"actions": [{"title": "Run", "href": JS}]}),
        })
        assert not filled.is_valid()
        [error] = filled.errors["data"]
        assert error.startswith(f'data["actions"][0]["href"] {words}. ')
        assert "safe link" not in error and "Enter" not in error


# -- rows that already hold an unsafe link render without it -------------------------


@pytest.fixture
def old_row(alice):
    """A row as written before the rule (or with the ORM): javascript: everywhere."""
    return Notification.objects.create(
        recipient=alice,
        verb="was hacked",
        url=JS,
        data={"url": JS, "actions": [{"title": "Run", "href": JS}, {"title": "Open", "href": "/ok/"}]},
    )


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_an_old_javascript_url_is_no_link_on_the_hq_list_page(alice, old_row):
    html = client_for(alice).get(reverse("notifications:all")).content.decode()
    assert "was hacked" in html and 'href="/ok/"' in html
    assert "javascript" not in html.lower()


def test_an_old_javascript_url_is_empty_in_the_bell_list_json(alice, old_row):
    (item,) = client_for(alice).get(reverse("notifications:list")).json()["results"]
    assert item["url"] == ""
    assert item["data"] == {"url": "", "actions": [{"title": "Run", "href": ""}, {"title": "Open", "href": "/ok/"}]}


def test_an_old_javascript_url_is_empty_in_the_hq_json_list(alice, old_row):
    (item,) = client_for(alice).get(reverse("notifications:live_all_notification_list")).json()["all_list"]
    assert item["url"] == "" and "javascript" not in json.dumps(item).lower()


def test_an_old_javascript_url_is_no_link_in_the_rendered_bell(alice, old_row):
    request = RequestFactory().get("/")
    request.user = alice
    html = Template("{% load notifications %}{% notifications_bell %}").render(Context({"request": request}))
    assert "was hacked" in html and "javascript" not in html.lower()


def test_an_old_javascript_url_is_no_link_in_the_email(declare):
    declare(Kind("urltest", label="Tests", channels={"in_app": True, "email": True}))
    alice = User.objects.create_user("alice", email="alice@example.com")
    (row,) = api.notify(alice, "was hacked", kind="urltest", url="/fine/")
    Notification.objects.filter(pk=row.pk).update(url=JS, data={"url": JS})
    assert worker.drain()["sent"] == 1
    (message,) = mail.outbox
    html = message.alternatives[0][0]
    assert "was hacked" in message.body
    assert "javascript" not in message.body.lower() and "javascript" not in html.lower()
    assert "Open it" not in html  # the link's paragraph is left out


def test_a_relative_url_is_made_absolute_in_the_email(declare, settings):
    settings.NOTIFICATIONS_BASE_URL = "https://app.example"
    declare(Kind("urltest", label="Tests", channels={"in_app": True, "email": True}))
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "commented", kind="urltest", url="posts/7/")
    worker.drain()
    (message,) = mail.outbox
    assert "https://app.example/posts/7/" in message.body
    assert 'href="https://app.example/posts/7/"' in message.alternatives[0][0]


def test_an_old_javascript_url_opens_the_home_page_from_a_push(old_row):
    assert payload(old_row, Kind("pushtest", label="Tests"))["url"] == "/"


def test_the_safe_url_filter_blanks_unsafe_links():
    template = Template("{% load notifications %}[{{ a|safe_url }}][{{ b|safe_url }}][{{ c|safe_url }}]")
    assert template.render(Context({"a": JS, "b": "/ok/", "c": None})) == "[][/ok/][]"


# -- the rule itself -----------------------------------------------------------------


@pytest.mark.parametrize("url", UNSAFE)
def test_the_rule_refuses(url):
    assert not links.is_safe(url) and links.safe_url(url) == ""


@pytest.mark.parametrize("url", SAFE)
def test_the_rule_accepts(url):
    assert links.is_safe(url) and links.safe_url(url) == url
