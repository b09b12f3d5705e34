"""
The visibility rule as a queryset (replay, the API, templates) and as a
predicate (the hub's routing, batched replay) gives the same answer for every
user and every row: random feeds of personal rows, broadcasts to everyone,
staff and groups, expired, deleted, read, hidden.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.utils import timezone

from notifications import visibility
from notifications.models import BroadcastReceipt, Notification

from .test_batching import build_world


@pytest.mark.parametrize("seed", range(3))
def test_the_predicate_and_the_queryset_agree(db: Any, seed: int) -> None:
    world = build_world(random.Random(seed))
    now = timezone.now()
    rows = list(Notification.objects.all())
    receipts = {(r.notification_id, r.user_id): r.hidden for r in BroadcastReceipt.objects.all()}
    seen_some = hidden_some = False
    for who in world.audiences:
        expected = {
            n.id: n.is_unread for n in Notification.objects.for_audiences(who).filter(created__lte=now)
        }
        audience = set(Notification.objects.filter(visibility.audience_q(who)).values_list("id", flat=True))
        got = {}
        for n in rows:
            unread = visibility.shown(
                who,
                audience=n.audience,
                recipient_id=n.recipient_id,
                group_id=n.audience_group_id,
                deleted=n.deleted,
                expires_at=n.expires_at,
                unread=n.unread,
                receipt=receipts.get((n.id, who.user_id)),
                now=now,
            )
            if unread is not None:
                got[n.id] = unread
            # The hub routes live rows by audience alone: the same rule's first half.
            assert visibility.may_see(who, n.audience, n.recipient_id, n.audience_group_id) == (n.id in audience)
        assert got == expected, f"user {who.user_id}"
        seen_some |= bool(got)
        hidden_some |= any(receipts.get((nid, who.user_id)) for nid in (n.id for n in rows))
    assert seen_some and hidden_some
