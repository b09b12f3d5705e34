"""
The synchronous queries behind the stream and the hub. Each returns plain data
(ids and pre-encoded JSON), so nothing lazy escapes the database thread.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone

from .auth import signed_out as signed_out  # the hub's sweep: who must stop streaming
from .conf import conf
from .cursor import Cursor
from .models import Audiences, BroadcastReceipt, Notification
from .render import as_dict, dumps

# What the hub needs to route a row, then what rendering needs.
_ROUTE_FIELDS = ("id", "recipient_id", "audience", "audience_group_id", "expires_at", "deleted")
_RENDER_FIELDS = (
    "verb",
    "description",
    "level",
    "url",
    "actor_display",
    "data",
    "created",
    "unread",
)


@dataclass(frozen=True, slots=True)
class Row:
    """A new notification as the hub routes it: who may see it, and its JSON."""

    id: int
    recipient_id: int | None
    audience: str
    group_id: int | None
    json: str | None  # None when deleted or expired, or not rendered: never sent
    # For another process's user, the JSON is not rendered. The hub renders it
    # after all (``render``) when a stream of that user subscribed meanwhile.
    rendered: bool = True


def safe_watermark() -> int:
    """
    The highest id below which every row is final: the newest id among rows
    older than the gap grace (on SQLite, simply the newest id).
    """
    grace = conf.GAP_GRACE
    rows = Notification.objects.all()
    if grace > 0:
        rows = rows.filter(created__lt=timezone.now() - timedelta(seconds=grace))
    return rows.aggregate(m=Max("id"))["m"] or 0


def rows_after(watermark: int, seen: set[int], limit: int, local_users: Collection[int]) -> list[Row]:
    """
    Rows with an id above ``watermark`` that are not in ``seen``, oldest first,
    at most ``limit``. Only broadcasts and rows for ``local_users`` (the users
    with a stream in this process) are rendered; the rest, and deleted or
    expired rows, come without JSON: seen, never sent.

    Two short queries: the routing columns of the ids above the watermark (few,
    since the watermark trails the newest id by at most the gap grace), then
    the rows to render. ``seen`` never goes into SQL, however large.
    """
    candidates = (
        Notification.objects.filter(id__gt=watermark)
        .order_by("id")
        .values_list("id", "recipient_id", "audience", "audience_group_id")
    )
    new = []
    for candidate in candidates.iterator(chunk_size=2000):
        if candidate[0] not in seen:
            new.append(candidate)
            if len(new) == limit:
                break
    wanted = {nid for nid, recipient, _, _ in new if recipient is None or recipient in local_users}
    rendered = render(wanted)
    return [
        Row(nid, recipient, audience, group, rendered.get(nid), nid in wanted)
        for nid, recipient, audience, group in new
    ]


def render(ids: Collection[int]) -> dict[int, str]:
    """The JSON of the rows with these ids that are neither deleted nor expired."""
    if not ids:
        return {}
    now = timezone.now()
    return {
        n.id: dumps(as_dict(n))
        for n in Notification.objects.filter(id__in=list(ids)).only(*_ROUTE_FIELDS, *_RENDER_FIELDS)
        if not n.deleted and (n.expires_at is None or n.expires_at > now)
    }


@dataclass
class Replay:
    rows: list[tuple[int, str]]
    overflow: bool


def replay(who: Audiences, cursor: Cursor, limit: int) -> Replay:
    """
    What ``who`` missed after ``cursor``, oldest first, as (id, json) pairs.
    ``overflow`` is set when more than ``limit`` rows are waiting.
    """
    missed = (
        Notification.objects.for_audiences(who)
        .filter(id__gt=cursor.watermark)
        .exclude(id__in=cursor.seen)
        .order_by("id")
        .only("id", "recipient_id", *_RENDER_FIELDS)[: limit + 1]
    )
    rows = [(n.id, dumps(as_dict(n))) for n in missed]
    return Replay(rows[:limit], overflow=len(rows) > limit)


BATCH_ROWS = 5000


def replay_many(requests: list[tuple[Audiences, Cursor, int]]) -> list[Replay]:
    """
    ``replay()`` for many streams opening at once, in two queries: the rows
    after the lowest cursor that any of these users may see, and their
    broadcast receipts. Each stream gets exactly what ``replay()`` would give
    it. When the lowest cursor is far behind (more than BATCH_ROWS candidate
    rows), each stream is replayed on its own instead.
    """
    if len(requests) <= 1:
        return [replay(*request) for request in requests]
    low = min(cursor.watermark for _, cursor, _ in requests)
    users = {who.user_id for who, _, _ in requests}
    candidates = list(
        Notification.objects.live()
        .filter(id__gt=low)
        .filter(Q(recipient_id__in=users) | Q(recipient__isnull=True))
        .order_by("id")
        .only("id", "recipient_id", "audience", "audience_group_id", *_RENDER_FIELDS)[
            : BATCH_ROWS + 1
        ]
    )
    if len(candidates) > BATCH_ROWS:
        return [replay(*request) for request in requests]
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
    results = []
    for who, cursor, limit in requests:
        rows = []
        mine = personal.get(who.user_id, [])
        for n in heapq.merge(mine, shared, key=lambda n: n.id):
            if cursor.has(n.id):
                continue
            if n.recipient_id is None:
                if not who.may_see(n.audience, None, n.audience_group_id):
                    continue
                hidden = receipts.get((n.id, who.user_id))
                if hidden:
                    continue
                unread = hidden is None
            else:
                unread = n.unread
            data = encoded.get((n.id, unread))
            if data is None:
                data = encoded[n.id, unread] = dumps(as_dict(n, unread=unread))
            rows.append((n.id, data))
            if len(rows) > limit:
                break
        results.append(Replay(rows[:limit], overflow=len(rows) > limit))
    return results


def newest_id() -> int:
    """
    The highest id ever handed out: a cursor above it is not from this database.
    Read from the id sequence where the database has one, so rows deleted by a
    prune do not make valid cursors look like they come from the future.
    """
    table = Notification._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            if sequence:
                cursor.execute(f"SELECT last_value FROM {sequence}")
                return max(int(cursor.fetchone()[0]), _max_id())
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
            row = cursor.fetchone()
            if row:
                return max(int(row[0]), _max_id())
    return _max_id()


def _max_id() -> int:
    return Notification.objects.aggregate(m=Max("id"))["m"] or 0
