"""
The stream's exactly-once invariant (``notifications.once``) against a model
of a database: transactions that begin, insert, commit or roll back in any
order, and positions taken between them. A client resumes from any position,
its stream subscribes at the hub's position, replays up to a later one and
then takes the hub's batches: it must get every committed row after its
cursor exactly once, and no frame's cursor may claim a row it did not send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.finality import Cursor, InvalidCursor, Position, Sequence, Snapshot
from notifications.once import Read, replayed, take, take_reads


@dataclass
class History:
    """
    Rows (id, key) as they were inserted, read events likewise, which keys
    committed, and positions taken in order: of notifications, and of read
    events (the same snapshots on PostgreSQL, another sequence on SQLite).
    """

    rows: list[tuple[int, int]] = field(default_factory=list)
    committed: set[int] = field(default_factory=set)  # keys
    positions: list[Position] = field(default_factory=list)
    reads: list[tuple[int, int]] = field(default_factory=list)
    read_positions: list[Position] = field(default_factory=list)
    read_committed: set[int] = field(default_factory=set)

    def reads_visible(self, position: Position) -> list[tuple[int, int]]:
        return [(rid, key) for rid, key in self.reads if key in self.read_committed and position.visible(key)]

    def visible(self, position: Position) -> list[tuple[int, int]]:
        return [(nid, key) for nid, key in self.rows if key in self.committed and position.visible(key)]

    def between(self, start: Position, end: Position) -> list[tuple[int, int, str]]:
        """What a read from ``start`` to ``end`` returns: in ``end``, not in ``start``, by id."""
        return [(nid, key, str(nid)) for nid, key in self.visible(end) if not start.visible(key)]


def postgresql(ops: list[tuple[int, int]]) -> History:
    """
    Interpret ``ops`` as transactions: 0 begin, 1 insert (a read event when
    ``pick`` is 6 or 7), 2 commit, 3 roll back, 4 snapshot.
    """
    h = History()
    next_xid, next_id, running = 3, 1, []
    h.positions.append(Snapshot(next_xid, next_xid))
    for op, pick in ops:
        if op == 0 or not running and op in (1, 2, 3):
            running.append(next_xid)
            next_xid += 1
        elif op == 1 and pick >= 6:
            h.reads.append((next_id, running[pick % len(running)]))
            next_id += 1
        elif op == 1:
            h.rows.append((next_id, running[pick % len(running)]))
            next_id += 1
        elif op in (2, 3):
            xid = running.pop(pick % len(running))
            if op == 2:
                h.committed.add(xid)
        else:
            h.positions.append(Snapshot(min(running, default=next_xid), next_xid, tuple(sorted(running))))
    h.positions.append(Snapshot(min(running, default=next_xid), next_xid, tuple(sorted(running))))
    h.read_positions, h.read_committed = h.positions, h.committed
    return h


def sqlite(ops: list[tuple[int, int]]) -> History:
    """
    One writer: each transaction inserts ``pick % 4`` rows and ``pick // 4``
    read events (their own sequence), and commits (op even) or rolls back.
    """
    h = History()
    next_id = next_read = 1
    h.positions.append(Sequence(0))
    h.read_positions.append(Sequence(0))
    for op, pick in ops:
        for _ in range(pick % 4):
            h.rows.append((next_id, next_id))
            if op % 2 == 0:
                h.committed.add(next_id)
            next_id += 1
        for _ in range(pick // 4):
            h.reads.append((next_read, next_read))
            if op % 2 == 0:
                h.read_committed.add(next_read)
            next_read += 1
        if op == 4 or pick % 3 == 0:
            h.positions.append(Sequence(next_id - 1))
            h.read_positions.append(Sequence(next_read - 1))
    h.positions.append(Sequence(next_id - 1))
    h.read_positions.append(Sequence(next_read - 1))
    return h


ops = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7)), max_size=40)
histories = st.one_of(ops.map(postgresql), ops.map(sqlite))


def claimed(h: History, cursor: Cursor) -> set[int]:
    return {nid for nid, key in h.rows if key in h.committed and cursor.delivered(nid, key)}


@settings(max_examples=400, deadline=None)
@given(histories, st.data())
def test_a_stream_sends_every_row_after_its_cursor_once_and_claims_only_what_it_sent(h, data):
    n = len(h.positions)
    client = data.draw(st.integers(0, n - 1), label="the client's cursor")
    cursor = Cursor(h.positions[client])
    if isinstance(cursor.done, Snapshot) and client < n - 1 and data.draw(st.booleans()):
        # Cut off in the middle of a batch: its window, and the last id it got there.
        client = data.draw(st.integers(client + 1, n - 1), label="the window")
        through = data.draw(st.integers(0, len(h.rows) + 1), label="through")
        cursor = Cursor(cursor.done, h.positions[client], through)
    start = data.draw(st.integers(0, n - 1), label="the hub's position when it subscribes")
    replay = data.draw(st.integers(max(client, start), n - 1), label="where the replay reads to")
    split = data.draw(st.integers(1, 3), label="rows per part of a batch")
    have = claimed(h, cursor)
    sent: list[int] = []
    held = [have]  # what the client's cursor (the last id it saw) claims

    def check(at: Cursor | None) -> None:
        """A frame's cursor claims only what the client has, and never less than before."""
        if at is not None:
            assert held[0] <= claimed(h, at) <= have | set(sent)
            held[0] = claimed(h, at)

    missed = [(nid, str(nid)) for nid, key in h.visible(h.positions[replay]) if not cursor.delivered(nid, key)]
    opening, frames, cursor = replayed(cursor, missed, h.positions[replay])
    check(opening)
    for _, data_, at in frames:
        sent.append(int(data_))
        check(at)
    assert claimed(h, cursor) == have | set(sent)
    # The hub's reads, each from its position to the next: the stream's batches.
    for a, b in zip(range(start, n - 1), range(start + 1, n), strict=True):
        rows = h.between(h.positions[a], h.positions[b])
        parts = [rows[i : i + split] for i in range(0, len(rows), split)] or [[]]
        for i, part in enumerate(parts):
            frames, cursor = take(cursor, part, h.positions[b], complete=i == len(parts) - 1)
            for _, data_, at in frames:
                sent.append(int(data_))
                check(at)
        assert claimed(h, cursor) == have | set(sent)
    assert len(sent) == len(set(sent)), sent
    assert not have & set(sent)
    assert have | set(sent) == {nid for nid, _ in h.visible(h.positions[-1])} | have


