"""Inbox states per user: seen, archived, snoozed; through notifications.api and the JSON API."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from notifications import api, worker
from notifications.kinds import Kind
from notifications.models import ReadEvent

pytestmark = pytest.mark.django_db

LIST = "/notifications/api/"
TOKEN = "a" * 32


@pytest.fixture
def client_alice(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    client.cookies["csrftoken"] = TOKEN
    return client


def post(client, path, body=None):
    """A CSRF-checked JSON POST, as the JS client sends it."""
    return client.post(
        path, json.dumps(body or {}), content_type="application/json", HTTP_X_CSRFTOKEN=TOKEN
    )


def listed(client, **query):
    return [n["id"] for n in client.get(LIST, query).json()["results"]]


def events(user):
    return [json.loads(e.payload) for e in ReadEvent.objects.filter(user=user).order_by("id")]


# -- seen ----------------------------------------------------------------------------


def test_the_badge_counts_what_is_unread_and_not_seen(alice):
    a, b = api.notify(alice, "a")[0], api.notify(alice, "b")[0]
    api.mark_seen(alice, [a.pk])
    assert api.unseen_count(alice) == 1 and api.unread_count(alice) == 2
    api.mark_read(alice, [b.pk])
    assert api.unseen_count(alice) == 0


def test_seen_is_kept_per_user_for_broadcasts(alice, bob):
    api.broadcast("maintenance tonight")
    api.mark_seen(alice, "all")
    assert api.unseen_count(alice) == 0 and api.unseen_count(bob) == 1
    assert api.unread_count(alice) == 1  # seen is not read


def test_seen_all_stops_at_through(alice):
    a, b = api.notify(alice, "a")[0], api.notify(alice, "b")[0]
    assert api.mark_seen(alice, "all", through=a.pk) == [a.pk]
    assert listed(_client(alice), unseen=1) == [b.pk]


def test_marking_unread_makes_an_item_unseen_again(alice):
    (row,) = api.notify(alice, "a")
    api.mark_seen(alice, [row.pk])
    api.mark_read(alice, [row.pk])
    api.mark_unread(alice, [row.pk])
    assert api.unseen_count(alice) == 1


def test_seen_endpoint_marks_ids_and_answers_the_counts(client_alice, alice):
    a, _b = api.notify(alice, "a")[0], api.notify(alice, "b")[0]
    response = post(client_alice, "/notifications/api/seen/", {"ids": [a.pk, 10**9]})
    assert response.status_code == 200
    assert response.json() == {"ids": [a.pk], "unread_count": 2, "unseen_count": 1}
    assert [n["seen"] for n in client_alice.get(LIST).json()["results"]] == [False, True]


def test_seen_endpoint_takes_all_shown(client_alice, alice):
    api.notify(alice, "a")
    api.broadcast("b")
    assert post(client_alice, "/notifications/api/seen/", {"ids": "all"}).json()["unseen_count"] == 0


@pytest.mark.parametrize("body", [{}, {"ids": "some"}, {"ids": ["1"]}, {"ids": [True]}, {"ids": "all", "through": "x"}])
def test_seen_endpoint_refuses_bad_ids_with_a_message(client_alice, alice, body):
    response = post(client_alice, "/notifications/api/seen/", body)
    assert response.status_code == 400
    assert "ids" in response.json()["error"] or "through" in response.json()["error"]


def test_seen_records_one_state_event_and_none_when_nothing_changed(alice):
    (row,) = api.notify(alice, "a")
    api.mark_seen(alice, [row.pk])
    api.mark_seen(alice, [row.pk])
    assert [(e["state"], e["ids"], e["unseen_count"]) for e in events(alice)] == [("seen", [row.pk], 0)]


def test_seen_does_not_cancel_a_pending_email(alice, declare):
    declare(Kind("inboxmail", label="Reviews", channels={"in_app": True, "email": True}))
    alice.email = "alice@example.com"
    alice.save()
    (row,) = api.notify(alice, "asked", kind="inboxmail")
    api.mark_seen(alice, [row.pk])
    worker.drain()
    assert len(mail.outbox) == 1


# -- archived ------------------------------------------------------------------------


def test_archived_items_leave_the_inbox_and_are_listed_under_archived(client_alice, alice):
    a, b = api.notify(alice, "a")[0], api.notify(alice, "b")[0]
    assert post(client_alice, f"/notifications/api/{a.pk}/archive/").json()["ids"] == [a.pk]
    assert listed(client_alice) == [b.pk]
    assert listed(client_alice, archived=1) == [a.pk]
    assert client_alice.get(LIST, {"archived": 1}).json()["results"][0]["archived"] is True


def test_unarchive_restores_an_item_to_the_inbox(client_alice, alice):
    (row,) = api.notify(alice, "a")
    api.archive(alice, [row.pk])
    assert post(client_alice, f"/notifications/api/{row.pk}/unarchive/").status_code == 200
    assert listed(client_alice) == [row.pk] and listed(client_alice, archived=1) == []


def test_archiving_a_broadcast_is_for_this_user_only(alice, bob):
    row = api.broadcast("b")
    api.archive(alice, [row.pk])
    assert not api.inbox(alice).exists() and list(api.inbox(bob)) == [row]


def test_archive_all_read_takes_only_read_items(client_alice, alice):
    a, b = api.notify(alice, "a")[0], api.notify(alice, "b")[0]
    api.mark_read(alice, [a.pk])
    response = post(client_alice, "/notifications/api/archive-read/")
    assert response.json()["ids"] == [a.pk]
    assert listed(client_alice) == [b.pk]


def test_archived_unread_items_leave_the_badge_but_stay_unread(alice):
    (row,) = api.notify(alice, "a")
    api.archive(alice, [row.pk])
    assert api.unseen_count(alice) == 0 and api.unread_count(alice) == 1


def test_state_changes_of_rows_not_visible_are_404(client_alice, bob):
    (theirs,) = api.notify(bob, "private")
    for action in ("archive", "unarchive", "snooze"):
        response = post(client_alice, f"/notifications/api/{theirs.pk}/{action}/", {"until": _later()})
        assert response.status_code == 404, action
    assert not api.inbox(bob, archived=True).exists()


def test_state_changes_need_a_login_and_a_csrf_token(alice):
    (row,) = api.notify(alice, "a")
    assert post(Client(), f"/notifications/api/{row.pk}/archive/").status_code == 403
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(f"/notifications/api/{row.pk}/archive/").status_code == 403
    assert client.get(f"/notifications/api/{row.pk}/archive/").status_code == 405
    assert api.inbox(alice).exists()


# -- snoozed -------------------------------------------------------------------------


def _later(minutes: int = 60) -> str:
    return (timezone.now() + timedelta(minutes=minutes)).isoformat()


def test_a_snoozed_item_is_hidden_until_its_time(client_alice, alice):
    (row,) = api.notify(alice, "a")
    response = post(client_alice, f"/notifications/api/{row.pk}/snooze/", {"until": _later()})
    assert response.status_code == 200 and response.json()["unseen_count"] == 0
    assert listed(client_alice) == []


@pytest.mark.parametrize(
    ("until", "message"),
    [(None, "until is required"), ("tomorrow", "not an ISO 8601"), ("2001-01-01T00:00:00Z", "future")],
)
def test_a_bad_snooze_time_is_a_400_that_says_why(client_alice, alice, until, message):
    (row,) = api.notify(alice, "a")
    response = post(client_alice, f"/notifications/api/{row.pk}/snooze/", {"until": until})
    assert response.status_code == 400 and message in response.json()["error"]
    assert listed(client_alice) == [row.pk]


def test_a_due_snooze_wakes_as_unread_and_unseen(alice):
    (row,) = api.notify(alice, "a")
    api.mark_seen(alice, [row.pk])
    api.mark_read(alice, [row.pk])
    api.snooze(alice, [row.pk], timezone.now() + timedelta(minutes=5))
    assert api.wake_due(timezone.now() + timedelta(minutes=10)) == 1
    assert api.unseen_count(alice) == 1 and api.unread_count(alice) == 1


def test_waking_records_one_woken_event_carrying_the_item(alice):
    (row,) = api.notify(alice, "a")
    api.snooze(alice, [row.pk], timezone.now() + timedelta(minutes=5))
    later = timezone.now() + timedelta(minutes=10)
    api.wake_due(later)
    assert api.wake_due(later) == 0  # woken once
    woken = [e for e in events(alice) if e.get("state") == "woken"]
    assert len(woken) == 1 and [n["id"] for n in woken[0]["items"]] == [row.pk]
    assert woken[0]["items"][0]["unread"] is True and woken[0]["unseen_count"] == 1


def test_a_snoozed_broadcast_wakes_for_its_user_only(alice, bob):
    row = api.broadcast("b")
    api.mark_read(alice, [row.pk])
    api.mark_read(bob, [row.pk])
    api.snooze(alice, [row.pk], timezone.now() + timedelta(minutes=5))
    api.wake_due(timezone.now() + timedelta(minutes=10))
    assert api.unread_count(alice) == 1 and api.unread_count(bob) == 0


def test_a_snooze_not_yet_due_does_not_wake(alice):
    (row,) = api.notify(alice, "a")
    api.snooze(alice, [row.pk], timezone.now() + timedelta(minutes=5))
    assert api.wake_due() == 0 and not api.inbox(alice).exists()


# -- the list ------------------------------------------------------------------------


def test_the_list_pages_by_cursor(client_alice, alice):
    ids = [api.notify(alice, f"n{i}")[0].pk for i in range(5)]
    first = client_alice.get(LIST, {"page_size": 2}).json()
    second = client_alice.get(LIST, {"page_size": 2, "before": first["next_before"]}).json()
    third = client_alice.get(LIST, {"page_size": 2, "before": second["next_before"]}).json()
    pages = [[n["id"] for n in p["results"]] for p in (first, second, third)]
    assert pages == [ids[:2:-1][:2], ids[2:0:-1], ids[:1]] and third["next_before"] is None


@pytest.mark.parametrize("query", [{"unseen": "maybe"}, {"archived": "x"}, {"before": "-1"}])
def test_the_list_refuses_bad_filters(client_alice, alice, query):
    response = client_alice.get(LIST, query)
    assert response.status_code == 400 and response.json()["error"]


def test_the_hq_unread_meaning_is_unchanged_by_archive_and_seen(alice):
    a, b = api.notify(alice, "a")[0], api.notify(alice, "b")[0]
    api.archive(alice, [a.pk])
    api.mark_seen(alice, [b.pk])
    assert alice.notifications.unread().count() == 2


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def test_the_hq_unread_meaning_is_unchanged_by_snoozes_and_in_its_endpoints(alice):
    """hq's unread is the read state alone: archived, seen and snoozed items stay unread there."""
    a, b, c = (api.notify(alice, name)[0] for name in "abc")
    api.archive(alice, [a.pk])
    api.mark_seen(alice, [b.pk])
    api.snooze(alice, [c.pk], timezone.now() + timedelta(minutes=5))
    assert alice.notifications.unread().count() == 3
    client = _client(alice)
    assert client.get("/notifications/api/unread_count/").json() == {"unread_count": 3}
    listing = client.get("/notifications/api/unread_list/", {"max": 10}).json()
    assert listing["unread_count"] == 3
    assert {n["id"] for n in listing["unread_list"]} == {a.pk, b.pk, c.pk}


