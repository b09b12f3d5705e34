"""What a delivery's record says: a hold is not an attempt; a send past its lease is what it was."""

from __future__ import annotations

import signal
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from notifications import api, schedule, worker
from notifications.kinds import Kind
from notifications.models import Delivery

from .test_away_email import use_email_backend
from .test_away_push import pushed, subscribe  # noqa: F401  (pushed: a fixture)
from .test_away_worker import sent, start_worker, wait_until, worker_env

User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.fixture
def at_once(declare):
    return declare(Kind("recordtest", label="Records", channels={"in_app": True, "email": True}))


def quiet_now(user) -> None:
    now = timezone.now()
    set_hours = schedule.set_quiet_hours
    set_hours(user, (now - timedelta(hours=1)).time(), (now + timedelta(hours=1)).time(), "UTC")


class AnotherWorkerGivesUpClaims(EmailBackend):
    """Sends slowly: meanwhile another worker's pass finds every claim past its lease."""

    def send_messages(self, messages):
        schedule.expire_claims(now=timezone.now() + timedelta(hours=1))
        return super().send_messages(messages)


@pytest.mark.django_db
def test_a_quiet_hours_hold_is_not_counted_as_an_attempt(alice, at_once):
    quiet_now(alice)
    api.notify(alice, "asked", kind="recordtest")
    assert worker.drain() == {"held": 1}
    assert list(Delivery.objects.values_list("state", "attempts", "note")) == [("pending", 0, "quiet hours")]


@pytest.mark.django_db
def test_a_push_held_by_quiet_hours_keeps_its_retries(alice, service, vapid, pushed, settings):  # noqa: F811
    settings.NOTIFICATIONS_PUSH_ATTEMPTS = 2
    subscribe(alice, service.device("a"))
    quiet_now(alice)
    api.notify(alice, "pinged you", target=alice, kind="ping")
    assert worker.drain() == {"held": 1}
    schedule.set_quiet_hours(alice, None)
    Delivery.objects.update(due=timezone.now())  # the quiet hours are over
    service.answer("a", 503)
    assert worker.drain() == {"retry": 1}  # the first attempt of two
    assert Delivery.objects.get().attempts == 1


@pytest.mark.django_db
def test_a_send_that_outlives_its_lease_is_recorded_as_sent(alice, at_once, settings):
    use_email_backend(settings, f"{__name__}.AnotherWorkerGivesUpClaims")
    api.notify(alice, "asked", kind="recordtest")
    assert worker.drain() == {"sent": 1}
    assert len(mail.outbox) == 1
    assert list(Delivery.objects.values_list("state", "note")) == [("sent", "")]


@pytest.mark.django_db
def test_the_rows_of_a_batch_waiting_past_their_lease_are_each_sent_once_and_recorded(at_once, settings):
    use_email_backend(settings, f"{__name__}.AnotherWorkerGivesUpClaims")
    users = [User.objects.create_user(f"user{i}", email=f"user{i}@example.com") for i in range(3)]
    api.notify(users, "asked", kind="recordtest")
    assert worker.drain() == {"sent": 3}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(u.email for u in users)
    assert list(Delivery.objects.values_list("state", flat=True)) == ["sent"] * 3


@pytest.mark.django_db(transaction=True)
def test_two_workers_whose_sends_outlive_the_lease_send_each_email_once_and_record_it(tmp_path):
    # Each email takes 1.5 s, the lease is 1.2 s: each worker gives up the
    # other's claims, the one being sent and the ones waiting behind it.
    env = worker_env(
        tmp_path,
        NOTIFICATIONS_DELIVERY_LEASE="1.2",
        NOTIFICATIONS_PUSH_TIMEOUT="0.01",
        SLOW_EMAIL="1.5",
    )
    workers = [start_worker(env, "--poll", "0.05") for _ in range(2)]
    try:
        for w in workers:  # both are polling before anything is due
            assert w.stdout is not None and "Delivering" in w.stdout.readline()
        users = [User.objects.create_user(f"slow{i}", email=f"slow{i}@example.com") for i in range(4)]
        for user in users:
            api.notify(user, "signed in from a new device", kind="security")  # critical: email at once
        emails = Delivery.objects.filter(channel="email")
        wait_until(lambda: list(emails.values_list("state", flat=True)) == ["sent"] * len(users), timeout=60)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(30)
            w.stdout.close()
    assert sorted(to for _, to in sent(tmp_path)) == sorted(u.email for u in users)
    assert list(emails.values_list("state", "note")) == [("sent", "")] * len(users)
