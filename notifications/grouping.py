"""
Grouping: notifications of one kind with the same group key for the same user
within the kind's window fold into one item ("alice, bob and 48 others
commented on Post 7").

Each notification stays a row of its own, so the stream stays exactly once and
in order. Rows of one group share ``group``; the newest row stands for the
group (older members are left out of lists, counts and replays, see
``superseded``), and its JSON carries the group's ``count`` and first
actors, computed when read from the members up to it. A client replaces the
item with the same ``group`` by the newer one.

Everything that depends on groups asks this module: which rows a newer
member stands in for (``superseded``), what a change to a row also changes
(``with_members``: reading, unreading or deleting a row does the same to the
older members it stands for, on every path: the API, hq's methods and views,
the push's read link), which members a scheduled email speaks for
(``members``), and whether a member's email or push goes out or a recent one
for its group already spoke for it (``take_turn``). The stream keeps only a
group's newest row of a batch (``coalesce``).

A row joins the group of the newest row for the same user and group key if
that one is less than ``window`` older (a sliding window), else opens a group.
Both decisions happen inside the ``INSERT ... SELECT`` that writes the rows;
on PostgreSQL, notifications with one group key take a transaction-level
advisory lock first, so two concurrent writers never open two groups or see a
group half-written, and ids within a group grow in commit order.
"""

from __future__ import annotations

import hashlib
import uuid
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connections, router, transaction
from django.db.models import Exists, OuterRef, Q

if TYPE_CHECKING:
    from .kinds import Kind
    from .models import Delivery, Notification, NotificationQuerySet

# How many distinct actors a group's JSON names ("alice, bob and 48 others").
ACTORS_SHOWN = 3
_KEY_MAX = 200


@dataclass(frozen=True, slots=True)
class Summary:
    """What a group looks like at one of its rows: members so far and who acted."""

    count: int
    actors: tuple[str, ...]  # the first ACTORS_SHOWN distinct actor names
    actor_count: int  # distinct named actors among the members


def group_key(kind: Kind, template: Notification) -> str:
    """The stored group key of a notification of ``kind``: "" when it stands alone."""
    key = kind.group_key(template)
    if key is None:
        return ""
    full = f"{kind.key}:{key}"
    if len(full) > _KEY_MAX:
        full = f"{kind.key}:#{hashlib.sha256(key.encode()).hexdigest()}"
    return full


def new_group() -> str:
    """A fresh group id (unique per user is enough; this is unique everywhere)."""
    return uuid.uuid4().hex


def lock(db: str, key: str) -> None:
    """
    Serialise writers of one group key until the transaction ends (PostgreSQL;
    SQLite has one writer already). Call inside the transaction that inserts.
    """
    connection = connections[db]
    if connection.vendor != "postgresql":
        return
    number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [number])


def open_group_sql(
    quote_name: Any, table: str, user_alias: str, user_pk: str
) -> str:
    """
    SQL for the ``group`` column in the fan-out's SELECT: the group of this
    user's newest live row with the key since the window opened, or a new one.
    Parameters: group key, window start, deleted=False, new group id.
    """
    qn = quote_name
    return (
        f"COALESCE((SELECT g.{qn('group')} FROM {qn(table)} g "  # noqa: S608  # identifiers from quote_name, values as parameters
        f"WHERE g.{qn('recipient_id')} = {user_alias}.{user_pk} "
        # (<> '' lets the database use the partial index of grouped rows.)
        f"AND g.{qn('group_key')} = %s AND g.{qn('group_key')} <> '' "
        f"AND g.{qn('created')} >= %s "
        f"AND g.{qn('deleted')} = %s "
        f"ORDER BY g.{qn('id')} DESC LIMIT 1), %s)"
    )


def open_groups(user_ids: Iterable[int], key: str, since: datetime, db: str) -> dict[int, str]:
    """The open group of ``key`` per user (for databases without the fan-out)."""
    from .models import Notification

    found: dict[int, str] = {}
    rows = (
        Notification.objects.using(db)
        .filter(
            recipient_id__in=list(user_ids), group_key=key, created__gte=since, deleted=False
        )
        .order_by("-id")
        .values_list("recipient_id", "group")
    )
    for uid, group in rows:
        found.setdefault(uid, group)
    return found


# -- reading ---------------------------------------------------------------------

_SUMMARY = "_notifications_summary"


def attach_summaries(rows: Sequence[Notification]) -> None:
    """
    Compute the group summary of every grouped row in ``rows`` in one query,
    for ``summary()`` to find. Each row's summary counts the members up to it.
    """
    grouped = [n for n in rows if n.group and n.recipient_id is not None]
    if not grouped:
        return
    from .models import Notification

    members = (
        Notification.objects.filter(
            recipient_id__in={n.recipient_id for n in grouped},
            group__in={n.group for n in grouped},
            id__lte=max(n.pk for n in grouped),
            deleted=False,
        )
        .order_by("id")
        .values_list("recipient_id", "group", "id", "actor_display")
    )
    runs: dict[tuple[int, str], tuple[list[int], list[Summary]]] = {}
    seen: dict[tuple[int, str], set[str]] = {}
    for uid, group, nid, actor in members.iterator(chunk_size=2000):
        ids, sums = runs.setdefault((uid, group), ([], []))
        names = seen.setdefault((uid, group), set())
        last = sums[-1] if sums else Summary(0, (), 0)
        actors, actor_count = last.actors, last.actor_count
        if actor and actor not in names:
            names.add(actor)
            actor_count += 1
            if len(actors) < ACTORS_SHOWN:
                actors = (*actors, actor)
        ids.append(nid)
        sums.append(Summary(last.count + 1, actors, actor_count))
    for n in grouped:
        ids, sums = runs.get((n.recipient_id, n.group), ([], []))  # type: ignore[arg-type]
        at = bisect_right(ids, n.pk) - 1
        if at >= 0:
            setattr(n, _SUMMARY, sums[at])


