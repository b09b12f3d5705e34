"""
Digests and caps: several notifications of a user as one email or push.

A delivery (schedule.py) that is due and would go out alone goes into a
digest instead when

- the user chose a digest for the kind and channel (``DigestChoice``:
  hourly, daily at a local time, weekly), or the kind declares one
  (``Channel(digest=timedelta(minutes=30))``: for that long from the first);
- or the user's messages on the channel reached the hourly cap
  (NOTIFICATIONS_EMAIL_HOURLY_CAP / _PUSH_, or the kind's ``hourly_cap``): it
  joins the user's next digest, or one due when the cap frees up.

Critical kinds are never folded nor capped. Folding is a change of the
delivery row itself (``fold``): it goes back to ``pending`` with the digest's
key and due time, so every notification has one delivery per channel, sent
alone or in one digest, never both. When the digest is due, ``claim`` moves
all its pending rows to ``sending`` in one conditional ``UPDATE`` (the
attempt recorded and committed before anything is sent, as for single
deliveries); ``send`` then keeps what is still unread, not deleted and not
muted, and sends one message, or nothing when nothing is left. Folding into
and claiming a user's digests are serialised per user and channel.

Scheduled digests are due at the next slot in the user's time zone (the top
of the hour; ``at`` local time each day; ``at`` on ``weekday``), computed
with zoneinfo on the wall clock, so a daily 08:00 stays 08:00 across DST.
"""

from __future__ import annotations

import logging
import uuid
import zoneinfo
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import router, transaction
from django.db.models import F
from django.utils import timezone

from . import grouping, schedule
from .conf import conf
from .kinds import Kind, register
from .models import Delivery, DigestChoice, Notification, QuietHours

logger = logging.getLogger(__name__)

State = Delivery.State
Every = DigestChoice.Every
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Plan:
    """A digest a user's deliveries of a kind go into: scheduled (``every``) or a ``window``."""

    every: str = ""
    at: time = time(8, 0)
    weekday: int = 0
    zone: str = "UTC"
    window: timedelta | None = None


def plan(user_id: int, kind: Kind, channel: str) -> Plan | None:
    """
    The digest ``user_id``'s ``channel`` of ``kind`` goes into, or None when
    each goes at once: the user's choice, else the kind's declaration.
    Critical kinds: always None.
    """
    if kind.critical:
        return None
    choice = DigestChoice.objects.filter(user_id=user_id, kind=kind.key, channel=channel).first()
    if choice is not None:
        if choice.every == Every.NOW:
            return None
        return Plan(choice.every, choice.at or time(8, 0), choice.weekday or 0, choice.time_zone)
    declared = kind.channel(channel)
    if declared is not None and declared.digest is not None:
        return Plan(window=declared.digest)
    return None


def next_slot(every: str, after: datetime, at: time, weekday: int, zone_name: str) -> datetime:
    """
    The first time strictly after ``after`` a digest scheduled ``every``
    ("hourly", "daily", "weekly") is due, in UTC: the top of a local hour, or
    ``at`` local time (on ``weekday``, 0 Monday, for "weekly") in ``zone_name``.
    A local time that a DST change skips comes an hour later that day.
    """
    zone = zoneinfo.ZoneInfo(zone_name)
    local = after.astimezone(zone)
    if every == Every.HOURLY:
        top = local.replace(minute=0, second=0, microsecond=0)
        return (top.astimezone(UTC) + HOUR).astimezone(UTC)
    if every not in (Every.DAILY, Every.WEEKLY):
        raise ValueError(f"Unknown digest schedule {every!r}; allowed: hourly, daily, weekly.")
    day = local.date()
    for _ in range(8):
        if every == Every.DAILY or day.weekday() == weekday:
            candidate = _wall(day, at, zone)
            if candidate > after:
                return candidate
        day += timedelta(days=1)
    raise AssertionError("unreachable: a week holds every weekday")  # pragma: no cover


def _wall(day: Any, at: time, zone: zoneinfo.ZoneInfo) -> datetime:
    """
    ``at`` on ``day`` in ``zone`` as UTC. PEP 495's ``fold=0``: a wall time a
    DST change skips (02:30 in spring) is read with the offset before the
    gap, so it comes an hour later on the clock (03:30); a repeated one (02:30
    in autumn) is its first occurrence. Either way once that day.
    """
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def user_zone(user_id: int) -> str:
    """The time zone digests default to for a user: their quiet hours', else TIME_ZONE."""
    found = QuietHours.objects.filter(user_id=user_id).values_list("time_zone", flat=True).first()
    return found or settings.TIME_ZONE or "UTC"


