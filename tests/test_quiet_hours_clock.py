"""Quiet hours follow the user's clock, across daylight-saving changes, in the current time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import time as clock

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications.schedule import quiet_until, set_quiet_hours

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


def test_quiet_hours_ending_in_a_skipped_hour_end_when_the_clock_jumps(alice):
    # Paris, 2026-03-29: at 02:00 (01:00 UTC) clocks jump to 03:00; 02:30 never comes.
    set_quiet_hours(alice, clock(22, 0), clock(2, 30), "Europe/Paris")
    assert quiet_until(alice, datetime(2026, 3, 28, 23, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_quiet_hours_are_over_once_the_clock_jumped_past_their_end(alice):
    set_quiet_hours(alice, clock(22, 0), clock(2, 30), "Europe/Paris")
    assert quiet_until(alice, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) is None  # 03:00 in Paris


def test_quiet_hours_ending_in_a_repeated_hour_end_at_its_first_pass(alice):
    # Paris, 2026-10-25: at 03:00 (01:00 UTC) clocks go back to 02:00; 02:30 comes twice.
    set_quiet_hours(alice, clock(1, 0), clock(2, 30), "Europe/Paris")
    assert quiet_until(alice, datetime(2026, 10, 25, 0, 15, tzinfo=UTC)) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_quiet_hours_entered_again_in_the_repeated_hour_end_later_not_in_the_past(alice):
    set_quiet_hours(alice, clock(1, 0), clock(2, 30), "Europe/Paris")
    now = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 in Paris, the second time
    assert quiet_until(alice, now) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


def test_set_quiet_hours_defaults_to_the_current_time_zone(alice):
    with timezone.override("Asia/Tokyo"):
        set_quiet_hours(alice, clock(22, 0), clock(7, 0))
    # 23:00 in Tokyo: quiet until 07:00 there.
    assert quiet_until(alice, datetime(2026, 1, 10, 14, 0, tzinfo=UTC)) == datetime(2026, 1, 10, 22, 0, tzinfo=UTC)
