"""Caps: at most N emails or pushes per user and hour; the rest folds into the next digest."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail

from notifications import api, worker
from notifications.kinds import Kind

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.fixture
def at_once(declare):
    return declare(Kind("capped", label="Reviews", channels={"in_app": True, "email": True}))


def listed(message) -> list[str]:
    return [line for line in message.body.splitlines() if line.startswith("- ")]


def test_past_the_hourly_cap_emails_fold_into_one_digest(clock, alice, at_once, settings):
    settings.NOTIFICATIONS_EMAIL_HOURLY_CAP = 3
    for i in range(10):
        api.notify(alice, f"asked {i}", kind="capped")
    worker.drain()
    assert [m.subject for m in mail.outbox] == ["asked 0", "asked 1", "asked 2"]
    clock.advance(timedelta(minutes=59))
    worker.drain()
    assert len(mail.outbox) == 3
    clock.advance(timedelta(minutes=1))
    worker.drain()
    assert len(mail.outbox) == 4
    assert mail.outbox[3].subject == "7 new notifications" and len(listed(mail.outbox[3])) == 7


def test_the_cap_counts_per_user(clock, alice, at_once, settings):
    settings.NOTIFICATIONS_EMAIL_HOURLY_CAP = 1
    bob = User.objects.create_user("bob", email="bob@example.com")
    api.notify([alice, bob], "asked", kind="capped")
    api.notify(alice, "asked again", kind="capped")
    worker.drain()
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.com", "bob@example.com"]


def test_critical_kinds_bypass_the_cap(clock, alice, at_once, settings):
    settings.NOTIFICATIONS_EMAIL_HOURLY_CAP = 1
    api.notify(alice, "asked", kind="capped")
    api.notify(alice, "asked again", kind="capped")  # past the cap
    for _ in range(3):
        api.notify(alice, "signed in from a new device", kind="security")
    worker.drain()
    assert [m.subject for m in mail.outbox].count("asked") == 1
    assert len(mail.outbox) == 4


def test_a_kind_may_cap_its_own_emails(clock, alice, declare):
    declare(Kind("chatty", channels={"in_app": True, "email": True}, hourly_cap={"email": 2}))
    for i in range(4):
        api.notify(alice, f"chat {i}", kind="chatty")
    api.notify(alice, "signed in from a new device", kind="security")
    worker.drain()
    assert len(mail.outbox) == 3  # two chats, and the security email
    clock.advance(timedelta(hours=1))
    worker.drain()
    assert mail.outbox[3].subject == "2 new notifications"


def test_a_capped_email_joins_a_digest_already_waiting(clock, alice, at_once, settings):
    from notifications.preferences import set_preferences

    declare_digest = Kind("digested2", channels={"in_app": True, "email": True})
    from notifications.kinds import register

    register(declare_digest)
    try:
        set_preferences(alice, [{"kind": "digested2", "channel": "email", "every": "hourly"}])
        settings.NOTIFICATIONS_EMAIL_HOURLY_CAP = 1
        api.notify(alice, "digested", kind="digested2")
        api.notify(alice, "first", kind="capped")
        api.notify(alice, "second", kind="capped")
        worker.drain()
        assert [m.subject for m in mail.outbox] == ["first"]
        clock.advance(timedelta(hours=1))
        worker.drain()
        assert len(mail.outbox) == 2 and len(listed(mail.outbox[1])) == 2
    finally:
        register.unregister("digested2")


def test_a_cap_that_is_not_a_positive_number_is_a_system_check_error(settings):
    from django.core.checks import run_checks

    settings.NOTIFICATIONS_EMAIL_HOURLY_CAP = 0
    errors = [e for e in run_checks() if e.id == "notifications.E001"]
    assert [e.msg for e in errors] == ["NOTIFICATIONS_EMAIL_HOURLY_CAP must be a positive number, not 0."]


def test_a_kinds_own_cap_does_not_lift_the_users_cap(clock, alice, declare, settings):
    declare(Kind("chatty", channels={"in_app": True, "email": True}, hourly_cap={"email": 5}))
    settings.NOTIFICATIONS_EMAIL_HOURLY_CAP = 2
    for i in range(4):
        api.notify(alice, f"chat {i}", kind="chatty")
    worker.drain()
    assert len(mail.outbox) == 2