def summary(n: Notification) -> Summary:
    """The group summary at ``n`` (a lone notification is a group of one)."""
    found = getattr(n, _SUMMARY, None)
    if found is None and n.group and n.recipient_id is not None and n.pk is not None:
        attach_summaries([n])
        found = getattr(n, _SUMMARY, None)
    if found is None:
        names = (n.actor_display,) if n.actor_display else ()
        found = Summary(1, names, len(names))
    return found


def superseded() -> Q:
    """
    The rows a newer live member of their group stands in for: a group shows
    as its newest row (which carries the group's count), so the others stay
    out of lists, counts and replays.
    """
    from .models import Notification

    newer = Notification.objects.filter(
        recipient_id=OuterRef("recipient_id"),
        group=OuterRef("group"),
        id__gt=OuterRef("pk"),
        deleted=False,
    ).exclude(group="")
    return ~Q(group="") & Q(Exists(newer))


def members(recipient_id: int, group: str) -> NotificationQuerySet:
    """The live (not deleted) members of ``recipient_id``'s ``group``."""
    from .models import Notification

    return Notification.objects.filter(recipient_id=recipient_id, group=group, deleted=False)


def with_members(
    user_id: int, rows: Iterable[tuple[int, int | None, str]]
) -> list[tuple[int, int | None]]:
    """
    These (id, recipient, group) rows of ``user_id``'s (or broadcasts) as
    (id, recipient) pairs, plus the older members of the groups they stand
    for: what is done to a group's row is done to every member up to it.
    A query only when there are groups.
    """
    pairs: list[tuple[int, int | None]] = []
    heads: dict[str, int] = {}
    for nid, rid, group in rows:
        pairs.append((nid, rid))
        if group and rid is not None:
            heads[group] = max(nid, heads.get(group, 0))
    given = {nid for nid, _ in pairs}
    extra = [nid for nid in member_ids(user_id, heads) if nid not in given]
    return pairs + [(nid, user_id) for nid in extra]


def take_turn(delivery: Delivery, window: timedelta, now: datetime) -> datetime | None:
    """
    Let ``delivery`` (claimed, of a grouped notification) speak for its group
    on its channel: None if it may send, recording that it does; else when
    another delivery of the group took its turn within ``window`` before
    ``now`` (that email or push named the group already). One per group and
    window however many workers check members at once: the check and the
    record are one statement, serialised per group on PostgreSQL.
    """
    from .models import Delivery

    db = router.db_for_write(Delivery)
    same = Delivery.objects.using(db).filter(
        recipient_id=delivery.recipient_id,
        channel=delivery.channel,
        group=delivery.group,
        turn_at__gte=now - window,
        state__in=[Delivery.State.PENDING, Delivery.State.SENDING, Delivery.State.SENT],
    ).exclude(pk=delivery.pk)
    with transaction.atomic(using=db):
        lock(db, f"delivery:{delivery.recipient_id}:{delivery.channel}:{delivery.group}")
        taken = (
            Delivery.objects.using(db)
            .filter(pk=delivery.pk)
            .exclude(Exists(same))
            .update(turn_at=now)
        )
        if taken:
            return None
        last = same.order_by("-turn_at").values_list("turn_at", flat=True).first()
    return last or now


def member_ids(user_id: int, heads: Mapping[str, int]) -> list[int]:
    """
    The ids of ``user_id``'s notifications in these groups (group -> the
    newest id acted on) that are not newer than it: marking a group's newest
    row read, or deleting it, does the same to the members it stands for.
    """
    if not heads:
        return []
    from .models import Notification

    members = Notification.objects.filter(recipient_id=user_id, group__in=list(heads)).values_list(
        "group", "id"
    )
    return [nid for group, nid in members if nid <= heads[group]]


# -- the stream ------------------------------------------------------------------

T = TypeVar("T", bound=tuple[Any, ...])


def coalesce(rows: Sequence[T]) -> list[T]:
    """
    Keep only the newest row of each group among ``rows``: routed rows
    ``(id, json, group)`` in id order, where ``group`` identifies a group for
    one user (e.g. ``(recipient_id, group)``) or is None/"" for a row that
    stands alone. The rows kept stay in id order.

    The newest row's JSON carries the whole group (count, actors), so a client
    that gets only it shows what it would after applying every row; a burst of
    a thousand rows of one group becomes one frame per read.
    """
    newest: dict[Any, int] = {}
    for index, row in enumerate(rows):
        if row[2]:
            newest[row[2]] = index
    if len(newest) == sum(1 for row in rows if row[2]):
        return list(rows)
    return [row for index, row in enumerate(rows) if not row[2] or newest[row[2]] == index]
