"""Preferences: per user, kind and channel, sparse, resolved for whole recipient sets."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from notifications import api
from notifications.kinds import Kind, register
from notifications.models import Notification, Preference
from notifications.preferences import is_enabled, set_preferences

pytestmark = pytest.mark.django_db

User = get_user_model()
URL = "/notifications/api/preferences/"


@pytest.fixture
def quiet():
    """A kind whose in-app channel is off unless a user turns it on."""
    kind = register(Kind("digest", channels={"in_app": False, "email": True}))
    yield kind
    register.unregister(kind.key)


def mute(user, kind, channel="in_app", enabled=False):
    Preference.objects.create(user=user, kind=kind, channel=channel, enabled=enabled)


def test_a_muted_kind_is_not_written_for_the_user_who_muted_it(alice, bob):
    mute(alice, "comment")
    rows = api.notify([alice, bob], "commented", kind="comment")
    assert [r.recipient_id for r in rows] == [bob.pk]
    assert list(Notification.objects.values_list("recipient_id", flat=True)) == [bob.pk]


def test_notify_to_a_user_who_muted_the_kind_returns_nothing_and_raises_nothing(alice):
    mute(alice, "mention")
    assert api.notify(alice, "mentioned you", kind="mention") == []
    assert not Notification.objects.exists()


def test_muting_one_kind_leaves_the_others(alice):
    mute(alice, "comment")
    assert len(api.notify(alice, "mentioned you", kind="mention")) == 1
    assert len(api.notify(alice, "no kind")) == 1


def test_the_users_kind_choice_beats_their_channel_choice(alice):
    mute(alice, "", "in_app")  # everything in-app off...
    mute(alice, "mention", "in_app", enabled=True)  # ...but mentions
    assert len(api.notify(alice, "x", kind="mention")) == 1
    assert api.notify(alice, "x", kind="comment") == []


def test_the_channel_choice_beats_the_kind_default(alice, quiet):
    assert api.notify(alice, "x", kind="digest") == []  # off by default
    mute(alice, "", "in_app", enabled=True)
    assert len(api.notify(alice, "x", kind="digest")) == 1


def test_a_user_may_turn_on_a_kind_that_is_off_by_default(alice, bob, quiet):
    mute(alice, "digest", "in_app", enabled=True)
    rows = api.notify([alice, bob], "x", kind="digest")
    assert [r.recipient_id for r in rows] == [alice.pk]


def test_a_critical_kind_reaches_users_whatever_they_chose(alice):
    mute(alice, "", "in_app")
    mute(alice, "security", "in_app")  # cannot be stored through the API; ignored anyway
    assert len(api.notify(alice, "x", kind="security")) == 1
    assert is_enabled(alice, "security", "in_app")


def test_is_enabled_follows_the_same_order(alice, quiet):
    assert is_enabled(alice, "comment", "in_app") and not is_enabled(alice, "comment", "email")
    mute(alice, "", "email", enabled=True)
    assert is_enabled(alice, "comment", "email")
    assert not is_enabled(alice, "digest", "in_app")


def test_the_hq_signal_respects_preferences(alice, bob):
    from notifications.signals import notify

    mute(bob, "comment")
    [(_, rows)] = notify.send(alice, recipient=[alice, bob], verb="commented", kind="comment")
    assert [r.recipient_id for r in rows] == [alice.pk]


def make_crowd(size):
    group = Group.objects.create(name=f"crowd{size}")
    User.objects.bulk_create([User(username=f"c{size}_{i}") for i in range(size)], batch_size=2000)
    users = User.objects.filter(username__startswith=f"c{size}_")
    group.user_set.add(*users)
    ids = list(users.order_by("pk").values_list("pk", flat=True))
    # Every tenth user muted comments, every seventh the whole in-app channel,
    # and a few of those turned comments back on.
    Preference.objects.bulk_create(
        [Preference(user_id=uid, kind="comment", channel="in_app", enabled=False) for uid in ids[::10]]
        + [Preference(user_id=uid, kind="", channel="in_app", enabled=False) for uid in ids[1::7]]
        + [Preference(user_id=uid, kind="comment", channel="in_app", enabled=True) for uid in ids[1::70]],
        batch_size=2000,
    )
    muted = set(ids[::10]) | (set(ids[1::7]) - set(ids[1::70]))
    return group, set(ids) - muted


@pytest.mark.parametrize("size", [10, 10_000])
def test_notify_to_a_group_resolves_preferences_in_a_constant_number_of_queries(size, django_assert_num_queries):
    group, receiving = make_crowd(size)
    ContentType.objects.get_for_model(Group)  # cached from now on, as in a running process
    # savepoint, the group key's lock (PostgreSQL only), INSERT ... SELECT, the
    # email and push schedule (one INSERT ... SELECT too), release
    expected = 5 if connection.vendor == "postgresql" else 4
    with CaptureQueriesContext(connection) as queries, django_assert_num_queries(expected):
        rows = api.notify(group, "commented", kind="comment", target=group)
    assert {r.recipient_id for r in rows} == receiving
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    written = [sql for sql in inserts if "notifications_delivery" not in sql]
    assert len(written) == 1 and "SELECT" in written[0] and "notifications_preference" in written[0]
    assert all("SELECT" in sql and "notifications_preference" in sql for sql in inserts)


def test_notify_to_a_queryset_resolves_preferences_inside_the_insert(alice, bob, django_assert_num_queries):
    mute(bob, "mention")
    with django_assert_num_queries(4):  # savepoint, INSERT ... SELECT, its schedule, release
        rows = api.notify(User.objects.all(), "x", kind="mention")
    assert [r.recipient_id for r in rows] == [alice.pk]


# -- the JSON API --------------------------------------------------------------------


@pytest.fixture
def client_for():
    def make(user, csrf=False):
        client = Client(enforce_csrf_checks=csrf)
        client.force_login(user)
        return client

    return make


def cells(response):
    return {(k["key"], c): cell for k in response.json()["kinds"] for c, cell in k["channels"].items()}


def test_get_preferences_lists_every_kind_with_enabled_and_editable_per_channel(alice, client_for):
    mute(alice, "comment")
    response = client_for(alice).get(URL)
    assert response.status_code == 200
    kinds = {k["key"]: k for k in response.json()["kinds"]}
    assert {"mention", "comment", "security"} <= set(kinds)
    assert kinds["comment"]["label"] == "Comments" and kinds["comment"]["category"] == "Activity"
    got = cells(response)
    assert got["comment", "in_app"] == {"enabled": False, "editable": True}
    # Email follows in-app (see test_preferences_follow_in_app.py).
    assert got["comment", "email"]["enabled"] is False and got["comment", "email"]["editable"] is False
    assert got["mention", "push"] == {"enabled": True, "editable": True}
    assert got["security", "email"] == {"enabled": True, "editable": False}
    assert kinds["security"]["critical"] is True


def post(client, body):
    return client.post(URL, json.dumps(body), content_type="application/json")


def test_post_changes_one_cell_and_answers_with_the_new_matrix(alice, client_for):
    response = post(client_for(alice), {"kind": "mention", "channel": "email", "enabled": False})
    assert response.status_code == 200
    assert cells(response)["mention", "email"] == {"enabled": False, "editable": True}
    assert list(Preference.objects.values_list("kind", "channel", "enabled")) == [("mention", "email", False)]


def test_post_changes_several_cells_at_once(alice, client_for):
    changes = [
        {"kind": "mention", "channel": "push", "enabled": False},
        {"kind": "comment", "channel": "in_app", "enabled": False},
        {"kind": None, "channel": "email", "enabled": False},
    ]
    got = cells(post(client_for(alice), {"changes": changes}))
    assert not got["mention", "push"]["enabled"] and not got["comment", "in_app"]["enabled"]
    assert not got["mention", "email"]["enabled"]  # the whole channel, no kind choice
    # null forgets a choice: back to the default
    got = cells(post(client_for(alice), {"kind": "comment", "channel": "in_app", "enabled": None}))
    assert got["comment", "in_app"]["enabled"]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"kind": "security", "channel": "in_app", "enabled": False}, "is critical"),
        ({"kind": "nope", "channel": "in_app", "enabled": False}, "Unknown notification kind 'nope'; declared:"),
        ({"kind": "mention", "channel": "sms", "enabled": False}, "Unknown channel 'sms'; allowed: in_app, email, push"),
        ({"kind": "mention", "channel": "in_app", "enabled": "no"}, "enabled must be"),
        ({"changes": []}, "non-empty list"),
    ],
)
def test_post_refuses_a_bad_cell_with_a_json_400_and_changes_nothing(alice, client_for, body, message):
    good = {"kind": "mention", "channel": "push", "enabled": False}
    bad = {"changes": [good, body]} if "changes" not in body else body
    response = post(client_for(alice), bad)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Preference.objects.exists()


def test_post_needs_the_csrf_token(alice, client_for):
    response = post(client_for(alice, csrf=True), {"kind": "mention", "channel": "push", "enabled": False})
    assert response.status_code == 403
    assert not Preference.objects.exists()


def test_preferences_need_a_login():
    response = Client().get(URL)
    assert response.status_code == 403 and "error" in response.json()


def test_set_preferences_is_all_or_nothing(alice):
    with pytest.raises(ValueError, match="critical"):
        set_preferences(
            alice,
            [
                {"kind": "mention", "channel": "push", "enabled": False},
                {"kind": "security", "channel": "push", "enabled": False},
            ],
        )
    assert not Preference.objects.exists()


# -- the form (template tag) ---------------------------------------------------------


def test_the_preferences_tag_renders_a_form_that_works_without_javascript(alice, client_for):
    client = client_for(alice)
    page = client.get("/preferences/")
    html = page.content.decode()
    assert 'action="/notifications/preferences/"' in html
    assert 'name="on" value="comment:in_app" id="ntf-comment-in_app"' in html
    assert "checked disabled" in html  # security: shown, always on
    assert 'name="cell" value="security:in_app"' not in html
    token = page.cookies["csrftoken"].value
    # Submit as a browser would: every editable cell listed, the checked ones "on";
    # everything as shown but comments in-app unticked.
    shown = [c for c in html.split('name="cell" value="')[1:]]
    cells_shown = [c.split('"')[0] for c in shown]
    on = [c for c in cells_shown if c not in ("comment:in_app", "comment:email", "comment:push")]
    response = client.post(
        "/notifications/preferences/",
        {"csrfmiddlewaretoken": token, "next": "/preferences/", "cell": cells_shown, "on": on},
    )
    assert response.status_code == 302 and response["Location"] == "/preferences/"
    # Only what changed is stored.
    assert list(Preference.objects.values_list("kind", "channel", "enabled")) == [("comment", "in_app", False)]
    assert api.notify(alice, "x", kind="comment") == []


def test_the_form_redirects_only_to_this_site(alice, client_for):
    response = client_for(alice).post(
        "/notifications/preferences/", {"next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_bell_links_to_the_preferences_page_in_the_demo(alice, client_for):
    html = client_for(alice).get("/").content.decode()
    assert 'href="/preferences/" data-notifications-preferences' in html
