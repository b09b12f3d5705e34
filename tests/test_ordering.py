"""
Exactly-once bookkeeping between the hub and a stream: what the replay sent is
not sent again by the hub, a frame's cursor names exactly what was sent, and a
stream that subscribes while the hub reads still gets its user's rows.
"""

import asyncio

from notifications import db, feed
from notifications.finality import Cursor, Snapshot
from notifications.hub import Batch, Hub, Reads, Subscription
from notifications.models import Audiences
from notifications.registry import Reservation
from notifications.stream import _frames


def snap(xmin, xmax, *xip):
    return Snapshot(xmin, xmax, tuple(xip))


def test_rows_the_replay_sent_are_not_sent_again():
    # The replay went up to a snapshot where transaction 12 had committed, 11 not.
    cursor = Cursor(snap(11, 13, 11))
    batch = Batch([(5, 11, '{"id": 5}'), (7, 12, '{"id": 7}'), (9, 13, '{"id": 9}')], snap(14, 14))
    out, cursor = _frames([batch], cursor)
    assert out.count(b"event: notification") == 2
    assert b'"id": 7' not in out
    assert str(cursor) == "14:14:"


def test_a_frame_in_the_middle_of_a_batch_names_what_was_sent():
    cursor = Cursor(snap(10, 10))
    batch = Batch([(5, 10, "{}"), (6, 11, "{}"), (8, 12, "{}")], snap(13, 13))
    out, cursor = _frames([batch], cursor)
    ids = [line[4:].decode() for line in out.split(b"\n") if line.startswith(b"id: ")]
    assert ids == ["10:10:/13:13:/5", "10:10:/13:13:/6", "13:13:"]
    middle = Cursor.parse(ids[1])
    assert middle.delivered(5, 10) and middle.delivered(6, 11) and not middle.delivered(8, 12)


def test_a_batch_the_replay_covered_is_skipped_whole():
    cursor = Cursor(snap(20, 20))
    out, after = _frames([Batch([(5, 12, "{}")], snap(13, 13))], cursor)
    assert out == b"" and after == cursor


def test_read_events_pass_through():
    out, _ = _frames([Reads([(4, '{"ids":[1]}')], snap(5, 5))], Cursor(snap(3, 3)))
    assert out == b'id: 5:5:\nevent: read\ndata: {"ids":[1]}\n\n'


def test_a_row_read_while_its_user_subscribes_is_rendered_and_delivered(monkeypatch):
    """
    The hub reads new rows only for users with a stream here. A stream that
    subscribes during that read (its replay may run before the row commits)
    must still get the row: the hub reads that user's share of the same window.
    """
    calls: list[str] = []
    late: list[Subscription] = []
    start, end = snap(10, 10), snap(14, 14)

    def row(nid, user):
        return feed.Row(nid, nid, user, "user", None, f'{{"id": {nid}}}')

    async def scenario() -> Hub:
        hub = Hub()
        hub.position = hub.read_position = start
        early = Subscription(Audiences(1, False, frozenset()), start, Reservation(1))
        hub.registry.add(1, early)

        async def run(fn, *args):
            calls.append(fn.__name__)
            if fn is feed.fetch:
                assert set(args[2]) == {1}  # user 2 had no stream when the read began
                sub = Subscription(
                    Audiences(2, False, frozenset()), start, Reservation(2)
                )  # ...and has one now
                hub.registry.add(2, sub)
                late.append(sub)
                return feed.Fetched(end, end, [row(13, 1)], [])
            assert fn is feed.fetch_late and set(args[3]) == {2} and args[2].end == end
            return feed.Fetched(end, end, [row(11, 2)], [(2, 12, '{"ids": [3]}')])

        monkeypatch.setattr(db, "run", run)
        await hub._fetch()
        return hub

    hub = asyncio.run(scenario())
    assert calls == ["fetch", "fetch_late"]
    assert hub.position == end
    batch, read = late[0].pending
    assert [r[0] for r in batch.rows] == [11] and batch.end == end
    assert read.events == [(12, '{"ids": [3]}')] and read.end == end


def test_a_batch_in_parts_completes_its_position_only_with_the_last_part():
    cursor = Cursor(snap(10, 10))
    end = snap(13, 13)
    first = Batch([(5, 10, "{}"), (6, 11, "{}")], end, complete=False)
    out, cursor = _frames([first], cursor)
    ids = [line[4:].decode() for line in out.split(b"\n") if line.startswith(b"id: ")]
    assert ids == ["10:10:/13:13:/5", "10:10:/13:13:/6"] and str(cursor) == "10:10:"
    out, cursor = _frames([Batch([(8, 12, "{}")], end)], cursor)
    assert b"id: 13:13:\n" in out and str(cursor) == "13:13:"


def test_a_large_share_of_one_read_goes_out_in_parts(monkeypatch):
    from notifications import hub as hub_module

    monkeypatch.setattr(hub_module, "BATCH_ROWS", 2)
    parts = hub_module._batches([(i, i, "{}") for i in range(5)], snap(9, 9))
    assert [len(b.rows) for b in parts] == [2, 2, 1]
    assert [b.complete for b in parts] == [False, False, True]


def test_of_the_rows_of_one_group_in_a_read_only_the_newest_goes_out():
    """A burst of one group becomes one frame per read: the newest row carries the whole group."""

    def row(nid, user, group=""):
        return feed.Row(nid, nid, user, "user", None, f'{{"id": {nid}}}', group)

    async def scenario() -> list[int]:
        hub = Hub()
        sub = Subscription(Audiences(1, False, frozenset()), snap(1, 1), Reservation(1))
        hub.registry.add(1, sub)
        rows = [row(2, 1, "g"), row(3, 1), row(4, 1, "g"), row(5, 1, "h"), row(6, 1, "g"), row(7, 2, "g")]
        hub._dispatch(rows, snap(9, 9))
        (batch,) = sub.pending
        return [r[0] for r in batch.rows]

    assert asyncio.run(scenario()) == [3, 5, 6]


def test_reads_space_out_while_rows_keep_coming_and_not_after_a_pause():
    from notifications import hub as hub_module

    hub = Hub()
    # A lone notification, then another after a pause: no wait.
    assert not hub._pace(True, 100.0, 100.01)
    assert not hub._pace(True, 101.0, 101.01)
    # Rows at every read, back to back: the wait doubles up to its bound...
    now, waits = 101.01, []
    for _ in range(10):
        hub._pace(True, now, now + 0.01)
        waits.append(hub._spacing)
        now += 0.01 + hub._spacing
    assert waits[0] == hub_module.BURST_SPACING_MIN
    assert waits == sorted(waits) and waits[-1] == hub_module.BURST_SPACING_MAX
    # ...and a read that finds nothing ends the burst.
    assert not hub._pace(False, now, now + 0.01) and hub._spacing == 0
    assert not hub._pace(True, now + 1.0, now + 1.01)


def test_slow_reads_do_not_end_a_burst():
    """
    A busy database: each read takes 0.2 s, and rows keep coming (the next
    read begins as soon as the wait is over). The wait still grows to its
    bound; when the reads' own time ended the burst, every read reset it and
    the hub read without waiting, a few times a second per burst.
    """
    from notifications import hub as hub_module

    hub = Hub()
    now, waits = 100.0, []
    for _ in range(10):
        hub._pace(True, now, now + 0.2)
        waits.append(hub._spacing)
        now += 0.2 + hub._spacing
    assert waits[-1] == hub_module.BURST_SPACING_MAX
    assert all(wait > 0 for wait in waits[1:])