# -- the template tag's list ---------------------------------------------------------


def test_the_bell_tag_lists_the_inbox_with_seen_state_and_the_inbox_controls(alice):
    """The server-rendered list leaves out what is archived or snoozed, and marks what was seen."""
    import re

    from django.template import Context, Template
    from django.test import RequestFactory

    archived, snoozed, seen, new = (api.notify(alice, name)[0] for name in ("archived", "snoozed", "seen", "new"))
    api.archive(alice, [archived.pk])
    api.snooze(alice, [snoozed.pk], timezone.now() + timedelta(minutes=5))
    api.mark_seen(alice, [seen.pk])
    request = RequestFactory().get("/")
    request.user = alice
    html = Template("{% load notifications %}{% notifications_bell %}").render(Context({"request": request}))

    items = re.findall(r'<li [^>]*data-notification-id="(\d+)"[^>]*data-seen="([01])"', html)
    assert items == [(str(new.pk), "0"), (str(seen.pk), "1")]
    assert re.search(r'data-notifications-badge data-count="1"', html)
    assert html.count("data-notifications-archive>") == 2 and html.count("data-notifications-snooze aria-expanded=\"false\">") == 2
    for hook in ("data-seen-url", "data-archive-url", "data-unarchive-url", "data-snooze-url", "data-archive-read-url"):
        assert re.search(rf'{hook}="/notifications/api/[^"]+"', html), hook
    assert "data-notifications-archived" in html and "data-notifications-archive-read" in html