# -- folding a delivery into a digest ------------------------------------------------


def fold_if_planned(delivery: Delivery, n: Notification, kind: Kind, now: datetime) -> bool:
    """
    Put the claimed ``delivery`` into its digest when the user's choice or
    the kind says so, or when it is past the hourly cap; returns whether it
    did (nothing is to be sent now). Critical kinds are never folded.
    """
    if kind.critical:
        return False
    found = plan(delivery.recipient_id, kind, delivery.channel)
    if found is not None:
        _fold(delivery, n, found, now)
        return True
    if over_cap(delivery, kind, now):
        _fold(delivery, n, None, now)
        return True
    return False


def _fold(delivery: Delivery, n: Notification, found: Plan | None, now: datetime) -> None:
    """Move ``delivery`` (claimed) into the digest of ``found`` (None: the next digest, capped)."""
    db = router.db_for_write(Delivery)
    rows = Delivery.objects.using(db)
    with transaction.atomic(using=db):
        _serialise(db, delivery)
        rows.filter(pk=delivery.pk).update(note="in a digest")  # a write first: SQLite's lock
        mine = rows.filter(recipient_id=delivery.recipient_id, channel=delivery.channel)
        waiting = mine.filter(state=State.PENDING).exclude(digest="")
        if found is None:
            key, due = _next_digest(waiting, mine, delivery, now)
        elif found.window is not None:
            prefix = f"w:{n.kind}:"
            open_ = waiting.filter(digest__startswith=prefix).order_by("due").values_list("digest", "due").first()
            if open_ is not None:
                key, due = open_
            else:
                due = max(n.created + found.window, now)
                key = f"{prefix}{due:%Y%m%dT%H%M%S}"
        else:
            due = next_slot(found.every, now, found.at, found.weekday, found.zone)
            key = f"at:{due:%Y%m%dT%H%M}"
        # The group's turn is given back: its later members join the digest
        # too, where the group is listed once (``_items``).
        rows.filter(pk=delivery.pk, state=State.SENDING).update(
            state=State.PENDING, digest=key, due=due, claimed_at=None, note="in a digest", turn_at=None
        )


def _next_digest(
    waiting: Any, mine: Any, delivery: Delivery, now: datetime
) -> tuple[str, datetime]:
    """The user's next digest on the channel, or a new one due when the cap frees up."""
    found = waiting.order_by("due").values_list("digest", "due").first()
    if found is not None:
        return found
    first = (
        mine.filter(capped_at__gt=now - HOUR).order_by("capped_at").values_list("capped_at", flat=True).first()
    )
    due = (first or now) + HOUR
    return f"cap:{due:%Y%m%dT%H%M%S}", due


def over_cap(delivery: Delivery, kind: Kind, now: datetime) -> bool:
    """
    Count the claimed ``delivery`` against its recipient's hourly caps on its
    channel (the setting's, over all kinds, and the kind's ``hourly_cap``,
    over its own): False, and counted, when both have room; True when one is
    reached. One decision at a time per user and channel, however many
    workers run.
    """
    channel = delivery.channel
    caps: list[tuple[int, str | None]] = []  # (cap, the kind it counts, or None: all)
    overall = conf.hourly_cap(channel)
    if overall is not None:
        caps.append((overall, None))
    if channel in kind.hourly_cap:
        caps.append((kind.hourly_cap[channel], kind.key))
    if not caps:
        return False
    db = router.db_for_write(Delivery)
    rows = Delivery.objects.using(db)
    with transaction.atomic(using=db):
        _serialise(db, delivery)
        rows.filter(pk=delivery.pk).update(capped_at=now)  # a write first: SQLite's lock
        counted = rows.filter(
            recipient_id=delivery.recipient_id, channel=channel, capped_at__gt=now - HOUR
        ).exclude(pk=delivery.pk)
        if all(
            (counted if key is None else counted.filter(notification__kind=key)).count() < cap
            for cap, key in caps
        ):
            return False
        rows.filter(pk=delivery.pk).update(capped_at=None)
    return True


def _serialise(db: str, delivery: Delivery) -> None:
    """Within a transaction: one folder or claimer of a user's channel's digests at a time."""
    grouping.lock(db, f"digest:{delivery.recipient_id}:{delivery.channel}")


