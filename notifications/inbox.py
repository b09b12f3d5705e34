"""
Inbox states, per user, of personal notifications and broadcasts alike: seen,
archived, snoozed until a time. Read state stays where it was (the row's
``unread`` flag, broadcast receipts); these live in ``InboxState`` rows, one
per (user, notification) that has any.

- Unseen: unread and not seen. The badge counts the unseen items of the
  inbox; opening the list marks what it shows seen. Marking an item unread
  makes it unseen again, reading it takes it off the badge as before.
- The inbox: what a user may see (``visibility``), neither archived nor
  snoozed until later. A snooze hides an item until its time, whoever looks.
- A snooze that came due is *woken* by ``wake_due`` (the hub calls it; see
  hub.py): the item becomes unread and unseen again, and a ``woken`` state
  event carrying it reaches every tab once.

Every change is recorded as a read event (``api._record``), so streams hand it
to every tab exactly once, replays included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import InboxState, NotificationQuerySet

# The state events' names, the ``state`` of their payload.
SEEN, ARCHIVED, UNARCHIVED, SNOOZED, WOKEN = "seen", "archived", "unarchived", "snoozed", "woken"


def _states(user_id: Any) -> QuerySet[InboxState]:
    return InboxState.objects.filter(notification=OuterRef("pk"), user_id=user_id)


def seen_q(user_id: Any) -> Q:
    """The rows ``user_id`` has seen."""
    return Q(Exists(_states(user_id).filter(seen_at__isnull=False)))


def archived_q(user_id: Any) -> Q:
    """The rows ``user_id`` archived."""
    return Q(Exists(_states(user_id).filter(archived_at__isnull=False)))


def snoozed_q(user_id: Any, now: datetime) -> Q:
    """The rows ``user_id`` snoozed until after ``now``."""
    return Q(Exists(_states(user_id).filter(snoozed_until__gt=now)))


def inbox_q(user_id: Any, now: datetime) -> Q:
    """The rows in the inbox of ``user_id``: neither archived nor snoozed past ``now``."""
    return ~archived_q(user_id) & ~snoozed_q(user_id, now)


def with_states(rows: NotificationQuerySet, user_id: Any) -> NotificationQuerySet:
    """``rows`` annotated with ``is_seen`` and ``is_archived`` for ``user_id`` (``render.as_dict`` shows them)."""
    return rows.annotate(is_seen=seen_q(user_id), is_archived=archived_q(user_id))


def in_inbox(rows: NotificationQuerySet, user_id: Any, now: datetime) -> NotificationQuerySet:
    """Of ``rows``, those in the inbox of ``user_id``: neither archived nor snoozed past ``now``."""
    return rows.filter(inbox_q(user_id, now))


def unseen(rows: NotificationQuerySet, user_id: Any) -> NotificationQuerySet:
    """Of ``rows`` (from ``for_audiences``), the unread ones ``user_id`` has not seen."""
    return rows.filter(Q(is_unread=True)).exclude(seen_q(user_id))


def ensure(user_id: Any, ids: list[int], db: str) -> QuerySet[InboxState]:
    """The state rows of ``user_id`` for ``ids``, created where missing (inside a transaction)."""
    states = InboxState.objects.using(db).filter(user_id=user_id, notification_id__in=ids)
    have = set(states.values_list("notification_id", flat=True))
    InboxState.objects.using(db).bulk_create(
        [InboxState(user_id=user_id, notification_id=nid) for nid in ids if nid not in have],
        ignore_conflicts=True,
    )
    return states
