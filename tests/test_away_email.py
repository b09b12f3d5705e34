"""Email for people who are away: scheduled by notify(), sent once, only if still unread."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from datetime import timezone as tz

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.utils import timezone

from notifications import api, worker
from notifications.kinds import Kind, register
from notifications.models import Delivery, Preference
from notifications.preferences import set_preferences
from notifications.schedule import claim, set_quiet_hours

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.fixture
def bob():
    return User.objects.create_user("bob", email="bob@example.com")


@pytest.fixture
def at_once(declare):
    """A kind whose email goes at once (its templates are in tests/testapp)."""
    return declare(Kind("awaytest", label="Reviews", channels={"in_app": True, "email": True}))


def states():
    return sorted(Delivery.objects.values_list("state", flat=True))


def test_notify_schedules_an_email_for_recipients_with_email_on(alice, bob, at_once):
    set_preferences(bob, [{"kind": "awaytest", "channel": "email", "enabled": False}])
    api.notify([alice, bob], "asked for a review", kind="awaytest")
    assert list(Delivery.objects.values_list("recipient_id", "channel", "state")) == [
        (alice.pk, "email", "pending")
    ]


def test_the_schedule_is_written_in_notifys_transaction(alice, at_once):
    from tests.conftest import rolled_back

    with rolled_back():
        api.notify(alice, "asked for a review", kind="awaytest")
        assert Delivery.objects.count() == 1
    assert not Delivery.objects.exists()


def test_a_kind_without_an_email_channel_schedules_nothing(alice):
    api.notify(alice, "commented", kind="comment")  # the demo's comment: email off by default
    api.notify(alice, "no kind at all")
    assert not Delivery.objects.exists()


def test_a_due_email_is_sent_once_with_the_kinds_templates(alice, bob, at_once):
    api.notify(alice, "asked", actor=bob, kind="awaytest", description="PR 7", url="/pr/7/")
    assert worker.drain()["sent"] == 1
    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.subject == "bob needs you"
    assert "bob asked for your review: PR 7" in message.body
    assert "http://127.0.0.1:8000/pr/7/" in message.body
    html, mime = message.alternatives[0]
    assert mime == "text/html" and '<p class="review">bob asked for your review: <em>PR 7</em></p>' in html
    assert worker.drain() == {}
    assert len(mail.outbox) == 1 and states() == ["sent"]


def test_the_html_body_escapes_what_people_wrote(alice, bob, at_once):
    api.notify(alice, "asked", actor=bob, kind="awaytest", description="<script>x</script>")
    worker.drain()
    html = mail.outbox[0].alternatives[0][0]
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_email_is_rendered_in_the_recipients_language(declare, settings):
    from django.utils.translation import gettext

    declare(Kind("polite", channels={"in_app": True, "email": True}, text={"email": lambda c: gettext("Yes")}))
    settings.NOTIFICATIONS_USER_LANGUAGE = "last_name"  # a project's own field, here borrowed
    User.objects.create_user("marie", email="marie@example.com", last_name="fr")
    api.notify(User.objects.filter(username="marie"), "x", kind="polite")
    worker.drain()
    assert mail.outbox[0].subject == "Oui"


def test_a_user_without_an_address_is_skipped(at_once):
    nobody = User.objects.create_user("nobody")
    api.notify(nobody, "asked", kind="awaytest")
    worker.drain()
    assert not mail.outbox
    assert list(Delivery.objects.values_list("state", "note")) == [("skipped", "no email address")]


def test_an_email_muted_after_notify_is_not_sent(alice, at_once):
    api.notify(alice, "asked", kind="awaytest")
    set_preferences(alice, [{"kind": "awaytest", "channel": "email", "enabled": False}])
    worker.drain()
    assert not mail.outbox
    assert list(Delivery.objects.values_list("state", "note")) == [("skipped", "muted")]


def test_a_whole_channel_muted_after_notify_sends_nothing(alice, at_once):
    api.notify(alice, "asked", kind="awaytest")
    set_preferences(alice, [{"kind": None, "channel": "email", "enabled": False}])
    worker.drain()
    assert not mail.outbox


def test_a_deleted_notification_sends_nothing(alice, at_once):
    (row,) = api.notify(alice, "asked", kind="awaytest")
    api.delete(alice, [row.pk])
    worker.drain()
    assert not mail.outbox and states() == ["skipped"]


def test_a_read_notification_sends_nothing(alice, at_once):
    (row,) = api.notify(alice, "asked", kind="awaytest")
    api.mark_read(alice, [row.pk])
    worker.drain()
    assert not mail.outbox and states() == ["skipped"]


def test_an_email_is_not_sent_before_it_is_due(alice, declare):
    declare(Kind("later", channels={"in_app": True, "email": timedelta(minutes=5)}))
    (row,) = api.notify(alice, "x", kind="later")
    assert worker.drain() == {}
    assert Delivery.objects.get().due == row.created + timedelta(minutes=5)


def test_a_grouped_kind_sends_one_email_per_group_naming_everyone(alice, declare):
    declare(
        Kind("awaytest", channels={"in_app": True, "email": timedelta(seconds=0)}, group_by="target")
    )
    actors = [User.objects.create_user(f"friend{i}") for i in range(5)]
    for actor in actors:
        api.notify(alice, "asked", actor=actor, target=alice, kind="awaytest", description="PR")
    api.notify(alice, "asked", actor=actors[0], target=actors[0], kind="awaytest", description="other")
    worker.drain()
    assert states() == ["sent"] * 2 + ["skipped"] * 4  # one per member; one email per group
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == ["friend0 needs you", "friend4 needs you (5 times)"]
    body = next(m.body for m in mail.outbox if "5 times" in m.subject)
    assert "friend0, friend1 and 3 others asked for your review: PR" in body


def test_a_group_read_after_notify_sends_nothing(alice, declare):
    declare(Kind("awaytest", channels={"in_app": True, "email": True}, group_by="target"))
    rows = [api.notify(alice, "asked", target=alice, kind="awaytest")[0] for _ in range(3)]
    api.mark_read(alice, [rows[-1].pk])  # the group's newest row stands for it
    worker.drain()
    assert not mail.outbox and states() == ["skipped"] * 3


# -- exactly once --------------------------------------------------------------------


def test_a_claimed_email_is_never_claimed_again(alice, at_once):
    api.notify(alice, "asked", kind="awaytest")
    (first,) = claim()
    assert claim() == []  # a second worker finds nothing
    assert Delivery.objects.get().state == "sending" and Delivery.objects.get().attempts == 1
    assert worker.drain() == {} and not mail.outbox


def test_a_claim_left_behind_by_a_dead_worker_is_failed_not_resent(alice, at_once, settings):
    api.notify(alice, "asked", kind="awaytest")
    claim()  # ... and the worker dies before sending
    settings.NOTIFICATIONS_DELIVERY_LEASE = 0.01
    time.sleep(0.05)
    assert worker.drain() == {}
    assert not mail.outbox
    assert list(Delivery.objects.values_list("state", "note")) == [
        ("failed", "interrupted: the worker stopped")
    ]


def use_email_backend(settings, backend: str) -> None:
    """The default mailer's backend, as the running Django version configures it."""
    if hasattr(settings, "MAILERS"):  # Django 6.1+
        settings.MAILERS = {"default": {"BACKEND": backend}}
    else:
        settings.EMAIL_BACKEND = backend


