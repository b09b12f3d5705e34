"""
The whole product held against a small reference model (tests/model.py): a
stateful property-based test (hypothesis) that publishes, reads, changes
preferences and rights, signs out, opens and reconnects streams on a real
server, advances time and drains the delivery worker, and compares the app
with the model after every step.

Invariants checked:
- every user's unread count (``api`` and HTTP) and list equal the model's;
- each stream (a tab: its connections, each resuming from the last cursor)
  gets each row it may see exactly once, in id order, and nothing else;
- each tab gets the user's ``read`` events since it opened, once and in order,
  across its reconnects (replayed from its cursor);
- each notification's email and push (a group's members have one each) goes
  out at most once, and exactly once when due, enabled (in-app on too) and
  still unread; a group's goes out as the group (its newest live member),
  skipped when another of the group went out within the kind's window;
- nothing reaches a stream after its session ended.

The default budget is small (``./dev test`` and CI); HYPOTHESIS_PROFILE=thorough
runs many more and longer sequences (see tests/conftest.py and the README).

Time: the test process's clock (``timezone.now``) is moved forward by the
machine; the server keeps the real clock, so broadcast expiry is chosen far
enough on either side of both (or between them, where the model says which
clock each path reads).
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connections
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from notifications import api, push, worker
from notifications.models import (
    BroadcastReceipt,
    Delivery,
    Notification,
    PushSubscription,
    QuietHours,
    ReadEvent,
)
from notifications.preferences import set_preferences
from notifications.schedule import set_quiet_hours
from notifications.signout import CHECK_PAYLOAD_PREFIX

from .conftest import CSRF, session_cookies
from .model import KINDS, Model
from .model import User as ModelUser
from .sse import Stream

User = get_user_model()

HEARTBEAT = 1.0
WAIT = 15.0  # the most a row may take to reach a stream (a loaded machine)
KIND_NAMES = list(KINDS)  # None (no kind), plain, grouped, critical
PATHS = ["api", "http", "hq_instance", "hq_queryset", "push_link"]


def real_now() -> datetime:
    return datetime.now(UTC)


class Clock:
    """The test process's ``timezone.now``: real time plus what the machine advanced."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return real_now() + self.offset


@dataclass
class Tab:
    """A browser tab: one login, its stream's connections one after another."""

    user: int
    cookies: dict[str, str]
    conn: Stream | None = None
    session_ok: bool = True
    received: list[int] = field(default_factory=list)  # from closed connections
    owed: set[int] = field(default_factory=set)  # every id this tab must get
    allowed: set[int] = field(default_factory=set)  # ids it may also get (once)
    cursor: str | None = None
    closed_serial: int = 0  # the model's serial when the last connection ended
    reads_from: int = 0  # the user's last read event (id) when the tab opened
    page: bool = True  # opened from the page's cursor (else "from now on")
    received_reads: list[str] = field(default_factory=list)  # read events of closed connections

    def ids(self) -> list[int]:
        return self.received + (self.conn.notification_ids() if self.conn else [])

    def reads(self) -> list[str]:
        """The ``read`` events' data this tab got, in order."""
        return self.received_reads + ([e.data for e in self.conn.of("read")] if self.conn else [])


