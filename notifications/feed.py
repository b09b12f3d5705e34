"""
The synchronous queries behind the stream and the hub. Each returns plain data
(ids, positions and pre-encoded JSON), so nothing lazy escapes the database
thread.

What committed when is read from the database itself (``finality``): on
PostgreSQL from transaction snapshots and the ``xact`` column each row carries,
on SQLite from the id sequence. No query here trusts a clock.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from . import visibility
from .finality import Cursor, Position, Sequence, Snapshot, parse_snapshot
from .models import Audiences, BroadcastReceipt, Notification, ReadEvent, superseded
from .render import as_dict, dumps, prepare
from .signout import CHECK_PAYLOAD_PREFIX
from .signout import signed_out as signed_out  # the hub's sweep: who must stop streaming

logger = logging.getLogger(__name__)

# What rendering needs, besides routing.
_RENDER_FIELDS = (
    "verb",
    "description",
    "level",
    "url",
    "actor_display",
    "data",
    "created",
    "unread",
    "kind",
    "group",
)
_ROUTE_FIELDS = ("id", "recipient_id", "audience", "audience_group_id")
# Past this many users, filter rows by user in Python rather than in SQL.
_SQL_USERS = 1000


@dataclass(frozen=True, slots=True)
class Row:
    """A new notification as the hub routes it: who may see it, and its JSON."""

    id: int
    key: int  # what finality decides on: the writing transaction, or the id
    recipient_id: int | None
    audience: str
    group_id: int | None
    json: str
    # The notification's group (grouping.py), "" when it stands alone: the
    # hub may send only the newest row of a group (grouping.coalesce).
    notification_group: str = ""


def _alias() -> str:
    """The database the notification tables live on (the write alias: positions need the primary)."""
    return router.db_for_write(Notification)


def _vendor() -> str:
    return connections[_alias()].vendor


def _snapshots() -> bool:
    return _vendor() == "postgresql"


# -- positions -----------------------------------------------------------------


def position_now() -> tuple[Position, Position]:
    """
    Where the database is now, for notifications and for read events: one
    snapshot for both on PostgreSQL, each table's id sequence on SQLite. One query.
    """
    tables = (Notification._meta.db_table, ReadEvent._meta.db_table)
    with connections[_alias()].cursor() as cursor:
        if _snapshots():
            cursor.execute("SELECT pg_current_snapshot()::text")
            snapshot = parse_snapshot(cursor.fetchone()[0])
            return snapshot, snapshot
        if _vendor() == "sqlite":
            cursor.execute("SELECT name, seq FROM sqlite_sequence WHERE name IN (%s, %s)", tables)
            last = dict(cursor.fetchall())
        else:
            qn = connections[_alias()].ops.quote_name
            last = {}
            for table in tables:
                cursor.execute(f"SELECT MAX(id) FROM {qn(table)}")  # noqa: S608  # the table name from quote_name
                last[table] = cursor.fetchone()[0]
    return Sequence(int(last.get(tables[0]) or 0)), Sequence(int(last.get(tables[1]) or 0))


def cursor_now() -> Cursor:
    """A cursor for a client that has everything committed by now: read it before the list it goes with."""
    return Cursor.at(*position_now())


def _key(model: Any) -> str:
    qn = connections[_alias()].ops.quote_name
    return f"{qn(model._meta.db_table)}.{qn('xact' if _snapshots() else 'id')}"


def _visible(position: Position, key: str) -> str:
    """SQL: the row whose finality key is ``key`` is in ``position``."""
    if isinstance(position, Sequence):
        return f"{key} <= {int(position.last)}"
    visible = f"{key} < '{int(position.xmin)}'::xid8"
    if position.xmax > position.xmin:
        recent = f"{key} < '{int(position.xmax)}'::xid8"
        if position.xip:
            recent += f" AND NOT {key} = ANY('{{{','.join(map(str, position.xip))}}}'::xid8[])"
        visible = f"({visible} OR ({recent}))"
    return visible


def _after(position: Position, key: str) -> str:
    """SQL: the row committed after ``position``."""
    if isinstance(position, Sequence):
        return f"{key} > {int(position.last)}"
    after = f"{key} >= '{int(position.xmax)}'::xid8"
    if position.xip:
        after = f"({after} OR {key} = ANY('{{{','.join(map(str, position.xip))}}}'::xid8[]))"
    return after


def _in_window(rows: QuerySet[Any], model: Any, start: Position, end: Position) -> QuerySet[Any]:
    """The rows of ``rows`` that committed after ``start`` and by ``end``."""
    key = _key(model)
    return rows.extra(where=[_after(start, key), _visible(end, key)])  # noqa: S610  # the SQL holds only integers, cast by int()


def _undelivered(rows: QuerySet[Any], cursor: Cursor, end: Position) -> QuerySet[Any]:
    """The rows of ``rows`` in ``end`` that ``cursor`` does not have."""
    key = _key(Notification)
    where = [_after(cursor.done, key), _visible(end, key)]
    if cursor.window is not None:
        pk = f"{connections[_alias()].ops.quote_name(Notification._meta.db_table)}.id"
        where.append(f"NOT ({_visible(cursor.window, key)} AND {pk} <= {int(cursor.through)})")
    return rows.extra(where=where)  # noqa: S610  # the SQL holds only integers, cast by int()


def _with_key(rows: QuerySet[Any], model: Any = Notification) -> QuerySet[Any]:
    return rows.extra(select={"finality_key": _key(model)})  # noqa: S610  # the SQL holds only integers, cast by int()


def usable(cursor: Cursor, now: Position, read_now: Position | None = None) -> bool:
    """Is ``cursor`` from this database, at or before ``now``? (Else: a reset.)"""
    if type(cursor.done) is not type(now):
        return False
    if cursor.reads is not None and not (read_now is not None and read_now.covers(cursor.reads)):
        return False
    return now.covers(cursor.done) and (cursor.window is None or now.covers(cursor.window))


# -- the hub's reads -----------------------------------------------------------


@dataclass
class Fetched:
    """What committed after the hub's positions, up to ``end`` / ``read_end``."""

    end: Position
    read_end: Position
    rows: list[Row]
    reads: list[tuple[int, int, str]]  # (user id, finality key, read event JSON), in id order

    def add(self, more: Fetched) -> None:
        """Take in the rows and reads of ``more`` (same window, other users)."""
        self.rows = sorted([*self.rows, *more.rows], key=lambda r: r.id)
        self.reads.extend(more.reads)


