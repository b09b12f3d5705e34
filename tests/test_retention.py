"""
Retention: ``manage.py prune_notifications`` deletes old notifications in
batches, and open streams and saved cursors stay correct across a prune.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from notifications import api
from notifications.models import BroadcastReceipt, Notification

from .test_stream import POLL, sentinel

User = get_user_model()


def prune(*args: str) -> str:
    out = StringIO()
    call_command("prune_notifications", *args, stdout=out)
    return out.getvalue()


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


def old_broadcast(verb: str, days: float, **kwargs):
    """A broadcast created ``days`` ago (``broadcast()`` always stamps now)."""
    row = api.broadcast(verb, **kwargs)
    Notification.objects.filter(pk=row.pk).update(created=days_ago(days))
    return row


def remaining() -> set[int]:
    return set(Notification.objects.values_list("id", flat=True))


def test_prune_deletes_only_notifications_older_than_the_age(alice):
    (old,) = api.notify(alice, "old", timestamp=days_ago(31))
    (young,) = api.notify(alice, "young", timestamp=days_ago(29))
    (new,) = api.notify(alice, "new")
    aged = old_broadcast("old news", 31)
    fresh = api.broadcast("news")
    prune("--days", "30")
    assert remaining() == {young.pk, new.pk, fresh.pk}
    assert aged.pk not in remaining()


def test_default_age_is_the_retention_setting(alice, settings):
    (kept,) = api.notify(alice, "kept", timestamp=days_ago(89))
    api.notify(alice, "gone", timestamp=days_ago(91))
    (new,) = api.notify(alice, "new")
    prune()
    assert remaining() == {kept.pk, new.pk}
    settings.NOTIFICATIONS_RETENTION_DAYS = 10
    prune()
    assert remaining() == {new.pk}


def test_read_only_keeps_unread_rows_and_broadcasts_someone_may_still_see(alice):
    read, unread, removed = (api.notify(alice, v, timestamp=days_ago(100))[0] for v in "abc")
    api.mark_read(alice, [read.pk])
    api.delete(alice, [removed.pk])
    old_broadcast("expired", 100, expires_at=days_ago(50))
    hidden_by_staff = old_broadcast("withdrawn", 100)
    Notification.objects.filter(pk=hidden_by_staff.pk).update(deleted=True)
    still_shown = old_broadcast("no expiry", 100)
    will_expire = old_broadcast("expires later", 100, expires_at=timezone.now() + timedelta(days=1))

    output = prune("--days", "30", "--read-only")
    assert remaining() == {unread.pk, still_shown.pk, will_expire.pk}
    assert "Deleted 4 read notification(s) (2 broadcast(s))" in output
    assert "unread notification" not in output


def test_full_prune_deletes_read_rows_before_unread_ones(alice):
    api.notify(alice, "unread", timestamp=days_ago(100))
    read = api.notify(alice, "read", timestamp=days_ago(100))[0]
    api.mark_read(alice, [read.pk])
    old_broadcast("no expiry", 100)
    (new,) = api.notify(alice, "new")
    output = prune("--days", "30")
    assert remaining() == {new.pk}
    lines = output.splitlines()
    assert lines[1] == "Deleted 1 read notification(s) (0 broadcast(s)) and 0 broadcast receipt(s)."
    assert lines[2] == "Deleted 2 unread notification(s) (1 broadcast(s)) and 0 broadcast receipt(s)."


def test_broadcast_receipts_go_with_their_broadcast_in_batches(alice):
    readers = [User.objects.create_user(f"reader{i}") for i in range(5)]
    aged = old_broadcast("old news", 100)
    fresh = api.broadcast("news")
    for user in readers:
        api.mark_read(user, [aged.pk, fresh.pk])
    output = prune("--days", "30", "--batch-size", "2")
    assert not BroadcastReceipt.objects.filter(notification_id=aged.pk).exists()
    assert BroadcastReceipt.objects.filter(notification_id=fresh.pk).count() == 5
    # Five receipts two at a time, then the broadcast itself.
    assert "Done in 4 batch(es): 1 notification(s) and 5 broadcast receipt(s) deleted." in output


def test_rows_are_deleted_in_batches_of_the_batch_size(alice):
    ids = [api.notify(alice, f"n{i}", timestamp=days_ago(100))[0].pk for i in range(7)]
    (new,) = api.notify(alice, "new")
    output = prune("--days", "30", "--batch-size", "3", "--verbosity", "2")
    assert remaining() == {new.pk}
    assert f"batch 1: up to id {ids[2]}" in output
    assert f"batch 3: up to id {ids[6]}" in output
    assert "Done in 3 batch(es): 7 notification(s)" in output


def test_dry_run_reports_counts_and_deletes_nothing(alice, bob):
    (read,) = api.notify(alice, "read", timestamp=days_ago(100))
    api.mark_read(alice, [read.pk])
    api.notify([alice, bob], "unread", timestamp=days_ago(100))
    aged = old_broadcast("old news", 100)
    api.mark_read(bob, [aged.pk])
    api.notify(alice, "recent")
    before = remaining()
    output = prune("--days", "30", "--dry-run")
    assert remaining() == before
    assert BroadcastReceipt.objects.count() == 1
    assert "Would delete 1 read notification(s) (0 broadcast(s)) and 0 broadcast receipt(s)." in output
    assert "Would delete 3 unread notification(s) (1 broadcast(s)) and 1 broadcast receipt(s)." in output


def test_second_prune_finds_nothing(alice):
    api.notify(alice, "old", timestamp=days_ago(100))
    api.notify(alice, "new")
    assert "Done in 1 batch(es): 1 notification(s)" in prune("--days", "30")
    assert "Done in 0 batch(es): 0 notification(s)" in prune("--days", "30")


def test_verbosity_zero_prints_nothing(alice):
    api.notify(alice, "old", timestamp=days_ago(100))
    (new,) = api.notify(alice, "new")
    assert prune("--days", "30", "--verbosity", "0") == ""
    assert remaining() == {new.pk}


@pytest.mark.parametrize("days", ["0", "-1", "nan", "1e12"])
def test_unusable_age_is_refused_and_deletes_nothing(alice, days):
    api.notify(alice, "old", timestamp=days_ago(100))
    api.notify(alice, "new")
    with pytest.raises(CommandError):
        prune("--days", days)
    assert Notification.objects.count() == 2


def test_help_shows_the_schedule_examples_verbatim():
    from notifications.management.commands.prune_notifications import Command

    text = Command().create_parser("manage.py", "prune_notifications").format_help()
    assert "  17 3 * * *  cd /srv/app && .venv/bin/python manage.py prune_notifications\n" in text
    assert "  [Timer]\n  OnCalendar=daily\n" in text


# -- streams and cursors across a prune, against a real server -------------------


@pytest.mark.server
def test_streams_and_cursors_stay_exact_across_a_prune(browser, make_user):
    alice = make_user()
    user = browser(alice)
    live = user.stream().connected()
    opening = live.of("open")[0].id

    # Old and recent rows interleaved, so the prune leaves holes in the middle.
    before = []
    for i in range(6):
        stamp = days_ago(100) if i % 2 == 0 else None
        before.append(api.notify(alice, f"before {i}", timestamp=stamp)[0].pk)
    before.append(sentinel(live, alice, "before prune"))
    cursor = live.last_id
    old, kept = before[0::2][:3], [*before[1::2], before[-1]]

    call_command("prune_notifications", "--days", "30", stdout=StringIO())
    assert not Notification.objects.filter(pk__in=old).exists()

    after = [api.notify(alice, f"after {i}")[0].pk for i in range(5)]
    after.append(sentinel(live, alice, "after prune"))
    assert live.notification_ids() == [*before, *after]
    assert live.of("reset") == []

    resumed = user.stream(last_event_id=cursor).connected()
    resumed_after = sentinel(resumed, alice, "after resume")
    assert resumed.notification_ids() == [*after, resumed_after]
    assert resumed.of("reset") == []

    # A cursor from before everything: replay has what is left, the pruned rows are gone.
    from_start = user.stream(last_event_id=opening).connected()
    from_start.wait_for(lambda s: resumed_after in s.notification_ids())
    assert from_start.notification_ids() == sorted([*kept, *after, resumed_after])
    assert from_start.of("reset") == []


@pytest.mark.server
def test_cursor_above_every_remaining_row_resumes_without_reset(browser, make_user):
    alice = make_user()
    user = browser(alice)
    first = user.stream().connected()
    old = [api.notify(alice, f"old {i}", timestamp=days_ago(100))[0].pk for i in range(3)]
    first.wait_for(lambda s: s.notification_ids() == old, timeout=POLL * 3)
    cursor = first.last_id
    first.close()

    call_command("prune_notifications", "--days", "30", stdout=StringIO())
    assert remaining() == set()

    resumed = user.stream(last_event_id=cursor).connected()
    after = sentinel(resumed, alice, "after prune")
    assert resumed.notification_ids() == [after]
    assert resumed.of("reset") == []
