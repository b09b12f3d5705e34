"""
A small reference model of the product, for tests/test_model.py: who may see
what, what is unread, and which email is due, in plain Python.

It knows nothing of the app's code: it is the README's promises written as
data structures. The state machine feeds it the same steps as the real app
(taking only the ids the database gave) and compares the two after each step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

# The demo's kinds (project/notifications.py), as the model sees them: the
# away channels' defaults and delay, grouping, criticality. None: no kind.


@dataclass(frozen=True)
class KindSpec:
    away: dict[str, bool]  # away channel -> its default (absent: not declared)
    delay: timedelta = timedelta(0)
    grouped: bool = False
    window: timedelta = timedelta(minutes=10)
    critical: bool = False


KINDS: dict[str | None, KindSpec] = {
    None: KindSpec(away={}),
    "mention": KindSpec(away={"email": True, "push": True}, delay=timedelta(minutes=2)),
    "comment": KindSpec(away={"email": False, "push": False}, grouped=True),
    "security": KindSpec(away={"email": True, "push": True}, critical=True),
}
AWAY = ("email", "push")


@dataclass
class Row:
    id: int
    serial: int  # the model's step counter when it was written
    verb: str
    created: datetime
    recipient: int | None = None  # None: a broadcast
    audience: str = "user"  # user, all, staff, group
    audience_group: int | None = None
    expires_at: datetime | None = None
    kind: str | None = None
    group_key: str = ""  # (kind, target) of a grouped kind
    group: int | None = None  # the id of the group's first row
    unread: bool = True
    deleted: bool = False


@dataclass
class User:
    id: int
    staff: bool = False
    groups: set[int] = field(default_factory=set)
    # (kind or "" for the whole channel, channel) -> enabled
    prefs: dict[tuple[str, str], bool] = field(default_factory=dict)
    pushable: bool = False  # has a browser subscribed to Web Push
    quiet: tuple[time, time, str] | None = None  # quiet hours: start, end, time zone


@dataclass
class Away:
    """One scheduled email or push of one row (a group's members get one each)."""

    user: int
    key: int  # the row's id
    channel: str
    group: int | None  # the row's group (the id of its first row), None alone
    due: datetime
    state: str = "pending"  # pending, sent, skipped
    sent_at: datetime | None = None  # when it took its group's turn and went out


class Model:
    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self.rows: dict[int, Row] = {}
        # (broadcast id, user id) -> hidden: a receipt means read for that user
        self.receipts: dict[tuple[int, int], bool] = {}
        self.away: dict[tuple[int, int, str], Away] = {}  # (user, row id, channel)
        self.keys: dict[tuple[int, str], int | None] = {}  # (user, idempotency key) -> the row it got
        self.serial = 0

    # -- who wants what ---------------------------------------------------------

    def enabled(self, user: int, kind: str | None, channel: str) -> bool:
        """
        Critical, then the user's choice for the kind, for the channel, then the
        default; email and push follow the in-app channel (off while it is off).
        """
        if kind is None:
            return channel == "in_app"
        if channel != "in_app" and not self.enabled(user, kind, "in_app"):
            return False
        return self._chosen(self.users[user].prefs, kind, channel)

    def _chosen(self, prefs: dict[tuple[str, str], bool], kind: str, channel: str) -> bool:
        spec = KINDS[kind]
        default = True if channel == "in_app" else spec.away.get(channel)
        if default is None:
            return False
        if spec.critical:
            return True
        if (kind, channel) in prefs:
            return prefs[kind, channel]
        if ("", channel) in prefs:
            return prefs["", channel]
        return default

    def set_preferences(self, user: int, changes: list[tuple[str | None, str, bool | None]]) -> None:
        """
        Apply (kind, channel, enabled) changes, all or nothing: ``ValueError``
        (nothing stored) when one turns a kind's email or push on while the
        kind would be off in the app after the call.
        """
        prefs = dict(self.users[user].prefs)
        for kind, channel, enabled in changes:
            key = (kind or "", channel)
            if enabled is None:
                prefs.pop(key, None)
            else:
                prefs[key] = enabled
        for kind, channel, enabled in changes:
            if kind is not None and channel != "in_app" and enabled and not self._chosen(prefs, kind, "in_app"):
                raise ValueError(f"{kind} is off in the app: its {channel} cannot be turned on")
        self.users[user].prefs = prefs

    def set_preference(self, user: int, kind: str | None, channel: str, enabled: bool | None) -> None:
        self.set_preferences(user, [(kind, channel, enabled)])

    # -- writing ------------------------------------------------------------------

    def receivers(self, users: Iterable[int], kind: str | None) -> list[int]:
        """Of ``users``, those who get a row of ``kind`` (in-app on), in id order."""
        return sorted(u for u in set(users) if self.enabled(u, kind, "in_app"))

    def keyed(self, users: Iterable[int], kind: str | None, key: str | None) -> tuple[list[int], list[int]]:
        """
        Of ``users``, those a ``notify(kind=kind, key=key)`` writes for, and the
        rows it returns besides: a recipient who already got a notification
        with that key gets nothing new, and that row is returned.
        """
        held = [] if key is None else [
            nid for u in sorted(set(users)) if (nid := self.keys.get((u, key))) is not None
        ]
        fresh = [u for u in self.receivers(users, kind) if key is None or (u, key) not in self.keys]
        return fresh, sorted(held)

    def notify(
        self, rows: dict[int, int], verb: str, kind: str | None, target: int | None, now: datetime,
        key: str | None = None, named: Iterable[int] = (),
    ) -> None:
        """
        Record what ``notify()`` wrote: ``rows`` maps recipient -> row id
        (``key``: they now hold it; a recipient who got no row holds nothing).
        """
        self.serial += 1
        if key is not None:
            for user, nid in rows.items():
                self.keys[user, key] = nid
        spec = KINDS[kind]
        for user, nid in sorted(rows.items()):
            row = Row(nid, self.serial, verb, now, recipient=user, kind=kind)
            if spec.grouped and target is not None:
                row.group_key = f"{kind}:{target}"
                row.group = self._open_group(user, row.group_key, now - spec.window) or nid
            self.rows[nid] = row
            self._schedule(row, spec)

    def _open_group(self, user: int, key: str, since: datetime) -> int | None:
        newest = max(
            (
                r for r in self.rows.values()
                if r.recipient == user and r.group_key == key and not r.deleted and r.created >= since
            ),
            key=lambda r: r.id,
            default=None,
        )
        return None if newest is None else newest.group

    def _schedule(self, row: Row, spec: KindSpec) -> None:
        """Every row, a group's members too, gets its own email and push when on."""
        assert row.recipient is not None
        for channel in AWAY:
            if not self.enabled(row.recipient, row.kind, channel):
                continue
            if channel == "push" and not self.users[row.recipient].pushable:
                continue
            self.away[row.recipient, row.id, channel] = Away(
                row.recipient, row.id, channel, row.group, row.created + spec.delay
            )

    def broadcast(self, nid: int, verb: str, audience: str, group: int | None, expires_at: datetime | None, now: datetime) -> None:
        self.serial += 1
        self.rows[nid] = Row(
            nid, self.serial, verb, now, audience=audience, audience_group=group, expires_at=expires_at
        )

    # -- reading --------------------------------------------------------------------

    def in_audience(self, user: int, row: Row) -> bool:
        u = self.users[user]
        if row.recipient is not None:
            return row.recipient == user
        if row.audience == "all":
            return True
        if row.audience == "staff":
            return u.staff
        return row.audience_group in u.groups

    def superseded(self, row: Row) -> bool:
        return row.group is not None and any(
            r.group == row.group and r.recipient == row.recipient and r.id > row.id and not r.deleted
            for r in self.rows.values()
        )

    def visible(self, user: int, now: datetime) -> dict[int, bool]:
        """What ``user`` sees at ``now``: id -> unread."""
        seen = {}
        for row in self.rows.values():
            if not self.in_audience(user, row) or row.deleted:
                continue
            if row.expires_at is not None and row.expires_at <= now:
                continue
            if row.recipient is None:
                receipt = self.receipts.get((row.id, user))
                if receipt:  # hidden
                    continue
                seen[row.id] = receipt is None
            elif not self.superseded(row):
                seen[row.id] = row.unread
        return seen

    def count(self, row: Row) -> int:
        """How many notifications a group's item stands for, at ``row`` (a lone row: 1)."""
        if row.group is None:
            return 1
        return sum(
            1 for r in self.rows.values()
            if r.group == row.group and r.recipient == row.recipient and r.id <= row.id and not r.deleted
        )

    def unread_count(self, user: int, now: datetime) -> int:
        return sum(self.visible(user, now).values())

    # -- changing read state ------------------------------------------------------------

    def members(self, row: Row) -> list[Row]:
        """A group's item stands for its members up to it; another row for itself."""
        if row.group is None:
            return [row]
        return [
            r for r in self.rows.values()
            if r.group == row.group and r.recipient == row.recipient and r.id <= row.id
        ]

    def changeable(self, user: int, now: datetime) -> set[int]:
        """The ids ``user`` may read, unread or delete: what they see, and older members of their groups."""
        return set(self.visible(user, now)) | {
            r.id for r in self.rows.values() if r.recipient == user and not r.deleted
        }

    def change(self, user: int, ids: Iterable[int], now: datetime, *, action: str) -> list[int]:
        """
        Apply ``action`` (read, unread, delete) to the ids ``user`` may change
        (a group's row: with its members up to it); returns those. Reading or
        deleting cancels the email and push still pending for the rows changed.
        """
        allowed = self.changeable(user, now)
        done = []
        for nid in ids:
            if nid not in allowed:
                continue
            done.append(nid)
            row = self.rows[nid]
            if row.recipient is None:
                if action == "read":
                    self.receipts.setdefault((nid, user), False)
                elif action == "unread":
                    if self.receipts.get((nid, user)) is False:
                        del self.receipts[nid, user]
                else:
                    self.receipts[nid, user] = True
                continue
            for member in self.members(row):
                if action == "delete":
                    member.deleted = True
                else:
                    member.unread = action == "unread"
                if action != "unread":
                    for channel in AWAY:
                        away = self.away.get((user, member.id, channel))
                        if away is not None and away.state == "pending":
                            away.state = "skipped"
        return done

    def read_all(self, user: int, now: datetime) -> None:
        """Everything unread: what ``user`` sees and older members of their groups."""
        seen = self.visible(user, now)
        unread = [nid for nid, is_unread in seen.items() if is_unread] + [
            r.id for r in self.rows.values()
            if r.recipient == user and not r.deleted and r.unread and r.id not in seen
        ]
        self.change(user, sorted(unread), now, action="read")

    # -- email and push -------------------------------------------------------------------

    def drain(self, now: datetime) -> list[tuple[int, int, str, int]]:
        """
        Settle every email and push due by ``now``, in the order a worker claims
        them (due, then id); returns (user, row id, channel, row spoken of) of
        those sent: a group's member goes out as its newest live member, unless
        another of its group went out on that channel within the kind's window.
        """
        sent = []
        due = sorted(
            (a for a in self.away.values() if a.state == "pending" and a.due <= now),
            key=lambda a: (a.due, a.key),
        )
        for away in due:
            row = self.rows[away.key]
            if row.deleted or not row.unread or not self.enabled(away.user, row.kind, away.channel):
                away.state = "skipped"
                continue
            spec = KINDS[row.kind]
            until = self.quiet_until(away.user, now)
            if until is not None and not spec.critical:
                away.due = until  # held, then looked at again
                continue
            spoken = row.id
            if away.group is not None:
                if any(
                    other.group == away.group and other.user == away.user and other.channel == away.channel
                    and other.sent_at is not None and other.sent_at >= now - spec.window
                    for other in self.away.values()
                ):
                    away.state = "skipped"
                    continue
                spoken = max(
                    r.id for r in self.rows.values()
                    if r.group == away.group and r.recipient == away.user and not r.deleted
                )
            away.state = "sent"
            away.sent_at = now
            sent.append((away.user, away.key, away.channel, spoken))
        return sent

    def quiet_until(self, user: int, now: datetime) -> datetime | None:
        """When the user's quiet hours holding ``now`` end (start after end spans midnight)."""
        quiet = self.users[user].quiet
        if quiet is None:
            return None
        start, end, zone = quiet[0], quiet[1], ZoneInfo(quiet[2])
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        inside = start <= clock < end if start < end else (clock >= start or clock < end)
        if not inside:
            return None
        until = datetime.combine(local.date(), end, tzinfo=zone)
        return until if until > local else until + timedelta(days=1)