def fetch(
    start: Position, read_start: Position, users: Collection[int], wake: bool = False
) -> Fetched:
    """
    Where the database is now, the live rows that committed after ``start``
    for these users or for an audience (broadcasts), in id order and rendered,
    and the read events of these users since ``read_start``. With ``wake``,
    first wake the snoozes that came due (``api.wake_due``): their ``woken``
    events commit before the read, which hands them out, in the same call
    (one connection, not one more per poll).
    """
    if wake:
        from .api import wake_due  # (api imports this module)

        try:
            wake_due()
        except Exception:  # the next wake retries; rows and reads still go out
            logger.exception("Waking due snoozes failed; retrying.")
    end, read_end = position_now()
    return Fetched(
        end,
        read_end,
        rows_between(start, end, users, broadcasts=True),
        new_reads(read_start, read_end, users),
    )


def fetch_late(
    start: Position, read_start: Position, fetched: Fetched, users: Collection[int]
) -> Fetched:
    """The personal rows and read events of more ``users``, in the window of ``fetched``."""
    return Fetched(
        fetched.end,
        fetched.read_end,
        rows_between(start, fetched.end, users),
        new_reads(read_start, fetched.read_end, users),
    )


def rows_between(
    start: Position, end: Position, users: Collection[int], *, broadcasts: bool = False
) -> list[Row]:
    """The live rows for ``users`` (and broadcasts) that committed after ``start`` and by ``end``."""
    if start.covers(end):
        return []
    rows = _in_window(Notification.objects.live(), Notification, start, end)
    wanted = set(users)
    if len(wanted) <= _SQL_USERS:
        mine = Q(recipient_id__in=wanted)
        rows = rows.filter(mine | Q(recipient__isnull=True) if broadcasts else mine)
    elif not broadcasts:
        rows = rows.filter(recipient__isnull=False)
    out = []
    found = [
        n
        for n in _with_key(rows)
        .order_by("id")
        .only(*_ROUTE_FIELDS, "expires_at", "deleted", *_RENDER_FIELDS)
        if n.recipient_id is None or n.recipient_id in wanted
    ]
    prepare(found)
    for n in found:
        out.append(
            Row(
                n.id,
                int(n.finality_key),
                n.recipient_id,
                n.audience,
                n.audience_group_id,
                dumps(as_dict(n)),
                n.group,
            )
        )
    return out


def new_reads(start: Position, end: Position, users: Collection[int]) -> list[tuple[int, int, str]]:
    """
    The read events for these users that committed after ``start`` and by
    ``end``: (user, finality key, JSON), in id order.
    """
    if start.covers(end) or not users:
        return []
    rows = _in_window(ReadEvent.objects.all(), ReadEvent, start, end)
    wanted = set(users)
    if len(wanted) <= _SQL_USERS:
        rows = rows.filter(user_id__in=wanted)
    return [
        (r.user_id, int(r.finality_key), r.payload)
        for r in _with_key(rows, ReadEvent).order_by("id").only("user_id", "payload")
        if r.user_id in wanted
    ]