def test_a_backend_error_fails_the_delivery_without_retrying(alice, at_once, settings, caplog):
    use_email_backend(settings, "tests.mailbackends.Broken")
    api.notify(alice, "asked", kind="awaytest")
    assert worker.drain() == {"failed": 1}
    use_email_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    assert worker.drain() == {} and not mail.outbox
    assert "ConnectionRefusedError" in Delivery.objects.get().note


# -- timing: only if still unread after a delay ---------------------------------------


@pytest.fixture
def running_worker(transactional_db):
    """A worker thread polling every 0.2 s, as a server process runs it."""
    w = worker.Worker(poll=0.2)
    thread = threading.Thread(target=w.run)
    thread.start()
    yield w
    w.stop()
    thread.join(10)


@pytest.fixture
def two_seconds(declare):
    return declare(Kind("awaytest", channels={"in_app": True, "email": timedelta(seconds=2)}))


def test_reading_within_the_delay_sends_nothing(running_worker, two_seconds):
    alice = User.objects.create_user("alice", email="alice@example.com")
    (row,) = api.notify(alice, "asked", kind="awaytest")
    time.sleep(max(0.0, 1.0 - (timezone.now() - row.created).total_seconds()))
    api.mark_read(alice, [row.pk])
    time.sleep(2 + 0.2 + 1.0)
    assert mail.outbox == []
    assert list(Delivery.objects.values_list("state", "note")) == [("skipped", "read")]


def test_still_unread_after_the_delay_sends_exactly_one_email(running_worker, two_seconds):
    alice = User.objects.create_user("alice", email="alice@example.com")
    (row,) = api.notify(alice, "asked", kind="awaytest")
    deadline = row.created + timedelta(seconds=2 + 0.2 + 1.0)
    while not mail.outbox and timezone.now() < deadline:
        time.sleep(0.05)
    sent_at = timezone.now()
    assert len(mail.outbox) == 1, "no email within the poll interval plus 1 s"
    assert sent_at - row.created >= timedelta(seconds=2)
    time.sleep(1.0)  # the worker keeps polling: still one
    assert len(mail.outbox) == 1


# -- one-click unsubscribe (RFC 8058) --------------------------------------------------


def _unsubscribe_path(message) -> str:
    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http://127.0.0.1:8000/") and header.endswith(">")
    return header[1:-1].removeprefix("http://127.0.0.1:8000")


