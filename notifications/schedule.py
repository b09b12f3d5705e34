"""
The schedule of away deliveries (email, Web Push): rows in the database.

``notify()`` writes one ``Delivery`` per notification and away channel in its
own transaction, for the recipients whose
preference for that channel is on, due at once or when the kind's channel
says ("if still unread after N minutes"). A worker (worker.py) claims due
rows atomically and records the attempt before it sends, so a row is sent
at most once however many workers run and wherever one dies:

- PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks rows no other
  worker holds, and they are marked ``sending`` in the same transaction;
- other databases (SQLite: one writer): each row is claimed by a
  conditional ``UPDATE ... WHERE state = 'pending'``; the one update that
  changes the row wins it.

At send time (``check``) the notification is looked at again: read, deleted,
the channel muted since, or the kind gone: nothing is sent. Quiet hours move
the row to their end (never for critical kinds). A member of a group still
unread then is sent as its group (the newest member, carrying the count)
unless one of the group's went out within the kind's window (see
``grouping.take_turn``): one email per group and window, however long the
group stays open. Reading or deleting notifications cancels what is still
pending for them (``cancel``).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import EmptyResultSet
from django.db import connections, router, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from . import grouping, preferences
from .conf import conf
from .kinds import CHANNELS, IN_APP, Kind, register
from .models import Delivery, Notification, PushSubscription, QuietHours

AWAY_CHANNELS = tuple(c for c in CHANNELS if c != IN_APP)

State = Delivery.State


def schedule(rows: Sequence[Notification], kind: Kind | None = None) -> None:
    """
    Write the deliveries of these freshly written ``rows`` (of one ``notify()``
    call, so of one kind and ``created``: ``kind``, else the rows' own),
    inside the caller's transaction: one per row and away channel the kind
    declares and the recipient has on (push: only recipients with a push
    subscription). One ``INSERT ... SELECT`` for all channels, which
    resolves the preferences inside the database, whatever the number of rows.
    """
    if not rows:
        return
    if kind is None:
        kind = register.get(rows[0].kind) if rows[0].kind else None
        if kind is None:
            return
    channels = [(c, kind.channel(c)) for c in AWAY_CHANNELS]
    declared = [(c, d.after or timedelta(0)) for c, d in channels if d is not None]
    if not declared:
        return
    db = rows[0]._state.db or router.db_for_write(Delivery)
    connection = connections[db]
    qn = connection.ops.quote_name
    ids = [n.pk for n in rows]
    created = rows[0].created
    selects, params = [], []
    for channel, delay in declared:
        users = get_user_model()._default_manager.db_manager(db).filter(
            preferences.receiving_q(kind, channel)
        )
        if channel == "push":  # only browsers that can be reached
            users = users.filter(Exists(PushSubscription.objects.filter(user_id=OuterRef("pk"))))
        query = users.values("pk").query
        query.clear_ordering(force=True)
        try:
            users_sql, users_params = query.get_compiler(using=db).as_sql()
        except EmptyResultSet:
            continue
        selects.append(
            f"SELECT n.{qn('id')}, n.{qn('recipient_id')}, %s, n.{qn('group')}, %s, %s, 0, '', '', "  # noqa: S608  # identifiers from quote_name, values as parameters
            f"{_EMPTY_LIST.get(connection.vendor, chr(39) + '[]' + chr(39))} "
            f"FROM {qn(Notification._meta.db_table)} n "
            f"WHERE n.{qn('kind')} = %s AND n.{qn('created')} = %s "
            f"AND n.{qn('id')} >= %s AND n.{qn('id')} <= %s "
            f"AND n.{qn('recipient_id')} IN ({users_sql})"
        )
        params += [
            channel,
            connection.ops.adapt_datetimefield_value(created + delay),
            State.PENDING,
            kind.key,
            connection.ops.adapt_datetimefield_value(created),
            min(ids),
            max(ids),
            *users_params,
        ]
    if not selects:
        return
    columns = ", ".join(
        qn(name)
        for name in (
            "notification_id", "recipient_id", "channel", "group", "due", "state", "attempts", "note", "digest", "done"
        )
    )
    # The rows of other calls with the same kind and ``created`` that the id
    # range may take in would get the same deliveries: they exist already, and
    # conflicts are ignored.
    insert, conflict = ("INSERT OR IGNORE", "") if connection.vendor == "sqlite" else ("INSERT", " ON CONFLICT DO NOTHING")
    sql = f"{insert} INTO {qn(Delivery._meta.db_table)} ({columns}) {' UNION ALL '.join(selects)}{conflict}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# A JSON empty list as a column value, per database.
_EMPTY_LIST = {"postgresql": "'[]'::jsonb"}


def claim(limit: int | None = None, now: datetime | None = None) -> list[Delivery]:
    """
    Claim up to ``limit`` due pending deliveries for this worker: each is
    marked ``sending`` (its attempt recorded) and committed before this
    returns, so no other worker can claim it again. Oldest due first. Those
    folded into a digest are claimed with their digest (digests.claim).
    """
    limit = limit or conf.DELIVERY_BATCH
    now = now or timezone.now()
    db = router.db_for_write(Delivery)
    due = Delivery.objects.using(db).filter(state=State.PENDING, due__lte=now, digest="").order_by("due", "id")
    claimed = {"state": State.SENDING, "claimed_at": now, "attempts": F("attempts") + 1}
    with transaction.atomic(using=db):
        if connections[db].features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
            Delivery.objects.using(db).filter(id__in=ids).update(**claimed)
        else:
            ids = [
                pk
                for pk in due.values_list("id", flat=True)[:limit]
                if Delivery.objects.using(db).filter(id=pk, state=State.PENDING).update(**claimed)
            ]
    return list(
        Delivery.objects.using(db).filter(id__in=ids).select_related("notification").order_by("due", "id")
    )


# The note of a claim given up at the end of its lease (see expire_claims).
INTERRUPTED = "interrupted: the worker stopped"


def _own(delivery: Delivery) -> QuerySet[Delivery]:
    """
    The row of this claim, while it is the claimer's to record: still
    ``sending``, or given up at the end of its lease (no other worker ever
    takes a given-up claim, so its claimer still speaks for it).
    """
    return Delivery.objects.filter(pk=delivery.pk, claimed_at=delivery.claimed_at).filter(
        Q(state=State.SENDING) | Q(state=State.FAILED, note=INTERRUPTED)
    )


def renew(delivery: Delivery, now: datetime | None = None) -> bool:
    """
    Start the lease of a claimed delivery anew as its worker takes it up (a
    batch's last rows wait for the sends before them). A claim given up at the
    end of its lease meanwhile is taken back: nothing was sent for it, and no
    other worker takes a given-up claim. False if the claim is not this
    worker's any more; then nothing may be sent for it.
    """
    now = now or timezone.now()
    if not _own(delivery).update(state=State.SENDING, claimed_at=now, finished_at=None, note=""):
        return False
    delivery.claimed_at = now
    return True


def finish(delivery: Delivery, state: str, note: str = "") -> None:
    """
    Record how a claimed delivery ended: ``sent``, ``skipped`` or ``failed``.
    A send that outlived its lease is recorded as what happened, over the
    claim's having been given up.
    """
    _own(delivery).update(state=state, finished_at=timezone.now(), note=note[:255])


def release(delivery: Delivery, due: datetime, note: str = "") -> None:
    """
    Put a claimed delivery back for later, a push service's "retry after":
    only when nothing was handed over for it. The attempt stays counted.
    """
    _own(delivery).update(state=State.PENDING, due=due, claimed_at=None, finished_at=None, note=note[:255])


def hold(delivery: Delivery, until: datetime, note: str = "quiet hours") -> None:
    """
    Put a claimed delivery back until ``until`` without sending it (quiet
    hours): a hold is not an attempt, so it does not count in ``attempts``.
    """
    _own(delivery).update(
        state=State.PENDING,
        due=until,
        claimed_at=None,
        finished_at=None,
        note=note[:255],
        attempts=F("attempts") - 1,
    )


def unclaim(delivery: Delivery) -> None:
    """
    Give back a claimed delivery nothing was done for (its worker's pass ran
    out of time before it): pending again, due as it was, the claim not
    counted as an attempt. Also once the claim was given up at the end of its
    lease (as it waited): it was never attempted.
    """
    _own(delivery).update(
        state=State.PENDING,
        claimed_at=None,
        finished_at=None,
        attempts=F("attempts") - 1,
        note=Case(When(state=State.FAILED, then=Value("")), default=F("note")),
    )


def expire_claims(now: datetime | None = None) -> int:
    """
    Give up the claims not renewed for NOTIFICATIONS_DELIVERY_LEASE seconds:
    marked failed (``INTERRUPTED``), they are never claimed again (at most
    once). Their worker died between claim and send, or during the send; if
    it was only slow, it records what happened when it is done (``finish``).
    Returns how many.
    """
    now = now or timezone.now()
    return Delivery.objects.filter(
        state=State.SENDING, claimed_at__lt=now - timedelta(seconds=conf.DELIVERY_LEASE)
    ).update(state=State.FAILED, finished_at=now, note=INTERRUPTED)


@dataclass(frozen=True)
class Verdict:
    """What to do with a claimed delivery: send ``notification``, skip it, or wait."""

    notification: Notification | None = None
    skip: str = ""
    wait_until: datetime | None = None


def why_not(delivery: Delivery) -> str:
    """
    Why ``delivery`` must not go out any more, as things are now, or "" if it
    may: its kind no longer declares the channel, the notification was deleted
    or read, its recipient is no longer active (``is_active`` False: Django
    would not let them log in), or they muted the kind on that channel.
    Single deliveries and digests both ask this.
    """
    n = delivery.notification
    kind = register.get(n.kind)
    if kind is None or kind.channel(delivery.channel) is None:
        return f"kind {n.kind!r} no longer declares {delivery.channel}"
    n.refresh_from_db(fields=["unread", "deleted"])
    if n.deleted:
        return "deleted"
    if not n.unread:
        return "read"
    user = delivery.recipient
    if not getattr(user, "is_active", True):
        return "inactive user"
    if not preferences.is_enabled(user, kind.key, delivery.channel):
        return "muted"
    return ""


def check(delivery: Delivery, now: datetime | None = None) -> Verdict:
    """
    Look at a claimed delivery again, as it is now: the notification to send
    (for a group, its newest live member, which carries the group's count),
    or why nothing is sent, or until when quiet hours hold it.
    """
    now = now or timezone.now()
    reason = why_not(delivery)
    if reason:
        return Verdict(skip=reason)
    n = delivery.notification
    kind = register[n.kind]
    user = delivery.recipient
    if not kind.critical:
        until = quiet_until(user, now)
        if until is not None:
            return Verdict(wait_until=until)
    if delivery.group:
        newest = grouping.members(delivery.recipient_id, delivery.group).order_by("-id").first()
        spoken = grouping.take_turn(delivery, kind.window, now)
        if spoken is not None:
            return Verdict(skip=f"its group's went out at {spoken:%Y-%m-%d %H:%M:%S}")
        n = newest or n
    return Verdict(notification=n)


def cancel(ids: Sequence[int], why: str) -> int:
    """
    Skip the pending deliveries of these notifications (read or deleted:
    nothing is left to say). Inside the caller's transaction; returns how many.
    """
    if not ids:
        return 0
    return Delivery.objects.filter(notification_id__in=list(ids), state=State.PENDING).update(
        state=State.SKIPPED, finished_at=timezone.now(), note=why
    )


# -- quiet hours --------------------------------------------------------------------


def set_quiet_hours(
    user: AbstractBaseUser, start: time | None, end: time | None = None, time_zone: str | None = None
) -> None:
    """
    Hold ``user``'s email and push between ``start`` and ``end`` (local times
    in ``time_zone``, an IANA name, by default the current time zone:
    ``timezone.get_current_timezone_name()``; ``start`` after ``end`` spans
    midnight) until ``end``. Critical kinds are never held. ``start`` None
    removes them. Raises ``ValueError`` for an unknown time zone or equal
    start and end.
    """
    if start is None:
        QuietHours.objects.filter(user_id=user.pk).delete()
        return
    if not isinstance(start, time) or not isinstance(end, time):
        raise ValueError("Quiet hours need a start and an end, as datetime.time values.")
    if start == end:
        raise ValueError("Quiet hours must start and end at different times.")
    if time_zone is None:
        time_zone = timezone.get_current_timezone_name()
    _zone(time_zone)
    QuietHours.objects.update_or_create(
        user_id=user.pk, defaults={"start": start, "end": end, "time_zone": time_zone}
    )


def quiet_until(user: Any, now: datetime) -> datetime | None:
    """
    When ``user``'s quiet hours holding ``now`` end (in UTC), or None if they
    are not in them: the first moment after ``now`` at which their clock
    reaches the end (an end the clock skips, moving forward, is reached when
    it jumps).
    """
    hours = QuietHours.objects.filter(user_id=user.pk).first()
    if hours is None:
        return None
    zone = _zone(hours.time_zone)
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if hours.start < hours.end:
        inside = hours.start <= clock < hours.end
    else:
        inside = clock >= hours.start or clock < hours.end
    if not inside:
        return None
    for days in range(3):
        for moment in _reached(zone, datetime.combine(local.date() + timedelta(days=days), hours.end)):
            if moment > now:
                return moment  # (in UTC: a time of a repeated hour compares unequal to any other zone's)
    raise AssertionError("unreachable: a clock reaches a time of day within three days")


def _reached(zone: zoneinfo.ZoneInfo, wall: datetime) -> list[datetime]:
    """
    The moments (in UTC, in order) at which ``zone``'s clock reaches the naive
    ``wall`` time: one; two when the clock goes back over it; and when it
    moves forward over it, the moment it jumps.
    """
    first, second = (wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return sorted({first, second})  # (the same moment twice is once)
    # Skipped: the clock reads less before the jump and more after it, which
    # lies between the two readings of ``wall``'s offsets (whole seconds).
    before, after = int(min(first, second).timestamp()), int(max(first, second).timestamp())
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            after = middle
        else:
            before = middle
    return [datetime.fromtimestamp(after, UTC)]


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            gettext("Unknown time zone %(zone)r; use an IANA name such as 'Europe/Paris'.") % {"zone": name}
        ) from None
