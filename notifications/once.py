"""
Exactly once on the stream: which rows a stream hands its client, and what
the cursor on each frame claims.

A subscription starts at a position (``hub.Subscription.start``): it is owed
every row committed after that position that its user may see. Rows reach it
two ways: the stream's replay, from the client's cursor up to where the
database was when the replay ran, and the hub's reads, each from the hub's
position to where the database was when it read, for the users that had a
stream when it read. The invariant has two halves, one per side:

1. The hub (``Read``). A read may hand its rows out, and the hub's position
   move to its end, only when it *serves* every subscription registered at
   that moment: it starts where the subscription starts (or before) and it
   took that subscription's user's rows. ``Read.unserved`` names the users
   whose rows the hub must still read; the hub reads them and asks again, and
   hands the rows out with nothing awaited between the last answer and the
   hand-out. Any await there lets a subscription in that the read does not
   serve, and the moving position would skip its user's rows for good.
2. The stream (``replayed``, ``take``). Given the client's cursor and rows
   with the position they complete: a row the cursor has is never sent again;
   the cursor a frame carries claims only rows sent up to that frame (or the
   frame carries none); once a batch is complete the cursor holds its whole
   position, so the next one starts where it ended.

Read events (read, unread, deleted) follow the same rules beside the rows
(``take_reads``, and the ``reads`` of ``replayed``): each reaches the client
once, and a cursor claims one only once its frame was sent. Where one
snapshot names both (PostgreSQL), a read's rows leave that claim to its read
events that follow them.

Pure: no I/O, no clock. ``tests/test_once.py`` checks both halves against a
model of transactions that commit out of order and roll back.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from .finality import Cursor, Position, Sequence

# A frame to send: its event ("notification" or "read"), its JSON and the
# cursor after it (None: the client's progress is not expressible there, and
# the frame carries no ``id:``).
Frame = tuple[str, str, Cursor | None]


@dataclass(frozen=True, slots=True)
class Read:
    """One read of the hub: the rows committed after ``start`` and by ``end``, for ``users``."""

    start: Position
    end: Position
    users: frozenset[Hashable]

    def serves(self, start: Position, user_id: Hashable) -> bool:
        """
        Does this read give a subscription that started at ``start`` every row
        of ``user_id`` it is owed in the read's window? Rows of the read from
        before ``start`` are not lost either: the stream's cursor drops them.
        """
        return user_id in self.users and start.covers(self.start)

    def unserved(self, users: Iterable[Hashable]) -> frozenset[Hashable]:
        """
        Of the users with a subscription now, those whose rows this read did
        not take. Every subscription starts at the hub's position, which only
        a hand-out moves, so a subscription of a user the read took is served.
        """
        return frozenset(users) - self.users

    def taking(self, users: Iterable[Hashable]) -> Read:
        """The same read once the rows of ``users`` were read too (same window)."""
        return Read(self.start, self.end, self.users | frozenset(users))


def replayed(
    cursor: Cursor,
    rows: list[tuple[int, str]],
    end: Position,
    reads: list[str] | None = None,
    read_end: Position | None = None,
) -> tuple[Cursor, list[Frame], Cursor]:
    """
    What a replay sends a client at ``cursor``: the cursor for its opening
    frame, the frames of what it missed, and the cursor after them.

    ``rows`` are the notifications it misses up to ``end``, in id order (none
    of them in ``cursor``), rendered as they are now; ``reads`` the read events
    it misses up to ``read_end``, oldest first. The read events go first: they
    change the items the client already lists, and the rows after them already
    show the read state those set.
    """
    after = cursor.upto(end)
    if read_end is not None:
        after = after.reads_upto(read_end)
    frames: list[Frame] = [("read", data, None) for data in reads or ()]
    for nid, data in rows:
        if cursor.window is None or nid >= cursor.through:
            at: Cursor | None = cursor.within(end, nid)
        else:
            at = None  # below the client's own window: not expressible, keep its cursor
        frames.append(("notification", data, at))
    if frames:
        event, data, _ = frames[-1]
        frames[-1] = (event, data, after)
    return (cursor if frames else after), frames, after


def take_reads(cursor: Cursor, events: list[tuple[int, str]], end: Position) -> tuple[list[Frame], Cursor]:
    """
    What a hub's read events (finality key, JSON) add for a client at
    ``cursor``, queued after that read's batches: the ones it does not have,
    the last carrying the cursor that holds ``end``.
    """
    done = cursor.read_done
    if done is not None and done.covers(end):
        return [], cursor
    new = [data for key, data in events if not cursor.has_read(key)]
    after = cursor.reads_upto(end)
    frames: list[Frame] = [("read", data, after if i == len(new) - 1 else None) for i, data in enumerate(new)]
    return frames, after


def take(
    cursor: Cursor,
    rows: list[tuple[int, int, str]],
    end: Position,
    complete: bool = True,
    reads_follow: bool = False,
) -> tuple[list[Frame], Cursor]:
    """
    What a batch of the hub adds for a client at ``cursor``: the frames of the
    rows (id, finality key, JSON) it does not have, and the cursor after them.
    ``rows`` are every row of the subscription's user committed in the batch's
    window, in id order; with ``complete`` False, more rows of the same window
    follow in other batches, and only the last one moves the cursor to ``end``.
    With ``reads_follow``, that read's read events for the user come next
    (``take_reads``): where one position names both (a snapshot), the cursor
    after the rows must not claim them yet.
    """
    if cursor.covers(end):
        return [], cursor  # the replay had all of it
    new = [(nid, data) for nid, key, data in rows if not cursor.delivered(nid, key)]
    after = cursor.upto(end)
    if not complete:
        after = cursor
    elif reads_follow and cursor.reads is None and not isinstance(end, Sequence):
        after = cursor.within(end, new[-1][0]) if new else cursor
    last = len(new) - 1 if complete else -1
    frames: list[Frame] = [
        ("notification", data, after if i == last else cursor.within(end, nid))
        for i, (nid, data) in enumerate(new)
    ]
    return frames, after