class ProductMachine(RuleBasedStateMachine):
    """Set ``server``, ``clock`` on the class before running (see the test below)."""

    server: Any = None
    clock: Clock
    push_service: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.tag = uuid.uuid4().hex[:8]
        self.users: list[Any] = []
        self.groups: list[Group] = []
        for i in range(3):
            user = User.objects.create_user(f"m{i}_{self.tag}", email=f"m{i}_{self.tag}@example.com")
            self.users.append(user)
        for i in range(2):
            self.groups.append(Group.objects.create(name=f"g{i}_{self.tag}"))
        for user in self.users:
            self.model.users[user.pk] = ModelUser(user.pk)
        self._set_staff(0, True)
        self._join(0, 0, True)
        self._join(1, 0, True)
        self._join(2, 1, True)
        # Two of the three have a browser subscribed to Web Push.
        for i in (0, 1):
            device = self.push_service.device(f"{self.tag}-{i}")
            push.subscribe(self.users[i], device.as_json())
            self.model.users[self.users[i].pk].pushable = True
        self.tabs: list[Tab] = []
        self.outbox_seen = 0
        self.pushes_seen = self.pushes_before = len(self.push_service.received)
        self.sent = 0  # emails and pushes that went out
        self.read_log: list[tuple[int, int, str]] = []  # every read event: (id, user, data)
        self.resets = 0  # reconnects answered with ``reset``

    # -- helpers -----------------------------------------------------------------

    def _set_staff(self, i: int, staff: bool) -> None:
        user = self.users[i]
        user.is_staff = staff
        user.save(update_fields=["is_staff"])
        self.model.users[user.pk].staff = staff

    def _join(self, i: int, g: int, member: bool) -> None:
        user, group = self.users[i], self.groups[g]
        if member:
            group.user_set.add(user)
            self.model.users[user.pk].groups.add(group.pk)
        else:
            group.user_set.remove(user)
            self.model.users[user.pk].groups.discard(group.pk)

    def _verb(self) -> str:
        return f"v{self.model.serial + 1}x{self.tag}"

    def _now(self) -> datetime:
        return timezone.now()

    def _visible_ids(self, i: int) -> list[int]:
        return sorted(self.model.visible(self.users[i].pk, self._now()))

    def _changeable(self, i: int) -> list[int]:
        """What user ``i`` sees, and the older members of their groups (an old link's id)."""
        return sorted(self.model.changeable(self.users[i].pk, self._now()))

    def _personal_changeable(self, i: int) -> list[int]:
        return [nid for nid in self._changeable(i) if self.model.rows[nid].recipient is not None]

    def _sync_streams(self, new_ids: list[int]) -> None:
        """Wait until every connected tab got the new rows it may see; check it got nothing else."""
        now = real_now()
        for tab in self.tabs:
            if tab.conn is None:
                continue
            owed = {
                nid for nid in new_ids
                if self.model.in_audience(tab.user, self.model.rows[nid])
                and _live(self.model.rows[nid], now)
            }
            tab.owed |= owed
            conn = tab.conn
            conn.wait_for(lambda s: s.ended or owed <= set(s.notification_ids()), timeout=WAIT)
            assert owed <= set(conn.notification_ids()), (
                f"stream of user {tab.user} ended without {owed - set(conn.notification_ids())}"
            )
            self._check_shown(conn, owed, {nid: True for nid in owed})
            self._check_tab(tab)

    def _check_shown(self, conn: Stream, ids: set[int], unread: dict[int, bool]) -> None:
        """The stream showed rows ``ids`` with the model's unread flags and group counts."""
        for shown in conn.notifications():
            if shown["id"] in ids:
                row = self.model.rows[shown["id"]]
                assert (shown["unread"], shown["count"]) == (unread[row.id], self.model.count(row)), shown

    def _check_tab(self, tab: Tab) -> None:
        ids = tab.ids()
        assert len(ids) == len(set(ids)), f"a row reached the tab twice: {ids}"
        assert set(ids) <= tab.owed | tab.allowed, f"rows the tab may not see: {set(ids) - tab.owed - tab.allowed}"
        if tab.conn is not None:
            live = tab.conn.notification_ids()
            assert live == sorted(live), f"out of order: {live}"
        self._check_reads(tab)

    def _read_events(self, user: int) -> list[tuple[int, str]]:
        """The user's read events so far, (id, data) in order (kept here: the app prunes them)."""
        last = self.read_log[-1][0] if self.read_log else 0
        events = ReadEvent.objects.filter(id__gt=last).exclude(payload__startswith=CHECK_PAYLOAD_PREFIX)  # (the hubs')
        self.read_log += list(events.order_by("id").values_list("id", "user_id", "payload"))
        return [(rid, data) for rid, uid, data in self.read_log if uid == user]

    def _check_reads(self, tab: Tab, complete: bool = False) -> None:
        """
        The tab's ``read`` events, over all its connections, are the user's
        read events since it opened, each once and in order (a prefix of them,
        unless ``complete``). A tab that connected "from now on" may also get
        some from just before.
        """
        got = tab.reads()
        events = self._read_events(tab.user)
        starts = [i for i, (rid, _) in enumerate(events) if rid > tab.reads_from][:1] or [len(events)]
        firsts = range(starts[0] + 1) if not tab.page else [starts[0]]
        for first in firsts:
            owed = [data for _, data in events[first:]]
            if (got == owed) if complete else (got == owed[: len(got)]):
                return
        raise AssertionError(
            f"read events of user {tab.user}: the tab got {got}, the app wrote {events} (owed from id > {tab.reads_from})"
        )

    def _end_connection(self, tab: Tab) -> None:
        """The tab's connection is over (closed by us or by the server): keep what it got."""
        assert tab.conn is not None
        conn = tab.conn
        conn.close()
        self._check_tab(tab)
        tab.received += conn.notification_ids()
        tab.received_reads += [e.data for e in conn.of("read")]
        tab.cursor = conn.last_id or tab.cursor
        tab.conn = None
        tab.closed_serial = self.model.serial

    def _ended_by_server(self, tab: Tab, since: float) -> None:
        assert tab.conn is not None
        tab.conn.wait_for(lambda s: s.ended, timeout=HEARTBEAT + WAIT)
        self._end_connection(tab)

    def _after_rights_changed(self, i: int) -> None:
        """Losing or gaining staff or a group ends the user's streams within a heartbeat."""
        since = time.monotonic()
        for tab in self.tabs:
            if tab.user == self.users[i].pk and tab.conn is not None:
                self._ended_by_server(tab, since)

    # -- publishing --------------------------------------------------------------

    @rule(
        who=st.sampled_from(["user", "group", "queryset", "list"]),
        i=st.integers(0, 2),
        j=st.integers(0, 2),
        g=st.integers(0, 1),
        kind=st.sampled_from(KIND_NAMES),
        post=st.integers(0, 1),
        key=st.sampled_from([None, None, "k0", "k1"]),
    )
    def notify(self, who: str, i: int, j: int, g: int, kind: str | None, post: int, key: str | None = None) -> None:
        """``post``: the target a comment is about (comments group by target); ``key``: idempotency."""
        verb = self._verb()
        if who == "user":
            recipient: Any = self.users[i]
            ids = [self.users[i].pk]
        elif who == "group":
            recipient = self.groups[g]
            ids = [u for u, mu in self.model.users.items() if self.groups[g].pk in mu.groups]
        elif who == "queryset":
            chosen = {self.users[i].pk, self.users[j].pk}
            recipient = User.objects.filter(pk__in=chosen)
            ids = sorted(chosen)
        else:
            recipient = [self.users[i], self.users[j]]
            ids = [self.users[i].pk, self.users[j].pk]
        receiving, held = self.model.keyed(ids, kind, key)
        target_obj = self.users[post] if kind == "comment" else None
        if not ids:
            with pytest.raises(ValueError):
                api.notify(recipient, verb, kind=kind, target=target_obj, key=key)
            return
        returned = api.notify(recipient, verb, kind=kind, target=target_obj, key=key)
        rows = [r for r in returned if r.pk not in self.model.rows]
        assert sorted(r.pk for r in returned if r.pk in self.model.rows) == held, "the rows the key already got"
        assert sorted(r.recipient_id for r in rows) == receiving
        self.model.notify(
            {r.recipient_id: r.pk for r in rows}, verb, kind,
            target_obj.pk if target_obj is not None else None, rows[0].created if rows else self._now(),
            key=key, named=ids,
        )
        self._check_groups([r.pk for r in rows])
        self._sync_streams([r.pk for r in rows])

    def _check_groups(self, ids: list[int]) -> None:
        """The rows joined the groups the model says (group ids compared through their rows)."""
        for n in Notification.objects.filter(pk__in=ids):
            row = self.model.rows[n.pk]
            if row.group is None:
                assert not n.group_key, n.pk
                continue
            first = Notification.objects.filter(recipient_id=n.recipient_id, group=n.group).order_by("id").first()
            assert first is not None and first.pk == row.group, (n.pk, "joined the wrong group")

    @rule(
        audience=st.sampled_from(["all", "staff", "group"]),
        g=st.integers(0, 1),
        expiry=st.sampled_from([None, "past", "soon", "far"]),
    )
    def broadcast(self, audience: str, g: int, expiry: str | None) -> None:
        now = self._now()
        expires_at = {
            None: None,
            "past": real_now() - timedelta(days=1),  # expired on both clocks
            "soon": now + timedelta(minutes=5),  # the test's clock may pass it; the server's does not
            "far": now + timedelta(days=30),
        }[expiry]
        verb = self._verb()
        target: Any = self.groups[g] if audience == "group" else audience
        row = api.broadcast(verb, audience=target, expires_at=expires_at)
        self.model.broadcast(
            row.pk, verb, audience, self.groups[g].pk if audience == "group" else None, expires_at, row.created
        )
        self._sync_streams([row.pk])

    # -- reading ---------------------------------------------------------------------

    @rule(
        i=st.integers(0, 2),
        pick=st.integers(0, 10**6),
        action=st.sampled_from(["read", "unread", "delete"]),
        path=st.sampled_from(PATHS),
    )
    def change(self, i: int, pick: int, action: str, path: str) -> None:
        user = self.users[i]
        """
        ``pick`` chooses among what the user sees and the older members of
        their groups (every path reads a group alike, up to the row named).
        """
        personal_only = path in ("hq_instance", "hq_queryset", "push_link")
        candidates = self._personal_changeable(i) if personal_only else self._changeable(i)
        if path == "hq_instance" and action == "delete":
            path = "hq_queryset"  # hq's instance API has no soft delete
        if path == "push_link" and action != "read":
            path = "api"
            candidates = self._changeable(i)
        if not candidates:
            return
        nid = candidates[pick % len(candidates)]
        if path == "api":
            {"read": api.mark_read, "unread": api.mark_unread, "delete": api.delete}[action](user, [nid])
        elif path == "http":
            client = Client()
            client.force_login(user)
            response = client.post(f"/notifications/api/{nid}/{action}/")
            assert response.status_code == 200, response.content
        elif path == "hq_instance":
            n = Notification.objects.get(pk=nid)
            n.mark_as_read() if action == "read" else n.mark_as_unread()
        elif path == "hq_queryset":
            rows = Notification.objects.filter(pk=nid)
            {
                "read": rows.mark_all_as_read,
                "unread": rows.mark_all_as_unread,
                "delete": rows.mark_all_as_deleted,
            }[action](recipient=user)
        else:
            token = push.read_token(Notification.objects.get(pk=nid))
            response = Client().post(f"/notifications/api/push/read/{token}/")
            assert response.status_code == 200, response.content
        self.model.change(user.pk, [nid], self._now(), action=action)

    @rule(i=st.integers(0, 2), over_http=st.booleans())
    def read_all(self, i: int, over_http: bool) -> None:
        user = self.users[i]
        if over_http:
            client = Client()
            client.force_login(user)
            assert client.post("/notifications/api/read-all/").status_code == 200
        else:
            api.mark_all_read(user)
        self.model.read_all(user.pk, self._now())

    # -- preferences -----------------------------------------------------------------------

    @rule(
        i=st.integers(0, 2),
        kind=st.sampled_from([None, "mention", "comment"]),
        channel=st.sampled_from(["in_app", "email", "push"]),
        enabled=st.sampled_from([True, False, None]),
        with_in_app=st.booleans(),
    )
    def prefer(self, i: int, kind: str | None, channel: str, enabled: bool | None, with_in_app: bool = False) -> None:
        """
        One change; ``with_in_app``: the kind's in-app channel turned on in the
        same call first. Email or push turned on for a kind off in the app is
        refused (ValueError), and nothing is stored.
        """
        user = self.users[i]
        changes: list[tuple[str | None, str, bool | None]] = [(kind, channel, enabled)]
        if with_in_app and channel != "in_app":
            changes.insert(0, (kind, "in_app", True))
        try:
            self.model.set_preferences(user.pk, changes)
        except ValueError:
            with pytest.raises(ValueError, match="off in the app"):
                set_preferences(user, [{"kind": k, "channel": c, "enabled": e} for k, c, e in changes])
            return
        set_preferences(user, [{"kind": k, "channel": c, "enabled": e} for k, c, e in changes])

    @precondition(lambda self: len(mail.outbox) > 0)
    @rule(pick=st.integers(0, 10**6))
    def unsubscribe_from_an_email(self, pick: int) -> None:
        """The one-click unsubscribe link of a sent email (RFC 8058), as a mail client posts it."""
        message = mail.outbox[pick % len(mail.outbox)]
        header = message.extra_headers.get("List-Unsubscribe")
        if not header:
            return  # critical kinds have none
        path = httpx.URL(header.strip("<>")).path
        response = Client().post(path, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        user = User.objects.get(email=message.to[0])
        kind = self._kind_of(message)
        self.model.set_preference(user.pk, kind, "email", False)

    @precondition(lambda self: self.pushes_seen > self.pushes_before)
    @rule(pick=st.integers(0, 10**6))
    def click_a_push(self, pick: int) -> None:
        """The service worker posts a shown push's read link (no session)."""
        mine = self.push_service.received[self.pushes_before : self.pushes_seen]
        received = mine[pick % len(mine)]
        response = Client().post(received.payload["read_url"])
        assert response.status_code == 200, response.content
        user = next(self.users[i].pk for i in (0, 1) if received.path == f"/push/{self.tag}-{i}")
        self.model.change(user, [received.payload["id"]], self._now(), action="read")

    def _kind_of(self, message: Any) -> str | None:
        serial = self._serial_of(message.subject + message.body)
        return next(r.kind for r in self.model.rows.values() if r.serial == serial)

    def _serial_of(self, text: str) -> int:
        """The model's serial of the row whose verb ``text`` quotes."""
        found = re.search(rf"v(\d+)x{self.tag}", text)
        assert found, text
        return int(found.group(1))

    @rule(
        i=st.integers(0, 2),
        on=st.booleans(),
        start=st.sampled_from([-30, 5, 600]),
        length=st.sampled_from([20, 90, 23 * 60]),
    )
    def quiet_hours(self, i: int, on: bool, start: int, length: int) -> None:
        """Quiet hours (Tokyo time) from ``start`` minutes from now, ``length`` minutes long, or none."""
        user = self.users[i]
        if not on:
            set_quiet_hours(user, None)
            self.model.users[user.pk].quiet = None
            return
        local = self._now().astimezone(ZoneInfo("Asia/Tokyo")).replace(second=0, microsecond=0)
        begin = (local + timedelta(minutes=start)).time().replace(tzinfo=None)
        end = (local + timedelta(minutes=start + length)).time().replace(tzinfo=None)
        set_quiet_hours(user, begin, end, "Asia/Tokyo")
        self.model.users[user.pk].quiet = (begin, end, "Asia/Tokyo")

    # -- rights --------------------------------------------------------------------------------

    @rule(i=st.integers(0, 2))
    def toggle_staff(self, i: int) -> None:
        self._set_staff(i, not self.model.users[self.users[i].pk].staff)
        self._after_rights_changed(i)

    @rule(i=st.integers(0, 2), g=st.integers(0, 1))
    def toggle_group(self, i: int, g: int) -> None:
        self._join(i, g, self.groups[g].pk not in self.model.users[self.users[i].pk].groups)
        self._after_rights_changed(i)

    # -- time and the worker -------------------------------------------------------------------

    @rule(minutes=st.sampled_from([1, 3, 11]), workers=st.sampled_from([0, 1, 2]))
    def advance(self, minutes: int, workers: int) -> None:
        """Time passes; then (as a scheduler would) ``workers`` drain what is due."""
        self.clock.offset += timedelta(minutes=minutes)
        if workers:
            self.drain(workers)

    @rule(workers=st.sampled_from([1, 2]))
    def drain(self, workers: int) -> None:
        if workers == 1:
            worker.drain()
        else:
            errors: list[BaseException] = []

            def run() -> None:
                try:
                    worker.drain()
                except BaseException as exc:  # reported below
                    errors.append(exc)
                finally:
                    connections.close_all()

            threads = [threading.Thread(target=run) for _ in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert not errors, errors
        expected = self.model.drain(self._now())
        got = self._new_messages()
        assert sorted(got) == sorted((u, spoken, c) for u, _, c, spoken in expected), (
            f"sent {sorted(got)}, the model expected {sorted(expected)} (user, row, channel, row spoken of)"
        )
        self.sent += len(got)
        self._check_deliveries()

    def _check_deliveries(self) -> None:
        """
        The sent ``Delivery`` rows, per user, group (or lone row) and channel,
        are as many as the model's: which member of a group took its turn may
        differ between two workers, how many went out may not.
        """
        def slot(user: int, nid: int, channel: str) -> tuple[int, int, str]:
            row = self.model.rows[nid]
            return (user, row.group if row.group is not None else nid, channel)

        got = Counter(
            slot(u, n, c)
            for u, n, c in Delivery.objects.filter(state="sent").values_list("recipient_id", "notification_id", "channel")
        )
        expected = Counter(slot(a.user, a.key, a.channel) for a in self.model.away.values() if a.state == "sent")
        assert got == expected, f"sent deliveries {dict(got)}, the model's {dict(expected)}"

    def _new_messages(self) -> list[tuple[int, int, str]]:
        """
        The (user, row spoken of, channel) of the emails and pushes sent since
        the last look: a group's names its newest live member.
        """
        got = []
        by_email = {u.email: u.pk for u in self.users}
        for message in mail.outbox[self.outbox_seen :]:
            (to,) = message.to
            user = by_email[to]
            got.append((user, self._row_of(user, message.subject + message.body), "email"))
        self.outbox_seen = len(mail.outbox)
        by_device = {f"/push/{self.tag}-{i}": self.users[i].pk for i in (0, 1)}
        for received in self.push_service.received[self.pushes_seen :]:
            user = by_device[received.path]
            nid = self._row_of(user, received.payload["body"])
            assert received.payload["id"] == nid, received.payload
            got.append((user, nid, "push"))
        self.pushes_seen = len(self.push_service.received)
        assert self.push_service.errors == []
        return got

    def _row_of(self, user: int, text: str) -> int:
        """The id of ``user``'s row whose verb ``text`` quotes."""
        serial = self._serial_of(text)
        return next(r.id for r in self.model.rows.values() if r.serial == serial and r.recipient == user)

    # -- streams -------------------------------------------------------------------------------

    @precondition(lambda self: len(self.tabs) < 4)
    @rule(i=st.integers(0, 2), page=st.booleans())
    def open_tab(self, i: int, page: bool) -> None:
        """
        A tab loads the page (the list and its cursor) and connects from that
        cursor; or (``page`` False) connects without one, "from now on": the
        server's now may lag what just committed, so rows written before may
        come too (once).
        """
        user = self.users[i]
        events = self._read_events(user.pk)
        tab = Tab(
            user.pk, session_cookies(user), closed_serial=self.model.serial,
            reads_from=events[-1][0] if events else 0, page=page,
        )
        if page:
            listed = httpx.get(self.server.url + "/notifications/api/", cookies=tab.cookies, timeout=WAIT)
            assert listed.status_code == 200, listed.text
            params = {"last_event_id": listed.json()["cursor"]}
            tab.conn = Stream(self.server.url, cookies=tab.cookies, params=params).connected(timeout=WAIT)
        else:
            tab.allowed = set(self.model.visible(user.pk, real_now()))
            tab.conn = Stream(self.server.url, cookies=tab.cookies).connected(timeout=WAIT)
        self.tabs.append(tab)

    @precondition(lambda self: any(t.conn is not None for t in self.tabs))
    @rule(pick=st.integers(0, 10**6))
    def close_connection(self, pick: int) -> None:
        open_tabs = [t for t in self.tabs if t.conn is not None]
        self._end_connection(open_tabs[pick % len(open_tabs)])

    @precondition(lambda self: any(t.conn is None for t in self.tabs))
    @rule(pick=st.integers(0, 10**6))
    def reconnect(self, pick: int) -> None:
        closed = [t for t in self.tabs if t.conn is None]
        tab = closed[pick % len(closed)]
        conn = Stream(self.server.url, cookies=tab.cookies, last_event_id=tab.cursor)
        if not tab.session_ok:
            conn.wait_for(lambda s: s.ended, timeout=WAIT)
            assert conn.status == 403, conn.status
            return
        tab.conn = conn.connected(timeout=WAIT)
        if conn.of("reset"):
            self._reset(tab)
            return
        now = real_now()
        missed = {
            nid for nid in self.model.visible(tab.user, now)
            if self.model.rows[nid].serial > tab.closed_serial
        }
        tab.owed |= missed
        conn.wait_for(lambda s: s.ended or missed <= set(s.notification_ids()), timeout=WAIT)
        assert missed <= set(conn.notification_ids()), f"replay missed {missed - set(conn.notification_ids())}"
        self._check_shown(conn, missed, self.model.visible(tab.user, now))
        self._check_tab(tab)

    def _reset(self, tab: Tab) -> None:
        """
        A replay that missed both notifications and read changes is a ``reset``
        (README, The stream: each read event carries the badge of its moment,
        which the missed rows would skew); the client reloads its list and the
        stream goes on from the present, as a tab opened from the page.
        """
        missed_rows = [r.id for r in self.model.rows.values() if r.serial > tab.closed_serial and self.model.in_audience(tab.user, r)]
        events = self._read_events(tab.user)
        missed_reads = len([rid for rid, _ in events if rid > tab.reads_from]) > len(tab.received_reads)
        assert missed_rows and missed_reads, (
            f"a reset where the replay was small: missed rows {missed_rows}, read events {events}, "
            f"the tab had {tab.received_reads}"
        )
        assert tab.conn is not None and not tab.conn.notification_ids() and not tab.conn.of("read"), "frames before a reset"
        self.resets += 1
        tab.received, tab.received_reads = [], []
        tab.owed, tab.allowed = set(), set()
        tab.reads_from = events[-1][0] if events else 0
        tab.page = True
        tab.closed_serial = self.model.serial

    # -- signing out -----------------------------------------------------------------------------

    @precondition(lambda self: any(t.session_ok for t in self.tabs))
    @rule(pick=st.integers(0, 10**6))
    def logout(self, pick: int) -> None:
        """Log a tab's session out on the site; a row sent right after never reaches its stream."""
        tabs = [t for t in self.tabs if t.session_ok]
        tab = tabs[pick % len(tabs)]
        response = httpx.post(
            self.server.url + "/logout/",
            cookies=tab.cookies,
            headers={"X-CSRFToken": CSRF, "Referer": self.server.url + "/"},
            timeout=WAIT,
        )
        assert response.status_code in (200, 302), response.status_code
        tab.session_ok = False
        self._signed_out(tab.user, [tab])

    @rule(i=st.integers(0, 2))
    def change_password(self, i: int) -> None:
        """
        A password change in another process than the server's (this one)
        ends every login of the user; a row sent right after never reaches
        their streams (the check kept in the database).
        """
        user = self.users[i]
        user.set_password(uuid.uuid4().hex)
        user.save()
        tabs = [t for t in self.tabs if t.user == user.pk and t.session_ok]
        for tab in tabs:
            tab.session_ok = False
        self._signed_out(user.pk, tabs)

    def _signed_out(self, user_id: int, tabs: list[Tab]) -> None:
        """The tabs' streams end, and a row written right after never reaches them."""
        connected = [t for t in tabs if t.conn is not None]
        if connected:
            user = next(u for u in self.users if u.pk == user_id)
            verb = self._verb()
            rows = api.notify(user, verb)
            self.model.notify({user.pk: rows[0].pk}, verb, None, None, self._now())
            after = rows[0].pk
            for tab in connected:
                assert tab.conn is not None
                tab.conn.wait_for(lambda s: s.ended, timeout=HEARTBEAT + WAIT)
                assert after not in tab.conn.notification_ids(), "a row reached a signed-out stream"
                self._end_connection(tab)
            self._sync_streams([after])
        for tab in connected:
            if tab.conn is not None:
                self._ended_by_server(tab, time.monotonic())

    # -- invariants ----------------------------------------------------------------------------

    def check_all(self) -> None:
        """Every invariant, for explicit step lists (``run_steps``)."""
        self.unread_counts_and_lists_match()
        self.emails_and_pushes_go_out_only_when_the_worker_runs()

    @invariant()
    def unread_counts_and_lists_match(self) -> None:
        now = self._now()
        for user in self.users:
            expected = self.model.visible(user.pk, now)
            got = dict(api.visible(user).values_list("id", "is_unread"))
            assert got == expected, f"user {user.pk}: app {got}, model {expected}"
            assert api.unread_count(user) == sum(expected.values())
        # And over HTTP for one user per step (cheaper than all three).
        user = self.users[self.model.serial % len(self.users)]
        client = Client()
        client.force_login(user)
        body = client.get("/notifications/api/unread-count/").json()
        assert body["unread_count"] == self.model.unread_count(user.pk, now)
        listed = client.get("/notifications/api/", {"page_size": 100}).json()["results"]
        expected = self.model.visible(user.pk, now)
        assert [n["id"] for n in listed] == sorted(expected, reverse=True)[:100], "the list, newest first"
        for n in listed:
            assert (n["unread"], n["count"]) == (expected[n["id"]], self.model.count(self.model.rows[n["id"]])), n

    @invariant()
    def emails_and_pushes_go_out_only_when_the_worker_runs(self) -> None:
        assert len(mail.outbox) == self.outbox_seen
        assert len(self.push_service.received) == self.pushes_seen
        assert Delivery.objects.filter(state="sent").count() == self.sent

    def teardown(self) -> None:
        try:
            # A last row to every connected tab: everything before it has arrived too.
            for tab in self.tabs:
                if tab.conn is not None and not tab.conn.ended:
                    user = next(u for u in self.users if u.pk == tab.user)
                    rows = api.notify(user, self._verb())
                    self.model.notify({user.pk: rows[0].pk}, rows[0].verb, None, None, self._now())
                    self._sync_streams([rows[0].pk])
                    self._check_reads(tab, complete=True)
        finally:
            for tab in self.tabs:
                if tab.conn is not None:
                    tab.conn.close()
            _clear()


def _live(row: Any, now: datetime) -> bool:
    return not row.deleted and (row.expires_at is None or row.expires_at > now)


def _clear() -> None:
    """What one example wrote, gone before the next (the server shares the database)."""
    Notification.objects.all().delete()
    ReadEvent.objects.all().delete()
    BroadcastReceipt.objects.all().delete()
    Delivery.objects.all().delete()
    PushSubscription.objects.all().delete()
    QuietHours.objects.all().delete()
    User.objects.all().delete()
    Group.objects.all().delete()
    mail.outbox.clear()


def budget() -> settings:
    """
    A small fixed budget for ``./dev test`` and CI; the loaded profile's when
    one is chosen (HYPOTHESIS_PROFILE=thorough, see tests/conftest.py).
    """
    quiet = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
    if os.environ.get("HYPOTHESIS_PROFILE"):
        return settings(settings.default, deadline=None, suppress_health_check=quiet)
    return settings(
        max_examples=10, stateful_step_count=20, deadline=None, database=None, suppress_health_check=quiet
    )


@pytest.fixture
def product(make_server: Any, monkeypatch: Any, settings: Any, service: Any, vapid: str) -> Any:
    """
    The machine's world: a server with a short heartbeat and poll, the test
    process's clock under the machine's control, VAPID keys and a local push
    service (conftest's, allowed by NOTIFICATIONS_PUSH_SERVICES). Yields the
    machine class, ready to run.
    """
    settings.DJANGO_NOTIFICATIONS_CONFIG = {"SOFT_DELETE": True}  # hq's mark_all_as_deleted()
    clock = Clock()
    monkeypatch.setattr(timezone, "now", clock)
    ProductMachine.server = make_server(
        NOTIFICATIONS_HEARTBEAT=str(HEARTBEAT), NOTIFICATIONS_POLL_INTERVAL="0.1"
    )
    ProductMachine.clock = clock
    ProductMachine.push_service = service
    _clear()
    return ProductMachine


def run_steps(machine_class: type[ProductMachine], steps: list[tuple[str, dict[str, Any]]]) -> ProductMachine:
    """Run ``steps`` (rule name, arguments) on a fresh machine, checking the invariants after each; returns it."""
    machine = machine_class()
    try:
        machine.check_all()
        for name, kwargs in steps:
            getattr(machine, name)(**kwargs)
            machine.check_all()
    finally:
        machine.teardown()
    return machine


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_the_product_behaves_as_its_model(product: Any) -> None:
    run_state_machine_as_test(product, settings=budget())


# -- defects the machine found, kept as explicit steps ------------------------------------

# A user gets two comments on the same post: one item (a group of two) in their list.
GROUP_OF_TWO = [
    ("notify", {"who": "user", "i": 2, "j": 0, "g": 0, "kind": "comment", "post": 0}),
    ("notify", {"who": "user", "i": 2, "j": 0, "g": 0, "kind": "comment", "post": 0}),
]


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_deleting_a_group_through_hqs_queryset_method_removes_the_whole_item(product: Any) -> None:
    """hq's mark_all_as_deleted() on a group's item takes the older member along, as the API does."""
    run_steps(product, [*GROUP_OF_TWO, ("change", {"i": 2, "pick": 1, "action": "delete", "path": "hq_queryset"})])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["hq_instance", "hq_queryset"])
def test_reading_a_group_through_hq_stops_its_email(product: Any, path: str) -> None:
    """hq's mark_as_read() / mark_all_as_read() read the whole group and cancel its members' emails."""
    run_steps(product, [
        ("prefer", {"i": 2, "kind": "comment", "channel": "email", "enabled": True}),
        *GROUP_OF_TWO,
        ("change", {"i": 2, "pick": 1, "action": "read", "path": path}),
        ("advance", {"minutes": 1, "workers": 1}),
    ])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["read", "delete"])