# -- claiming and sending due digests --------------------------------------------------


def claim(now: datetime | None = None, limit: int | None = None) -> list[list[Delivery]]:
    """
    Claim up to ``limit`` due digests, each as the list of its deliveries,
    all marked ``sending`` (the attempt recorded) in one committed statement
    before this returns: no other worker gets any of them.
    """
    now = now or timezone.now()
    db = router.db_for_write(Delivery)
    rows = Delivery.objects.using(db)
    due = (
        rows.filter(state=State.PENDING, due__lte=now)
        .exclude(digest="")
        .order_by("recipient_id", "channel", "digest")
        .values_list("recipient_id", "channel", "digest")
        .distinct()
    )
    claimed = []
    for recipient_id, channel, key in list(due[: limit or conf.DELIVERY_BATCH]):
        token = f"digest {uuid.uuid4().hex}"
        with transaction.atomic(using=db):
            grouping.lock(db, f"digest:{recipient_id}:{channel}")
            rows.filter(
                recipient_id=recipient_id, channel=channel, digest=key, state=State.PENDING
            ).update(state=State.SENDING, claimed_at=now, attempts=F("attempts") + 1, note=token)
        batch = list(
            rows.filter(note=token, state=State.SENDING)
            .select_related("notification", "recipient")
            .order_by("notification_id")
        )
        if batch:
            claimed.append(batch)
    return claimed


def send(batch: Sequence[Delivery], now: datetime | None = None) -> Counter[str]:
    """
    Send one claimed digest: its notifications still unread, not deleted and
    not muted, a group as its newest member, as one message; nothing when
    none is left. Quiet hours hold the whole digest. Returns how many
    deliveries ended how.
    """
    from . import schedule, worker

    now = now or timezone.now()
    done: Counter[str] = Counter()
    first = batch[0]
    until = schedule.quiet_until(first.recipient, now)
    if until is not None:
        for d in batch:
            schedule.release(d, until, "quiet hours")
        done["held"] += len(batch)
        return done
    keep: list[tuple[Delivery, Notification, Kind]] = []
    for d in batch:
        why = _why_not(d)
        if why:
            schedule.finish(d, State.SKIPPED, why)
            done["skipped"] += 1
        else:
            keep.append((d, d.notification, register[d.notification.kind]))
    if not keep:
        return done
    items = _items([n for _, n, _ in keep])
    try:
        outcome = worker.DIGEST_SENDERS[first.channel](first, items, [k for _, _, k in keep])
    except Exception as exc:
        logger.exception("Sending a %s digest to user %s failed", first.channel, first.recipient_id)
        for d, _, _ in keep:
            schedule.finish(d, State.FAILED, f"{type(exc).__name__}: {exc}")
        done["failed"] += len(keep)
        return done
    for d, _, _ in keep:
        if outcome.retry_at is not None:
            schedule.release(d, outcome.retry_at, outcome.note)
        else:
            schedule.finish(d, outcome.state, outcome.note or f"in a digest of {len(items)}")
    done["retry" if outcome.retry_at is not None else str(outcome.state)] += len(keep)
    return done


def _why_not(d: Delivery) -> str:
    """Why this member of a digest is left out, or "" to send it."""
    return schedule.why_not(d)


def _items(rows: list[Notification]) -> list[Notification]:
    """What a digest lists: each lone row, and each group once, as its newest live member."""
    items: list[Notification] = []
    seen: set[str] = set()
    for n in sorted(rows, key=lambda n: n.pk, reverse=True):
        if not n.group:
            items.append(n)
            continue
        if n.group in seen:
            continue
        seen.add(n.group)
        assert n.recipient_id is not None  # noqa: S101  # personal rows only are scheduled
        newest = grouping.members(n.recipient_id, n.group).order_by("-id").first()
        items.append(newest or n)
    grouping.attach_summaries(items)
    return items


def make_due(user_ids: Sequence[int] | None = None, now: datetime | None = None) -> int:
    """
    Make the pending digests (of these users, or everyone's) due ``now``,
    for trying digests out: the next worker pass sends them. Returns how many
    deliveries they hold.
    """
    rows = Delivery.objects.filter(state=State.PENDING).exclude(digest="")
    if user_ids is not None:
        rows = rows.filter(recipient_id__in=list(user_ids))
    return rows.update(due=now or timezone.now())
