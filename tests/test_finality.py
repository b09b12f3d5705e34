"""
Finality and cursors (``notifications.finality``), checked against a model of
transaction histories: transactions start in xid order and finish in any order;
a snapshot taken at a moment lists what was running then.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.finality import (
    MAX_IN_PROGRESS,
    Cursor,
    InvalidCursor,
    Sequence,
    Snapshot,
    later,
    parse_position,
)

FIRST = 3  # PostgreSQL's first normal transaction id


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Snapshot], list[set[int]]]:
    """
    A history of transactions and the snapshots taken along it, with, for each
    snapshot, the set of transactions that had finished when it was taken.
    """
    steps = draw(st.lists(st.sampled_from(["start", "finish", "snap"]), min_size=1, max_size=60))
    next_xid = FIRST
    running: list[int] = []
    finished: set[int] = set()
    snapshots, finished_at = [], []
    for step in steps:
        if step == "start":
            running.append(next_xid)
            next_xid += 1
        elif step == "finish" and running:
            finished.add(running.pop(draw(st.integers(0, len(running) - 1))))
        else:
            xip = tuple(sorted(running))
            snapshots.append(Snapshot(xip[0] if xip else next_xid, next_xid, xip))
            finished_at.append(set(finished))
    return snapshots, finished_at


@given(histories())
def test_a_transaction_is_visible_exactly_when_it_had_finished(history):
    snapshots, finished_at = history
    for snapshot, finished in zip(snapshots, finished_at, strict=True):
        for xid in range(1, snapshot.xmax + 3):
            expected = xid < FIRST or xid in finished
            assert snapshot.visible(xid) == expected, (snapshot, xid)


@given(histories())
def test_later_snapshots_cover_earlier_ones_and_not_the_other_way(history):
    snapshots, finished_at = history
    for i, a in enumerate(snapshots):
        for j, b in enumerate(snapshots):
            same = finished_at[i] == finished_at[j]
            if i <= j:
                assert b.covers(a)
                assert a.covers(b) == same
                assert later(a, b).covers(b) and later(b, a).covers(b)


@given(histories())
def test_snapshots_round_trip_through_text(history):
    for snapshot in history[0]:
        assert parse_position(str(snapshot)) == snapshot


@given(histories(), st.data())
def test_a_cursor_in_a_window_has_exactly_the_rows_up_to_its_id(history, data):
    """Rows are (id, xact); a cursor names what a stream sent, batch by batch, in id order."""
    snapshots, _ = history
    if len(snapshots) < 2:
        return
    done, window = snapshots[0], snapshots[-1]
    xids = list(range(FIRST, window.xmax))
    ids = data.draw(st.lists(st.integers(1, 200), unique=True, max_size=12))
    rows = sorted((nid, data.draw(st.sampled_from(xids))) for nid in ids) if xids else []
    batch = [(nid, x) for nid, x in rows if window.visible(x) and not done.visible(x)]
    cursor = Cursor(done)
    for nid, _ in batch:
        mid = cursor.within(window, nid)
        again = Cursor.parse(str(mid))
        for row in rows:
            expected = done.visible(row[1]) or (window.visible(row[1]) and row[0] <= nid)
            assert again.delivered(*row) == expected
    after = cursor.upto(window)
    assert str(after) == str(window)
    assert all(after.delivered(*row) == window.visible(row[1]) for row in rows)


def test_cursor_size_does_not_grow_with_deliveries_while_a_transaction_is_open():
    """One transaction (xid 10) stays open while 10,000 others commit notifications."""
    cursor = Cursor(Snapshot(10, 11, (10,)))
    for xid in range(11, 10_011):
        end = Snapshot(10, xid + 1, (10,))
        cursor = cursor.within(end, xid).upto(end)
    assert str(cursor) == "10:10011:10"
    assert not cursor.delivered(5, 10)  # the open transaction's row is still to come
    assert cursor.delivered(10_010, 10_010)


def test_sequence_positions_on_a_single_writer():
    cursor = Cursor(Sequence(10))
    assert cursor.delivered(10, 10) and not cursor.delivered(11, 11)
    mid = cursor.within(Sequence(20), 15)
    assert str(mid) == "15" and mid.delivered(15, 15) and not mid.delivered(16, 16)
    assert str(cursor.upto(Sequence(20))) == "20"
    assert Sequence(20).covers(Sequence(10)) and not Sequence(10).covers(Sequence(20))
    assert not Sequence(20).covers(Snapshot(5, 6))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "x",
        "-1",
        "1.1",
        "1e3",
        "١",
        "9" * 20,
        "10:5:",
        "0:5:",
        "5:10:4",
        "5:10:10",
        "5:10:7,6",
        "5:10:6,6",
        "5:10:,",
        "1:2:1/",
        "1/2/3",
        "5:10:6/5:9:/3",
        "5:10:/5:12:/x",
        "1:2:1:3",
        " 12",
        "12 ",
        "5:10:" + ",".join(map(str, range(5, 5 + MAX_IN_PROGRESS + 1))),
        "9223372036854775808",
        "1:9223372036854775808:",
    ],
)
def test_malformed_cursors_are_rejected(raw):
    with pytest.raises(InvalidCursor):
        Cursor.parse(raw)


def test_cursors_round_trip():
    for raw in ["0", "42", "5:10:", "5:10:5,7", "5:10:5,7/5:12:5/99"]:
        assert str(Cursor.parse(raw)) == raw