def test_every_email_carries_one_click_unsubscribe_headers(alice, at_once):
    api.notify(alice, "asked", kind="awaytest")
    worker.drain()
    message = mail.outbox[0].message()
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/notifications/unsubscribe/")


def test_one_click_unsubscribe_works_logged_out_and_flips_exactly_one_preference(alice, at_once):
    Preference.objects.create(user=alice, kind="", channel="push", enabled=False)
    api.notify(alice, "asked", kind="awaytest")
    worker.drain()
    path = _unsubscribe_path(mail.outbox[0])
    before = set(Preference.objects.values_list("user_id", "kind", "channel", "enabled"))
    client = Client(enforce_csrf_checks=True)  # no session, no CSRF token: a mail client
    response = client.post(path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    after = set(Preference.objects.values_list("user_id", "kind", "channel", "enabled"))
    assert after - before == {(alice.pk, "awaytest", "email", False)} and before <= after
    api.notify(alice, "asked again", kind="awaytest")
    worker.drain()
    assert len(mail.outbox) == 1


def test_the_unsubscribe_link_opened_in_a_browser_asks_first_and_changes_nothing(alice, at_once):
    api.notify(alice, "asked", kind="awaytest")
    worker.drain()
    response = Client().get(_unsubscribe_path(mail.outbox[0]))
    assert response.status_code == 200
    assert b"Stop these emails?" in response.content and b'method="post"' in response.content
    assert not Preference.objects.exists()


def test_a_tampered_unsubscribe_link_is_refused(alice, at_once):
    api.notify(alice, "asked", kind="awaytest")
    worker.drain()
    path = _unsubscribe_path(mail.outbox[0])
    response = Client().post(path.replace("/unsubscribe/", "/unsubscribe/x"))
    assert response.status_code == 400 and b"does not work" in response.content
    assert not Preference.objects.exists()


def test_critical_emails_have_no_unsubscribe_link(alice):
    api.notify(alice, "signed in", kind="security")
    worker.drain()
    assert "List-Unsubscribe" not in mail.outbox[0].extra_headers


# -- quiet hours --------------------------------------------------------------------


def _quiet_now(user) -> datetime:
    """Quiet hours around now in Tokyo; returns when they end."""
    now = timezone.now().astimezone(tz(timedelta(hours=9)))
    start, end = (now - timedelta(hours=1)).time(), (now + timedelta(hours=1)).time()
    set_quiet_hours(user, start, end, "Asia/Tokyo")
    return now + timedelta(hours=1)


def test_quiet_hours_hold_an_email_until_they_end(alice, at_once):
    end = _quiet_now(alice)
    api.notify(alice, "asked", kind="awaytest")
    assert worker.drain() == {"held": 1}
    assert not mail.outbox
    delivery = Delivery.objects.get()
    assert delivery.state == "pending" and abs(delivery.due - end) < timedelta(seconds=1)


def test_quiet_hours_never_hold_a_critical_kind(alice):
    _quiet_now(alice)
    api.notify(alice, "signed in", kind="security")
    assert worker.drain() == {"sent": 1}


def test_outside_quiet_hours_email_goes_at_once(alice, at_once):
    now = timezone.now()
    set_quiet_hours(alice, (now + timedelta(hours=1)).time(), (now + timedelta(hours=2)).time(), "UTC")
    api.notify(alice, "asked", kind="awaytest")
    assert worker.drain() == {"sent": 1}


def test_quiet_hours_may_span_midnight(alice):
    from notifications.schedule import quiet_until

    set_quiet_hours(alice, clock(22, 0), clock(7, 0), "Europe/Paris")
    at = datetime(2026, 1, 10, 23, 30, tzinfo=UTC)  # 00:30 in Paris
    assert quiet_until(alice, at) == datetime(2026, 1, 11, 6, 0, tzinfo=UTC)
    assert quiet_until(alice, datetime(2026, 1, 11, 12, 0, tzinfo=UTC)) is None


def test_quiet_hours_refuse_an_unknown_time_zone(alice):
    with pytest.raises(ValueError, match="Unknown time zone 'Mars/Base'"):
        set_quiet_hours(alice, clock(22, 0), clock(7, 0), "Mars/Base")


def test_a_notification_of_a_kind_no_longer_declared_is_skipped(alice, declare):
    kind = declare(Kind("fleeting", channels={"in_app": True, "email": True}))
    api.notify(alice, "x", kind="fleeting")
    register.unregister(kind.key)
    assert worker.drain() == {"skipped": 1}
    assert not mail.outbox


def test_a_user_made_inactive_before_the_email_is_due_gets_none(alice, at_once):
    api.notify(alice, "asked for a review", kind="awaytest")
    User.objects.filter(pk=alice.pk).update(is_active=False)
    assert worker.drain() == {"skipped": 1}
    assert not mail.outbox
    assert list(Delivery.objects.values_list("note", flat=True)) == ["inactive user"]
