"""
Who may see a notification: the one rule, as a queryset filter and as a
predicate over a row already read, kept side by side so they cannot drift
(tests/test_visibility.py checks one against the other).

A user sees a row when it is live (not soft-deleted, not expired) and either
addressed to them, or a broadcast whose audience includes them (everyone,
staff if they are staff, a group they belong to) that they have not hidden.
A broadcast is unread for them until they have a receipt for it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import Q

if TYPE_CHECKING:
    from .models import Audiences

USER, ALL, STAFF, GROUP = "user", "all", "staff", "group"  # models.Audience's values


def may_see(who: Audiences, audience: str, recipient_id: int | None, group_id: int | None) -> bool:
    """Is ``who`` in the audience of a row (before expiry, deletion and hiding)?"""
    if audience == USER:
        return recipient_id == who.user_id
    if audience == ALL:
        return True
    if audience == STAFF:
        return who.is_staff
    if audience == GROUP:
        return group_id in who.group_ids
    return False


def audience_q(who: Audiences) -> Q:
    """``may_see`` as a filter on the notification table."""
    broadcast = Q(audience=ALL) | Q(audience=GROUP, audience_group__in=who.group_ids)
    if who.is_staff:
        broadcast |= Q(audience=STAFF)
    return Q(recipient_id=who.user_id) | (Q(recipient__isnull=True) & broadcast)


def is_live(deleted: bool, expires_at: datetime | None, now: datetime) -> bool:
    """Not soft-deleted, not expired."""
    return not deleted and (expires_at is None or expires_at > now)


def live_q(now: datetime) -> Q:
    """``is_live`` as a filter."""
    return Q(deleted=False) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def shown(
    who: Audiences,
    *,
    audience: str,
    recipient_id: int | None,
    group_id: int | None,
    deleted: bool,
    expires_at: datetime | None,
    unread: bool,
    receipt: bool | None,
    now: datetime,
) -> bool | None:
    """
    The whole rule for one row: None when ``who`` does not see it, else whether
    it is unread for them. ``receipt`` is their broadcast receipt's ``hidden``
    flag (None: no receipt); ``unread`` the row's own flag (personal rows).
    """
    if not is_live(deleted, expires_at, now) or not may_see(who, audience, recipient_id, group_id):
        return None
    if recipient_id is not None:
        return unread
    if receipt:  # hidden
        return None
    return receipt is None
