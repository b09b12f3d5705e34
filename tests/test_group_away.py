"""Email for a grouped kind: one per group and window, however long the group stays open."""

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
def friend():
    return User.objects.create_user("friend")


def grouped(declare, email=timedelta(0)):
    return declare(
        Kind(
            "awaytest",
            channels={"in_app": True, "email": email},
            group_by="target",
            window=timedelta(minutes=10),
        )
    )


def ask(alice, friend):
    return api.notify(alice, "asked", actor=friend, target=alice, kind="awaytest", description="PR")[0]


def test_a_member_arriving_after_the_groups_first_email_was_skipped_gets_its_email(
    alice, friend, declare
):
    grouped(declare)
    first = ask(alice, friend)
    api.mark_read(alice, [first.pk])  # read: its email is not sent
    worker.drain()
    second = ask(alice, friend)
    assert second.group == first.group
    assert worker.drain() == {"sent": 1}
    (sent,) = mail.outbox
    assert sent.subject == "friend needs you (2 times)"


def test_an_open_group_gets_one_email_per_window_while_members_keep_coming(
    alice, friend, declare, clock
):
    grouped(declare)
    first = ask(alice, friend)
    assert worker.drain() == {"sent": 1}
    clock.advance(timedelta(minutes=6))
    ask(alice, friend)
    assert worker.drain() == {"skipped": 1}  # the group's email went out 6 minutes ago
    clock.advance(timedelta(minutes=6))
    third = ask(alice, friend)
    assert third.group == first.group  # still open: each came within the window
    assert worker.drain() == {"sent": 1}  # 12 minutes after the group's email
    assert [m.subject for m in mail.outbox] == ["friend needs you", "friend needs you (3 times)"]


def test_a_member_within_the_window_of_the_groups_email_is_not_emailed_again(
    alice, friend, declare, clock
):
    grouped(declare)
    ask(alice, friend)
    worker.drain()
    clock.advance(timedelta(minutes=9))
    ask(alice, friend)
    worker.drain()
    assert len(mail.outbox) == 1


def test_members_that_come_before_a_delayed_email_are_named_in_it_and_not_emailed_again(
    alice, friend, declare, clock
):
    grouped(declare, email=timedelta(minutes=5))
    ask(alice, friend)
    clock.advance(timedelta(minutes=1))
    ask(alice, friend)
    clock.advance(timedelta(minutes=4))
    assert worker.drain() == {"sent": 1}
    clock.advance(timedelta(minutes=1))
    worker.drain()  # the second member's
    assert [m.subject for m in mail.outbox] == ["friend needs you (2 times)"]


def test_a_group_emailed_once_is_emailed_again_for_a_member_after_the_window(
    alice, friend, declare, clock
):
    grouped(declare)
    ask(alice, friend)
    worker.drain()
    clock.advance(timedelta(minutes=11))
    ask(alice, friend)  # a new group: the window closed
    worker.drain()
    assert len(mail.outbox) == 2
