"""Digests: a user's notifications collected over a window or until a local time, sent as one message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from notifications import api, worker
from notifications.kinds import Channel, Kind
from notifications.models import Delivery
from notifications.preferences import set_preferences

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.fixture
def bob():
    return User.objects.create_user("bob", email="bob@example.com")


@pytest.fixture
def half_hourly(declare):
    """A kind whose email is a 30-minute digest."""
    return declare(
        Kind("digested", label="Reviews", channels={"in_app": True, "email": Channel(digest=timedelta(minutes=30))})
    )


@pytest.fixture
def grouped_digest(declare):
    """A 30-minute email digest of a kind that groups everything on Post 7."""
    return declare(
        Kind(
            "digested",
            channels={"in_app": True, "email": Channel(digest=timedelta(minutes=30))},
            group_by=lambda n: "post-7",
        )
    )


@pytest.fixture
def at_once(declare):
    return declare(Kind("awaytest", label="Reviews", channels={"in_app": True, "email": True}))


def test_a_digest_sends_one_email_listing_only_what_is_still_unread(clock, alice, bob, half_hourly):
    rows = [api.notify(alice, f"asked for review {i}", actor=bob, kind="digested")[0] for i in range(5)]
    worker.drain()
    assert not mail.outbox
    api.mark_read(alice, [rows[0].pk, rows[3].pk])
    clock.advance(timedelta(minutes=29))
    worker.drain()
    assert not mail.outbox
    clock.advance(timedelta(minutes=1))
    worker.drain()
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "3 new notifications"
    listed = [line for line in message.body.splitlines() if line.startswith("- ")]
    assert listed == [f"- bob asked for review {i}" for i in (4, 2, 1)]
    assert worker.drain() == {} and len(mail.outbox) == 1


def test_a_digest_with_nothing_unread_left_is_not_sent(clock, alice, half_hourly):
    rows = api.notify(alice, "asked", kind="digested") + api.notify(alice, "asked", kind="digested")
    worker.drain()
    api.mark_read(alice, [n.pk for n in rows])
    clock.advance(timedelta(minutes=30))
    worker.drain()
    assert not mail.outbox
    assert set(Delivery.objects.values_list("state", flat=True)) == {"skipped"}


def test_a_digest_carries_its_one_click_unsubscribe(clock, alice, half_hourly):
    api.notify(alice, "asked", kind="digested")
    worker.drain()
    clock.advance(timedelta(minutes=30))
    worker.drain()
    (message,) = mail.outbox
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = message.extra_headers["List-Unsubscribe"].strip("<>")
    response = Client().post(link.removeprefix("http://127.0.0.1:8000"))
    assert response.status_code == 200
    api.notify(alice, "asked again", kind="digested")
    clock.advance(timedelta(minutes=30))
    worker.drain()
    assert len(mail.outbox) == 1


def test_a_grouped_kind_appears_in_a_digest_as_its_group(clock, alice, grouped_digest):
    for name in ("bob", "carol", "dave", "erin", "frank"):
        actor = User.objects.create_user(name)
        api.notify(alice, "commented on Post 7", actor=actor, kind="digested")
    worker.drain()
    clock.advance(timedelta(minutes=30))
    worker.drain()
    (message,) = mail.outbox
    assert message.subject == "1 new notification"
    listed = [line for line in message.body.splitlines() if line.startswith("- ")]
    assert listed == ["- bob, carol and 3 others commented on Post 7"]
    assert list(Delivery.objects.values_list("state", flat=True)) == ["sent"] * 5


def test_a_notification_in_a_digest_is_never_also_emailed_alone(clock, alice, half_hourly):
    api.notify(alice, "asked", kind="digested")
    worker.drain()
    clock.advance(timedelta(minutes=30))
    assert worker.drain()["sent"] == 1
    assert len(mail.outbox) == 1 and Delivery.objects.get().state == "sent"


def test_a_user_may_choose_a_daily_digest_through_the_preferences_api(alice, at_once):
    client = Client()
    client.force_login(alice)
    response = client.post(
        "/notifications/api/preferences/",
        {"kind": "awaytest", "channel": "email", "every": "daily", "at": "08:00", "time_zone": "Europe/Paris"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    (row,) = [k for k in response.json()["kinds"] if k["key"] == "awaytest"]
    assert row["channels"]["email"] == {
        "enabled": True, "editable": True, "every": "daily", "at": "08:00", "time_zone": "Europe/Paris"
    }


@pytest.mark.parametrize(
    "change, message",
    [
        ({"every": "fortnightly"}, "Unknown every"),
        ({"every": "daily", "at": "25:00"}, "at must be a local time"),
        ({"every": "daily", "time_zone": "Mars/Olympus"}, "Unknown time zone"),
        ({"every": "weekly", "weekday": 7}, "weekday must be"),
    ],
)
def test_a_bad_digest_choice_is_refused_with_a_message(alice, at_once, change, message):
    client = Client()
    client.force_login(alice)
    response = client.post(
        "/notifications/api/preferences/",
        {"kind": "awaytest", "channel": "email", **change},
        content_type="application/json",
    )
    assert response.status_code == 400 and message in response.json()["error"]


def test_a_critical_kind_cannot_be_digested(alice):
    with pytest.raises(ValueError, match="critical"):
        set_preferences(alice, [{"kind": "security", "channel": "email", "every": "daily"}])
    with pytest.raises(ValueError, match="digest"):
        Kind("alarm", critical=True, channels={"in_app": True, "email": Channel(digest=timedelta(minutes=5))})


def paris_daily(user) -> None:
    set_preferences(
        user, [{"kind": "awaytest", "channel": "email", "every": "daily", "at": "08:00", "time_zone": "Europe/Paris"}]
    )


@pytest.mark.parametrize(
    "published, due",
    [
        # Winter time (UTC+1) on the day before the change; summer time (UTC+2) on the day of it.
        (datetime(2026, 3, 27, 12, 0, tzinfo=UTC), datetime(2026, 3, 28, 7, 0, tzinfo=UTC)),
        (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
        # And back: summer time the day before, winter time on the day of it.
        (datetime(2026, 10, 24, 12, 0, tzinfo=UTC), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
        (datetime(2026, 10, 23, 12, 0, tzinfo=UTC), datetime(2026, 10, 24, 6, 0, tzinfo=UTC)),
    ],
)
def test_a_daily_digest_goes_once_at_eight_paris_time_across_dst(clock, alice, at_once, published, due):
    paris_daily(alice)
    clock.now = published
    api.notify(alice, "asked", kind="awaytest")
    api.notify(alice, "asked again", kind="awaytest")
    worker.drain()
    clock.now = due - timedelta(seconds=1)
    worker.drain()
    assert not mail.outbox
    clock.now = due
    worker.drain()
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == "2 new notifications"
    clock.advance(timedelta(days=1))
    worker.drain()
    assert len(mail.outbox) == 1


def test_the_preferences_page_switches_mentions_to_a_daily_digest(alice):
    client = Client()
    client.force_login(alice)
    html = client.get("/preferences/").content.decode()
    assert 'value="mention:email:daily"' in html
    cells = [c.split('"')[0] for c in html.split('name="cell" value="')[1:]]
    kinds = client.get("/notifications/api/preferences/").json()["kinds"]
    on = [f"{k['key']}:{name}" for k in kinds for name, cell in k["channels"].items() if cell["enabled"]]
    response = client.post(
        "/notifications/preferences/",
        {
            "next": "/preferences/",
            "cell": cells,
            "on": on,
            "every": ["mention:email:daily", "mention:push:default"],
            "at:mention:email": "07:30",
            "time_zone": "Europe/Paris",
        },
    )
    assert response.status_code == 302
    (row,) = [k for k in client.get("/notifications/api/preferences/").json()["kinds"] if k["key"] == "mention"]
    assert row["channels"]["email"]["every"] == "daily"
    assert row["channels"]["email"]["at"] == "07:30"
    assert row["channels"]["email"]["time_zone"] == "Europe/Paris"
    assert "every" not in row["channels"]["push"]


@pytest.mark.parametrize(
    "published, due",
    [
        # Spring: 02:30 does not exist on the 29th; it comes as 03:30 summer time.
        (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        # Autumn: 02:30 comes twice on the 25th; the first, summer time.
        (datetime(2026, 10, 24, 12, 0, tzinfo=UTC), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
    ],
)
def test_a_daily_digest_at_a_time_dst_skips_or_repeats_goes_once_that_day(clock, alice, at_once, published, due):
    set_preferences(
        alice, [{"kind": "awaytest", "channel": "email", "every": "daily", "at": "02:30", "time_zone": "Europe/Paris"}]
    )
    clock.now = published
    api.notify(alice, "asked", kind="awaytest")
    worker.drain()
    clock.now = due - timedelta(seconds=1)
    worker.drain()
    assert not mail.outbox
    clock.now = due
    worker.drain()
    assert len(mail.outbox) == 1
    api.notify(alice, "asked again", kind="awaytest")  # after the slot: the next day's
    clock.advance(timedelta(hours=2))
    worker.drain()
    assert len(mail.outbox) == 1


def test_a_group_whose_first_member_was_read_still_comes_in_the_digest(clock, alice, grouped_digest):
    first = None
    for name in ("bob", "carol", "dave"):
        actor = User.objects.create_user(name)
        (row,) = api.notify(alice, "commented on Post 7", actor=actor, kind="digested")
        first = first or row
        worker.drain()
    api.mark_read(alice, [first.pk])
    clock.advance(timedelta(minutes=30))
    worker.drain()
    (message,) = mail.outbox
    assert [line for line in message.body.splitlines() if line.startswith("- ")] == [
        "- bob, carol and dave commented on Post 7"
    ]


def test_a_digest_for_a_user_made_inactive_is_not_sent(clock, alice, half_hourly):
    api.notify(alice, "asked", kind="digested")
    api.notify(alice, "asked again", kind="digested")
    worker.drain()
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)
    clock.advance(timedelta(minutes=30))
    worker.drain()
    assert not mail.outbox
    assert set(Delivery.objects.values_list("state", flat=True)) == {"skipped"}