@given(histories, st.data())
def test_a_read_serves_a_subscription_only_from_its_start_and_for_its_user(h, data):
    n = len(h.positions)
    read_start, sub_start = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
    users = frozenset(data.draw(st.sets(st.integers(1, 5))))
    user = data.draw(st.integers(1, 5))
    read = Read(h.positions[read_start], h.positions[-1], users)
    # Served: no row of the user after the subscription's start is outside the read.
    owed = {nid for nid, key in h.visible(h.positions[-1]) if not h.positions[sub_start].visible(key)}
    taken = {nid for nid, _, _ in h.between(h.positions[read_start], h.positions[-1])}
    if read.serves(h.positions[sub_start], user):
        assert owed <= taken
    assert read.unserved({user}) == (frozenset() if user in users else {user})
    assert read.taking({user}).serves(h.positions[read_start], user)


def test_a_subscription_that_arrived_during_the_read_is_unserved_until_its_user_is_read():
    read = Read(Sequence(10), Sequence(14), frozenset({1}))
    assert read.unserved([1, 2]) == {2}
    assert not read.serves(Sequence(10), 2)
    assert read.taking([2]).unserved([1, 2]) == frozenset()


def test_a_read_that_starts_after_a_subscription_does_not_serve_it():
    assert not Read(Sequence(12), Sequence(14), frozenset({1})).serves(Sequence(10), 1)


def test_a_frame_below_the_clients_own_window_keeps_the_clients_cursor():
    # Transactions 3 and 5 wrote ids 1 and 3; 4 wrote id 2, which the client got.
    before, window, now = Snapshot(3, 3), Snapshot(3, 5, (3,)), Snapshot(6, 6)
    client = Cursor(before, window, 2)
    opening, frames, after = replayed(client, [(1, "1"), (3, "3")], now)
    assert opening == client
    assert frames == [("notification", "1", None), ("notification", "3", after)]


# -- read events -------------------------------------------------------------


def test_an_id_cursor_carries_the_read_events_it_has_after_a_plus():
    cursor = Cursor.parse("12+5")
    assert cursor.done == Sequence(12) and cursor.reads == Sequence(5) and str(cursor) == "12+5"
    assert cursor.has_read(5) and not cursor.has_read(6)
    assert str(cursor.upto(Sequence(20))) == "20+5"
    assert str(cursor.reads_upto(Sequence(9))) == "12+9"


def test_a_cursor_from_before_read_events_were_replayed_does_not_know_them():
    assert Cursor.parse("12").read_done is None
    assert Cursor.parse("5:10:7").read_done == Snapshot(5, 10, (7,))  # one snapshot orders both


@pytest.mark.parametrize("raw", ["12+", "+5", "12+5+6", "5:10:+3", "12+5:10:", "5:10:/5:12:/3+4", "12+x"])
def test_malformed_read_positions_are_rejected(raw):
    with pytest.raises(InvalidCursor):
        Cursor.parse(raw)


