"""Email and push follow the in-app channel, and the page and the API say so."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from notifications import api, worker
from notifications.kinds import Kind
from notifications.models import Preference
from notifications.preferences import is_enabled, matrix, set_preferences

pytestmark = pytest.mark.django_db

User = get_user_model()
URL = "/notifications/api/preferences/"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def cell(user, kind, channel):
    (row,) = [k for k in matrix(user) if k["key"] == kind]
    return row["channels"][channel]


def mute_in_app(user, kind="mention"):
    set_preferences(user, [{"kind": kind, "channel": "in_app", "enabled": False}])


def test_muting_in_app_shows_email_and_push_off_and_not_editable_with_the_reason(alice):
    mute_in_app(alice)
    for channel in ("email", "push"):
        got = cell(alice, "mention", channel)
        assert got["enabled"] is False and got["editable"] is False
        assert "in the app" in got["reason"]


def test_email_is_editable_again_once_in_app_is_back_on(alice):
    mute_in_app(alice)
    set_preferences(alice, [{"kind": "mention", "channel": "in_app", "enabled": None}])
    assert cell(alice, "mention", "email") == {"enabled": True, "editable": True}


def test_muting_the_whole_in_app_channel_locks_every_kinds_email(alice):
    set_preferences(alice, [{"kind": None, "channel": "in_app", "enabled": False}])
    assert cell(alice, "mention", "email")["editable"] is False
    assert cell(alice, "security", "email") == {"enabled": True, "editable": False}  # critical


def test_turning_email_on_for_a_kind_off_in_the_app_is_refused_and_stores_nothing(alice):
    mute_in_app(alice)
    with pytest.raises(ValueError, match="in_app channel on first"):
        set_preferences(alice, [{"kind": "mention", "channel": "email", "enabled": True}])
    assert list(Preference.objects.values_list("channel", "enabled")) == [("in_app", False)]


def test_turning_in_app_and_email_on_together_is_allowed(alice):
    mute_in_app(alice)
    set_preferences(
        alice,
        [
            {"kind": "mention", "channel": "in_app", "enabled": True},
            {"kind": "mention", "channel": "email", "enabled": True},
        ],
    )
    assert cell(alice, "mention", "email") == {"enabled": True, "editable": True}


def test_the_http_api_refuses_email_on_for_a_kind_off_in_the_app_with_a_message(alice):
    mute_in_app(alice)
    response = logged_in(alice).post(
        URL,
        json.dumps({"kind": "mention", "channel": "email", "enabled": True}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "in_app channel on first" in response.json()["error"]


def test_the_http_api_shows_email_locked_while_in_app_is_off(alice):
    mute_in_app(alice)
    kinds = {k["key"]: k for k in logged_in(alice).get(URL).json()["kinds"]}
    email = kinds["mention"]["channels"]["email"]
    assert email["enabled"] is False and email["editable"] is False and email["reason"]


def test_the_preferences_page_shows_email_disabled_and_why_while_in_app_is_off(alice):
    mute_in_app(alice)
    html = logged_in(alice).get("/preferences/").content.decode()
    assert 'name="on" value="mention:email"' not in html
    assert 'name="on" value="mention:in_app"' in html
    assert "off with the app" in html


def test_is_enabled_says_email_is_off_while_in_app_is_off(alice):
    mute_in_app(alice)
    assert is_enabled(alice, "mention", "email") is False


def test_an_email_pending_when_in_app_is_muted_is_not_sent(alice, declare):
    declare(Kind("later", channels={"in_app": True, "email": timedelta(0)}))
    api.notify(alice, "asked", kind="later")
    mute_in_app(alice, "later")
    assert worker.drain() == {"skipped": 1}
    assert not mail.outbox


def test_with_in_app_on_the_email_of_a_kind_is_sent(alice, declare):
    declare(Kind("later", channels={"in_app": True, "email": timedelta(0)}))
    api.notify(alice, "asked", kind="later")
    assert worker.drain() == {"sent": 1}
