"""Push digests and the push cap: one summary push that opens the inbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model

from notifications import api, worker
from notifications.kinds import Channel, Kind

from .test_away_push import subscribe

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


def test_a_push_digest_is_one_summary_push_that_opens_the_inbox(clock, alice, service, vapid, declare):
    declare(Kind("buzz", channels={"in_app": True, "push": Channel(digest=timedelta(minutes=30))}))
    subscribe(alice, service.device("a"))
    for i in range(5):
        api.notify(alice, f"buzzed {i}", kind="buzz")
    worker.drain()
    assert service.received == []
    clock.advance(timedelta(minutes=30))
    worker.drain()
    (got,) = service.received
    assert got.payload["title"] == "5 new notifications"
    assert got.payload["url"] == "/notifications/" and got.payload["read_url"] == ""


def test_pushes_past_the_hourly_cap_fold_into_one_summary_push(clock, alice, service, vapid, declare, settings):
    declare(Kind("buzz", channels={"in_app": True, "push": True}))
    settings.NOTIFICATIONS_PUSH_HOURLY_CAP = 2
    subscribe(alice, service.device("a"))
    for i in range(5):
        api.notify(alice, f"buzzed {i}", kind="buzz")
    worker.drain()
    assert len(service.received) == 2
    clock.advance(timedelta(hours=1))
    worker.drain()
    assert [r.payload["title"] for r in service.received[2:]] == ["3 new notifications"]