def test_the_same_steps_through_the_api_keep_the_group_whole(product: Any, action: str) -> None:
    run_steps(product, [
        ("prefer", {"i": 2, "kind": "comment", "channel": "email", "enabled": True}),
        *GROUP_OF_TWO,
        ("change", {"i": 2, "pick": 1, "action": action, "path": "api"}),
        ("advance", {"minutes": 1, "workers": 1}),
    ])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_read_while_a_tab_was_away_reaches_it_once_on_reconnect(product: Any) -> None:
    """The read event written while the tab's connection was closed is replayed from its cursor, once."""
    run_steps(product, [
        ("open_tab", {"i": 0, "page": True}),
        ("notify", {"who": "user", "i": 0, "j": 0, "g": 0, "kind": None, "post": 0}),
        ("change", {"i": 0, "pick": 0, "action": "read", "path": "api"}),
        ("close_connection", {"pick": 0}),
        ("change", {"i": 0, "pick": 0, "action": "unread", "path": "http"}),
        ("reconnect", {"pick": 0}),
    ])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("with_in_app", [False, True])
def test_email_of_a_kind_off_in_the_app_is_refused_unless_in_app_comes_on_with_it(
    product: Any, with_in_app: bool
) -> None:
    """The whole in-app channel off: a mention's email is refused alone, accepted with in-app on."""
    run_steps(product, [
        ("prefer", {"i": 0, "kind": None, "channel": "in_app", "enabled": False}),
        ("prefer", {"i": 0, "kind": "mention", "channel": "email", "enabled": True, "with_in_app": with_in_app}),
        ("notify", {"who": "user", "i": 0, "j": 0, "g": 0, "kind": "mention", "post": 0}),
        ("advance", {"minutes": 3, "workers": 1}),
    ])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_an_email_scheduled_before_in_app_was_muted_is_skipped(product: Any) -> None:
    run_steps(product, [
        ("notify", {"who": "user", "i": 0, "j": 0, "g": 0, "kind": "mention", "post": 0}),
        ("prefer", {"i": 0, "kind": "mention", "channel": "in_app", "enabled": False}),
        ("advance", {"minutes": 3, "workers": 1}),
    ])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_groups_member_after_its_window_gets_its_own_email_naming_the_group(product: Any) -> None:
    """
    Two comments on one post: one email (by two workers) naming both; a third
    within the window of that email: skipped; a fourth in the same group, due
    after the window: an email of its own, naming the four.
    """
    comment = ("notify", {"who": "user", "i": 0, "j": 0, "g": 0, "kind": "comment", "post": 0})
    run_steps(product, [
        ("prefer", {"i": 0, "kind": "comment", "channel": "email", "enabled": True}),
        comment,
        comment,
        ("advance", {"minutes": 3, "workers": 2}),
        comment,
        ("advance", {"minutes": 3, "workers": 1}),
        ("advance", {"minutes": 3, "workers": 0}),
        comment,
        ("advance", {"minutes": 3, "workers": 0}),
        ("advance", {"minutes": 3, "workers": 1}),
    ])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_tab_that_missed_a_notification_and_a_read_change_is_reset_and_goes_on(product: Any) -> None:
    """The reconnect gets ``reset`` (the client reloads its list); the next row reaches it once."""
    note = ("notify", {"who": "user", "i": 1, "j": 1, "g": 0, "kind": None, "post": 0})
    machine = run_steps(product, [
        ("open_tab", {"i": 1, "page": True}),
        ("close_connection", {"pick": 0}),
        note,
        ("change", {"i": 1, "pick": 0, "action": "read", "path": "api"}),
        ("reconnect", {"pick": 0}),
        note,
    ])
    assert machine.resets == 1


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_retried_notify_with_the_same_key_writes_nothing_new(product: Any) -> None:
    keyed = ("notify", {"who": "list", "i": 0, "j": 1, "g": 0, "kind": "mention", "post": 0, "key": "k0"})
    run_steps(product, [keyed, keyed, ("advance", {"minutes": 3, "workers": 1}), keyed])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_key_sent_while_muted_in_the_app_does_not_hold_the_recipient_off(product: Any) -> None:
    """
    Muted in the app, a keyed mention writes nothing; unmuted, the retry with
    the key writes the row (found by the machine: the key used to be taken
    for the muted recipient too).
    """
    run_steps(product, [
        ("prefer", {"i": 0, "kind": "mention", "channel": "in_app", "enabled": False}),
        ("notify", {"who": "user", "i": 0, "j": 0, "g": 0, "kind": "mention", "post": 0, "key": "k0"}),
        ("prefer", {"i": 0, "kind": "mention", "channel": "in_app", "enabled": None}),
        ("notify", {"who": "user", "i": 0, "j": 0, "g": 0, "kind": "mention", "post": 0, "key": "k0"}),
    ])