def test_read_events_the_cursor_has_are_not_sent_and_the_last_claims_the_read():
    frames, after = take_reads(Cursor(Sequence(3), reads=Sequence(5)), [(5, "a"), (6, "b"), (7, "c")], Sequence(8))
    assert frames == [("read", "b", None), ("read", "c", after)] and str(after) == "3+8"
    assert take_reads(after, [(7, "c")], Sequence(8)) == ([], after)


def test_on_postgresql_read_events_move_the_one_position():
    frames, after = take_reads(Cursor(Snapshot(3, 3)), [(4, "a")], Snapshot(5, 5))
    assert frames == [("read", "a", after)] and after == Cursor(Snapshot(5, 5))


def test_a_replay_of_reads_alone_claims_them_with_its_last_frame():
    opening, frames, after = replayed(Cursor(Sequence(3), reads=Sequence(1)), [], Sequence(3), ["a"], Sequence(2))
    assert opening == Cursor(Sequence(3), reads=Sequence(1))
    assert frames == [("read", "a", after)] and str(after) == "3+2"


def test_a_replay_with_nothing_to_send_opens_at_its_end():
    opening, frames, after = replayed(Cursor(Sequence(3), reads=Sequence(1)), [], Sequence(4), [], Sequence(2))
    assert frames == [] and opening == after and str(after) == "4+2"


def claimed_reads(h: History, cursor: Cursor) -> set[int]:
    return {rid for rid, key in h.reads if key in h.read_committed and cursor.has_read(key)}


@settings(max_examples=400, deadline=None)
@given(histories, st.data())
def test_read_events_come_once_beside_the_rows_and_a_cursor_claims_only_those_sent(h, data):
    n = len(h.positions)
    client = data.draw(st.integers(0, n - 1), label="the client's cursor")
    start = data.draw(st.integers(0, n - 1), label="the hub's position when it subscribes")
    replay = data.draw(st.integers(max(client, start), n - 1), label="where the replay reads to")
    cursor = Cursor.at(h.positions[client], h.read_positions[client])
    have, have_reads = claimed(h, cursor), claimed_reads(h, cursor)
    sent: list[int] = []
    sent_reads: list[int] = []
    held = [(have, have_reads)]

    def send(frames: list) -> None:
        for event, data_, at in frames:
            if event == "notification":
                sent.append(int(data_))
            elif data_.startswith("r"):
                sent_reads.append(int(data_[1:]))
            if at is not None:
                rows, reads = claimed(h, at), claimed_reads(h, at)
                assert held[0][0] <= rows <= have | set(sent)
                assert held[0][1] <= reads <= have_reads | set(sent_reads)
                held[0] = (rows, reads)

    end, read_end = h.positions[replay], h.read_positions[replay]
    rows = [(nid, str(nid)) for nid, key in h.visible(end) if not cursor.delivered(nid, key)]
    reads = [f"r{rid}" for rid, key in h.reads_visible(read_end) if not cursor.has_read(key)]
    _, frames, cursor = replayed(cursor, rows, end, reads, read_end)
    send(frames)
    for a, b in zip(range(start, n - 1), range(start + 1, n), strict=True):
        rows_ab = h.between(h.positions[a], h.positions[b])
        reads_ab = [
            (key, f"r{rid}")
            for rid, key in h.reads_visible(h.read_positions[b])
            if not h.read_positions[a].visible(key)
        ]
        frames, cursor = take(cursor, rows_ab, h.positions[b], reads_follow=bool(reads_ab))
        send(frames)
        if reads_ab:
            frames, cursor = take_reads(cursor, reads_ab, h.read_positions[b])
            send(frames)
    assert len(sent) == len(set(sent)) and len(sent_reads) == len(set(sent_reads))
    assert have | set(sent) == have | {nid for nid, _ in h.visible(h.positions[-1])}
    assert have_reads | set(sent_reads) == have_reads | {rid for rid, _ in h.reads_visible(h.read_positions[-1])}
    assert not have_reads & set(sent_reads)
    assert claimed(h, cursor) == have | set(sent) and claimed_reads(h, cursor) == have_reads | set(sent_reads)


def test_a_stream_leaves_the_claim_of_a_snapshot_to_the_read_events_that_follow_its_rows():
    from notifications.hub import Batch, Reads
    from notifications.stream import _frames

    end = Snapshot(9, 9)
    out, cursor = _frames([Batch([(5, 6, "{}")], end), Reads([(7, "{}")], end)], Cursor(Snapshot(5, 5)))
    ids = [line for line in out.split(b"\n") if line.startswith(b"id: ")]
    assert ids == [b"id: 5:5:/9:9:/5", b"id: 9:9:"] and cursor == Cursor(end)