# The payload ``prune_read_events`` leaves on each user's newest pruned-away
# read event: "changes before this one are gone".
PRUNED = '{"pruned": true}'


def _missed_reads(
    cursor: Cursor, read_end: Position, kept: list[tuple[int, str]]
) -> list[str] | None:
    """
    Of ``kept`` (a user's read events still kept, as (key, JSON) in id order),
    those in ``read_end`` that ``cursor`` does not have. None when that cannot
    be told: the cursor does not say which read events it has (and there are
    some), or it misses one that stands for pruned ones.
    """
    kept = [(key, payload) for key, payload in kept if read_end.visible(key)]
    if cursor.read_done is None:
        return None if kept else []
    missed = [payload for key, payload in kept if not cursor.has_read(key)]
    return None if PRUNED in missed else missed


def _kept_reads(users: Collection[int]) -> tuple[dict[int, list[tuple[int, str]]], set[int]]:
    """
    Every kept read event of these users, user -> [(key, JSON)] in id order,
    and the users with a login check kept (which no client gets).
    """
    found: dict[int, list[tuple[int, str]]] = {}
    checked: set[int] = set()
    rows = _with_key(ReadEvent.objects.filter(user_id__in=set(users)), ReadEvent)
    for r in rows.order_by("id").only("user_id", "payload"):
        if r.payload.startswith(CHECK_PAYLOAD_PREFIX):
            checked.add(r.user_id)
        else:
            found.setdefault(r.user_id, []).append((int(r.finality_key), r.payload))
    return found, checked


# -- replay --------------------------------------------------------------------


@dataclass
class Replay:
    rows: list[tuple[int, str]]  # (id, JSON), oldest first
    overflow: bool  # more than the limit were waiting
    end: Position  # the replay holds everything up to here
    # False: a reset (the client reloads). The cursor is not from this
    # database, or what read-state changes it misses cannot be told, or it
    # misses both notifications and read-state changes: each read event
    # carries the badge of its own moment, and the rows committed before it
    # would be counted twice; the list and badge the client reloads are exact.
    usable: bool = True
    read_end: Position | None = None  # ... and every read event up to here
    reads: list[str] = field(default_factory=list)  # read events missed, JSON, oldest first
    # Django would no longer accept the stream's login, checked after the
    # replay's snapshot because its user's login changed lately (see
    # ``replay_many``): the stream ends without sending any of it.
    signed_out: bool = False


def _replay_reads(cursor: Cursor, result: Replay, kept: list[tuple[int, str]]) -> Replay:
    """``result`` with the read events ``cursor`` misses (a reset when that cannot be told)."""
    if not result.usable or result.read_end is None:
        return result
    reads = _missed_reads(cursor, result.read_end, kept)
    if reads is None or (reads and result.rows):
        return Replay([], False, result.end, usable=False, read_end=result.read_end)
    result.reads = reads
    return result


def replay(
    who: Audiences,
    cursor: Cursor,
    limit: int,
    end: Position | None = None,
    read_end: Position | None = None,
    kept: dict[int, list[tuple[int, str]]] | None = None,
) -> Replay:
    """
    What ``who`` missed after ``cursor``, oldest first, up to where the database
    is now, as (id, json) pairs, and the read-state changes it missed.
    ``overflow`` is set when more than ``limit`` rows are waiting.
    """
    if end is None:
        end, read_end = position_now()
    elif read_end is None:  # one snapshot orders both; or the read events' own sequence
        read_end = end if isinstance(end, Snapshot) else position_now()[1]
    if not usable(cursor, end, read_end):
        return Replay([], False, end, usable=False, read_end=read_end)
    missed = _undelivered(Notification.objects.for_audiences(who), cursor, end)
    found = list(missed.order_by("id").only("id", "recipient_id", *_RENDER_FIELDS)[: limit + 1])
    prepare(found)
    rows = [(n.id, dumps(as_dict(n))) for n in found]
    result = Replay(rows[:limit], len(rows) > limit, end, read_end=read_end)
    if kept is None:
        kept = _kept_reads([who.user_id])[0]
    return _replay_reads(cursor, result, kept.get(who.user_id, []))


BATCH_ROWS = 5000


