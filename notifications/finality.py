"""
Finality and cursors: which notifications a client has, decided by the
database's own transaction state, never by clocks.

A *position* names the rows that had committed at one moment. Positions taken
later cover those taken earlier, so "what a client missed" is "the rows
committed after its position", whatever order their ids were handed out in and
however long a transaction stayed open.

- On PostgreSQL a position is a transaction snapshot (``pg_current_snapshot()``,
  written ``xmin:xmax:xip,...``) and each row stores the id of the transaction
  that inserted it (``xact``, type xid8). A row is in a position when its
  transaction is visible in the snapshot: below ``xmin``, or below ``xmax`` and
  not listed as in progress. This is how PgQ and transactional outbox relays cut
  their batches.
- On SQLite, which has one writer at a time, ids commit in order: a position is
  the highest id handed out (``sqlite_sequence``), and a row's key is its id.

A *cursor* is what a client holds (the SSE ``id:``): the position it has
everything up to, and, in the middle of a batch, the batch's position and the
id it got to: "everything in ``done``, and everything in ``window`` with an id
up to ``through``". Its size depends on the number of transactions open at one
moment, never on the number of notifications delivered.

A cursor also says which read-state changes (``ReadEvent`` rows) the client
has. On PostgreSQL one snapshot orders both tables, so ``done`` says it; on
SQLite each table has its own id sequence, and the cursor carries the read
events' one after a ``+`` (``12+5``). A cursor without it, from before read
changes were replayed, says nothing about them (``read_done`` is None).

This module is pure: no I/O. ``feed`` turns positions into SQL.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

MAX_XID = 2**63 - 1
# A snapshot lists the transactions in progress; no database has more at once.
MAX_IN_PROGRESS = 4096
SEPARATOR = "/"
READS_SEPARATOR = "+"

_SEQUENCE_RE = re.compile(r"\A[0-9]{1,19}\Z")
_SNAPSHOT_RE = re.compile(r"\A([0-9]{1,19}):([0-9]{1,19}):((?:[0-9]{1,19})(?:,[0-9]{1,19})*)?\Z")


class InvalidCursor(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Sequence:
    """A position on a single-writer database: every id up to ``last`` is final."""

    last: int

    def visible(self, key: int) -> bool:
        """Is the row with this key (its id) in the position?"""
        return key <= self.last

    def covers(self, other: Position) -> bool:
        """Does this position hold every row ``other`` holds?"""
        return isinstance(other, Sequence) and other.last <= self.last

    def __str__(self) -> str:
        return str(self.last)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """
    A PostgreSQL snapshot: transactions below ``xmin`` have finished, those from
    ``xmax`` on had not started, and ``xip`` (sorted) were in progress.
    """

    xmin: int
    xmax: int
    xip: tuple[int, ...] = ()

    def visible(self, key: int) -> bool:
        """Is a row written by transaction ``key`` in the position?"""
        if key < self.xmin:
            return True
        if key >= self.xmax:
            return False
        i = bisect_left(self.xip, key)
        return not (i < len(self.xip) and self.xip[i] == key)

    def covers(self, other: Position) -> bool:
        """
        Is every transaction visible in ``other`` visible here too? Snapshots of
        one database taken one after the other always cover each other in that
        order; anything else names a cursor from elsewhere.
        """
        if not isinstance(other, Snapshot):
            return False
        # Transactions in progress here must not be visible in ``other``: they
        # must be in progress there too, or not yet started there.
        for xid in self.xip:
            if xid >= other.xmax:
                break
            if other.visible(xid):
                return False
        if self.xmax >= other.xmax:
            return True
        # Transactions from our xmax up to ``other``'s had not started here: all
        # of them must have been in progress there.
        lo = bisect_left(other.xip, self.xmax)
        hi = bisect_right(other.xip, other.xmax - 1)
        return hi - lo == other.xmax - self.xmax

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(map(str, self.xip))}"


Position = Sequence | Snapshot


def parse_position(value: str) -> Position:
    """Parse ``123`` (SQLite) or ``xmin:xmax:xip,...`` (PostgreSQL), or raise ``InvalidCursor``."""
    if _SEQUENCE_RE.match(value):
        last = int(value)
        if last > MAX_XID:
            raise InvalidCursor("A position must fit in 63 bits.")
        return Sequence(last)
    match = _SNAPSHOT_RE.match(value)
    if not match:
        raise InvalidCursor("A position is an id, or a snapshot written xmin:xmax:xip,...")
    xmin, xmax = int(match[1]), int(match[2])
    xip = tuple(int(x) for x in match[3].split(",")) if match[3] else ()
    if len(xip) > MAX_IN_PROGRESS:
        raise InvalidCursor(f"A snapshot lists at most {MAX_IN_PROGRESS} transactions.")
    if not 1 <= xmin <= xmax <= MAX_XID:
        raise InvalidCursor("A snapshot needs 1 <= xmin <= xmax < 2**63.")
    if any(b <= a for a, b in zip(xip, xip[1:], strict=False)):
        raise InvalidCursor("A snapshot's transactions are listed once each, in order.")
    if xip and (xip[0] < xmin or xip[-1] >= xmax):
        raise InvalidCursor("A snapshot's transactions lie from xmin up to, not including, xmax.")
    return Snapshot(xmin, xmax, xip)


def parse_snapshot(value: str) -> Snapshot:
    """The text PostgreSQL gives for ``pg_current_snapshot()``."""
    position = parse_position(value)
    if not isinstance(position, Snapshot):
        raise InvalidCursor(f"Not a PostgreSQL snapshot: {value!r}.")
    return position


def later(a: Position, b: Position) -> Position:
    """The later of two positions of one database."""
    return b if b.covers(a) else a


@dataclass(frozen=True, slots=True)
class Cursor:
    """
    What a client has: every row in ``done``, plus (in the middle of a batch)
    the rows in ``window`` with an id up to ``through``. Rows it may not see
    count as delivered: they never will be.
    """

    done: Position
    window: Position | None = None
    through: int = 0
    # The read events the client has, where they have a position of their own
    # (SQLite); None: those in ``done`` (PostgreSQL), or unknown (see read_done).
    reads: Sequence | None = None

    @classmethod
    def at(cls, position: Position, read_position: Position) -> Cursor:
        """The cursor of a client that has everything in these positions (``feed.position_now``)."""
        if isinstance(position, Sequence) and isinstance(read_position, Sequence):
            return cls(position, reads=read_position)
        return cls(position)

    @classmethod
    def parse(cls, value: str) -> Cursor:
        """Parse a cursor, raising ``InvalidCursor`` for anything malformed."""
        if len(value) > 64 * 1024:
            raise InvalidCursor("A cursor is at most 64 KiB.")
        if READS_SEPARATOR in value:
            main, _, rest = value.partition(READS_SEPARATOR)
            done, reads = parse_position(main), parse_position(rest)
            if not isinstance(done, Sequence) or not isinstance(reads, Sequence):
                raise InvalidCursor("Only an id cursor carries read events after '+': 12+5.")
            return cls(done, reads=reads)
        parts = value.split(SEPARATOR)
        if len(parts) == 1:
            return cls(parse_position(parts[0]))
        if len(parts) != 3 or not _SEQUENCE_RE.match(parts[2]):
            raise InvalidCursor("A cursor is a position, or done/window/through.")
        done, window = parse_position(parts[0]), parse_position(parts[1])
        through = int(parts[2])
        if through > MAX_XID:
            raise InvalidCursor("Ids must fit in 63 bits.")
        if (
            not isinstance(done, Snapshot)
            or not isinstance(window, Snapshot)
            or not window.covers(done)
        ):
            raise InvalidCursor("A cursor's window must come after what it has done.")
        return cls(done, window, through)

    def delivered(self, notification_id: int, key: int) -> bool:
        """Does the client have the row ``notification_id``, written under ``key``?"""
        if self.done.visible(key):
            return True
        return (
            self.window is not None and notification_id <= self.through and self.window.visible(key)
        )

    def within(self, window: Position, notification_id: int) -> Cursor:
        """The cursor after the row ``notification_id`` of ``window`` (rows in id order)."""
        if isinstance(window, Sequence):
            return Cursor(Sequence(max(notification_id, self.last_id())), reads=self.reads)
        return Cursor(self.done, window, notification_id)

    def upto(self, position: Position) -> Cursor:
        """The cursor once everything in ``position`` was delivered."""
        return Cursor(later(self.done, position), reads=self.reads)

    @property
    def read_done(self) -> Position | None:
        """The read events the client has: every one in this position; None: unknown."""
        if self.reads is not None:
            return self.reads
        return self.done if isinstance(self.done, Snapshot) else None

    def has_read(self, key: int) -> bool:
        """Does the client have the read event written under ``key`` (its transaction, or its id)?"""
        done = self.read_done
        return done is not None and done.visible(key)

    def reads_upto(self, read_position: Position) -> Cursor:
        """
        The cursor once every read event in ``read_position`` was delivered.
        On PostgreSQL that is the notifications' position too: only call it
        once the notifications up to there were delivered as well.
        """
        if isinstance(read_position, Sequence):
            reads = read_position if self.reads is None else later(self.reads, read_position)
            assert isinstance(reads, Sequence)  # noqa: S101  # narrows the type for mypy: a Sequence cursor's reads are one too
            return Cursor(self.done, self.window, self.through, reads)
        return self.upto(read_position)

    def last_id(self) -> int:
        assert isinstance(self.done, Sequence)  # noqa: S101  # narrows the type for mypy: only SQLite's cursors have a last id
        return self.done.last

    def covers(self, position: Position) -> bool:
        return self.done.covers(position)

    def __str__(self) -> str:
        if self.reads is not None:
            return f"{self.done}{READS_SEPARATOR}{self.reads}"
        if self.window is None:
            return str(self.done)
        return SEPARATOR.join((str(self.done), str(self.window), str(self.through)))
