"""
Exactly once without trusting clocks: a transaction left open, backdated
timestamps and rollbacks never cost a notification, never repeat one, never
force a reset, and never make a cursor grow.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from notifications import api

from .conftest import rolled_back

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

HOLD = 60.0  # seconds the long transaction stays open


def ids_of(stream) -> list[int]:
    return stream.notification_ids()


def test_rollbacks_and_backdated_timestamps_keep_cursors_short_and_lose_nothing(
    server, make_user, browser
):
    user = make_user()
    tab = browser(user).stream().connected()
    sent = []
    for i in range(30):
        if i % 3 == 0:
            with rolled_back():
                api.notify(user, f"rolled back {i}")
        stamp = timezone.now() - timedelta(hours=1) if i % 2 else None
        sent.append(api.notify(user, f"kept {i}", timestamp=stamp)[0].pk)
    tab.wait_for(lambda s: len(ids_of(s)) >= len(sent), timeout=10)
    time.sleep(0.3)
    assert ids_of(tab) == sent
    cursor = tab.last_id
    assert cursor is not None and len(cursor) < 64, cursor
    resumed = browser(user).stream(last_event_id=cursor).connected()
    later = api.notify(user, "after the reconnect")[0].pk
    resumed.wait_for(lambda s: later in ids_of(s))
    assert ids_of(resumed) == [later] and not resumed.of("reset")


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has one writer: no transaction stays open beside others",
)
def test_a_transaction_open_60s_delays_nothing_and_its_row_comes_once_live_and_on_replay(
    make_server, make_user, browser
):
    first = make_server("uvicorn")
    user = make_user()
    live = browser(user, on=first).stream().connected()

    opened, release, held = threading.Event(), threading.Event(), []

    def hold_open() -> None:
        try:
            with transaction.atomic():
                held.append(api.notify(user, "held open")[0].pk)
                opened.set()
                release.wait(HOLD + 30)
        finally:
            connections.close_all()  # this thread's connection

    holder = threading.Thread(target=hold_open)
    holder.start()
    assert opened.wait(10)
    began = time.monotonic()

    # Others commit meanwhile, one backdated an hour: each arrives at once.
    others = []
    for i in range(3):
        stamp = timezone.now() - timedelta(hours=1) if i == 1 else None
        nid = api.notify(user, f"meanwhile {i}", timestamp=stamp)[0].pk
        t0 = time.monotonic()
        live.wait_for(lambda s, nid=nid: nid in ids_of(s), timeout=5)
        assert time.monotonic() - t0 < 3
        others.append(nid)
    assert held[0] < min(others)  # the held row's id was handed out first
    cursor = live.last_id
    assert cursor is not None and len(cursor) < 64, cursor

    # A server process started meanwhile; a client resumes there from that cursor.
    second = make_server("daphne")
    resumed = browser(user, on=second).stream(last_event_id=cursor).connected()
    time.sleep(max(0.0, HOLD - (time.monotonic() - began)))
    release.set()
    holder.join(30)

    live.wait_for(lambda s: held[0] in ids_of(s), timeout=10)
    resumed.wait_for(lambda s: held[0] in ids_of(s), timeout=10)
    # A reconnect from the cursor taken while the transaction was open gets it too.
    again = browser(user, on=second).stream(last_event_id=cursor).connected()
    again.wait_for(lambda s: held[0] in ids_of(s), timeout=10)
    time.sleep(0.5)  # a duplicate would arrive now
    assert sorted(ids_of(live)) == sorted([*others, held[0]]) and len(ids_of(live)) == 4
    assert ids_of(resumed) == [held[0]]
    assert ids_of(again) == [held[0]]
    assert not (live.of("reset") or resumed.of("reset") or again.of("reset"))
    assert all(len(e.id) < 64 for s in (live, resumed, again) for e in s.events if e.id)