def replay_many(requests: list[tuple[Audiences, Cursor, int]]) -> list[Replay]:
    """
    ``replay()`` for many streams opening at once, in a few queries: where the
    database is, the rows after the earliest cursor that any of these users
    may see, and their broadcast receipts. Each stream gets exactly what
    ``replay()`` would give it at that position. When the earliest cursor is
    far behind (more than BATCH_ROWS candidate rows), each stream is replayed
    on its own instead.

    A stream whose user has a login check kept (a password changed, a
    logout, a group left, within READ_EVENT_RETENTION) may have been let in
    just before that change: its login goes through ``signed_out`` after the
    replay's snapshot, which sees the change if the replay holds anything
    committed after it (``Replay.signed_out``).
    """
    if not requests:
        return []
    end, read_end = position_now()
    kept, checked = _kept_reads({who.user_id for who, _, _ in requests})
    results = _replay_many(requests, end, read_end, kept)
    if checked:
        recheck = [who for who, _, _ in requests if who.user_id in checked]
        ended, gone = signed_out(recheck)
        for (who, _, _), result in zip(requests, results, strict=True):
            if who.user_id in gone or (who.session_key is not None and who.session_key in ended):
                result.signed_out = True
    return results


def _replay_many(
    requests: list[tuple[Audiences, Cursor, int]],
    end: Position,
    read_end: Position,
    kept: dict[int, list[tuple[int, str]]],
) -> list[Replay]:
    if len(requests) == 1:
        return [replay(*requests[0], end=end, read_end=read_end, kept=kept)]
    results: list[Replay | None] = [None] * len(requests)
    todo = []
    for i, (_, cursor, _) in enumerate(requests):
        if usable(cursor, end, read_end):
            todo.append(i)
        else:
            results[i] = Replay([], False, end, usable=False, read_end=read_end)
    if not todo:
        return [r for r in results if r is not None]
    earliest = requests[todo[0]][1].done
    for i in todo[1:]:
        done = requests[i][1].done
        if earliest.covers(done):
            earliest = done
    users = {requests[i][0].user_id for i in todo}
    candidates = list(
        _with_key(
            _in_window(Notification.objects.live(), Notification, earliest, end)
            .exclude(superseded())
            .filter(Q(recipient_id__in=users) | Q(recipient__isnull=True))
        )
        .order_by("id")
        .only(*_ROUTE_FIELDS, *_RENDER_FIELDS)[: BATCH_ROWS + 1]
    )
    if len(candidates) > BATCH_ROWS:
        for i in todo:
            results[i] = replay(*requests[i], end=end, kept=kept)
        return [r for r in results if r is not None]
    prepare(candidates)
    personal: dict[int, list[Notification]] = {}
    shared: list[Notification] = []
    for n in candidates:
        if n.recipient_id is None:
            shared.append(n)
        else:
            personal.setdefault(n.recipient_id, []).append(n)
    receipts: dict[tuple[int, int], bool] = {}  # (notification, user) -> hidden
    if shared:
        receipts = {
            (nid, uid): hidden
            for nid, uid, hidden in BroadcastReceipt.objects.filter(
                notification_id__in=[n.id for n in shared], user_id__in=users
            ).values_list("notification_id", "user_id", "hidden")
        }
    encoded: dict[tuple[int, bool], str] = {}
    now = timezone.now()
    for i in todo:
        who, cursor, limit = requests[i]
        rows = []
        mine = personal.get(who.user_id, [])
        for n in heapq.merge(mine, shared, key=lambda n: n.id):
            if cursor.delivered(n.id, int(n.finality_key)):  # type: ignore[attr-defined]
                continue
            unread = visibility.shown(
                who,
                audience=n.audience,
                recipient_id=n.recipient_id,
                group_id=n.audience_group_id,
                deleted=False,  # live() above
                expires_at=None,
                unread=n.unread,
                receipt=receipts.get((n.id, who.user_id)),
                now=now,
            )
            if unread is None:
                continue
            data = encoded.get((n.id, unread))
            if data is None:
                data = encoded[n.id, unread] = dumps(as_dict(n, unread=unread))
            rows.append((n.id, data))
            if len(rows) > limit:
                break
        result = Replay(rows[:limit], len(rows) > limit, end, read_end=read_end)
        results[i] = _replay_reads(cursor, result, kept.get(who.user_id, []))
    return [r for r in results if r is not None]


def prune_read_events(older_than: float) -> int:
    """
    Delete read events older than ``older_than`` seconds; how many went. Each
    user's newest of those stays, its payload replaced by ``PRUNED``: a
    replay from a cursor that misses it cannot tell what changed, and resets.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than)
    old = ReadEvent.objects.using(_alias()).filter(created__lt=cutoff)
    newest = old.values("user_id").annotate(last=Max("id")).values_list("last", flat=True)
    with transaction.atomic(using=_alias()):
        deleted, _ = old.exclude(id__in=newest).delete()
        old.exclude(payload=PRUNED).update(payload=PRUNED)
    return deleted
