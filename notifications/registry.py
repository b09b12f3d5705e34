"""
The open streams of one process, and the budget they draw on.

A stream takes its slot with ``reserve()`` the moment its user is known, in
one step that cannot interleave with another open: a thousand opens arriving
together get at most NOTIFICATIONS_MAX_STREAMS slots, and at most
NOTIFICATIONS_MAX_STREAMS_PER_USER for one user. A slot is given back exactly
once, by ``release()``: when the stream ends, when its response is closed
without ever streaming, or, for a response dropped before either could happen,
when the slot has not been used for ``UNUSED_SLOT_LIFE`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from .conf import conf

# A reserved slot whose stream never started is given back after this long.
UNUSED_SLOT_LIFE = 30.0

S = TypeVar("S")


class Reservation:
    """One stream's slot in the budget."""

    __slots__ = ("user_id", "reserved_at", "started", "released")

    def __init__(self, user_id: Hashable) -> None:
        self.user_id = user_id
        self.reserved_at = time.monotonic()
        self.started = False
        self.released = False


class Registry(Generic[S]):
    """
    Slots per process and per user, and the streams (subscriptions) holding
    them, by user. ``reserve``/``release`` may be called from any thread; the
    streams themselves are only touched on the event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots = 0
        self._slots_by_user: dict[Hashable, int] = {}
        self._unstarted: set[Reservation] = set()
        self.streams: set[S] = set()
        self.by_user: dict[Hashable, set[S]] = {}

    # -- the budget ------------------------------------------------------------

    def reserve(self, user_id: Hashable) -> Reservation | None:
        """A slot for one more stream of ``user_id``, or None when over budget."""
        with self._lock:
            mine = self._slots_by_user.get(user_id, 0)
            if self._slots >= conf.MAX_STREAMS or mine >= conf.MAX_STREAMS_PER_USER:
                return None
            self._slots += 1
            self._slots_by_user[user_id] = mine + 1
            reservation = Reservation(user_id)
            self._unstarted.add(reservation)
            return reservation

    def start(self, reservation: Reservation) -> bool:
        """Mark the slot as used by a running stream; False if it was given back already."""
        with self._lock:
            if reservation.released:
                return False
            reservation.started = True
            self._unstarted.discard(reservation)
            return True

    def release(self, reservation: Reservation) -> None:
        """Give the slot back; only the first call counts."""
        with self._lock:
            if reservation.released:
                return
            reservation.released = True
            self._unstarted.discard(reservation)
            self._slots -= 1
            left = self._slots_by_user[reservation.user_id] - 1
            if left:
                self._slots_by_user[reservation.user_id] = left
            else:
                del self._slots_by_user[reservation.user_id]

    def expire_unused(self, now: float) -> int:
        """Give back slots reserved for streams that never started; how many."""
        with self._lock:
            stale = [r for r in self._unstarted if now - r.reserved_at >= UNUSED_SLOT_LIFE]
        for reservation in stale:
            self.release(reservation)
        return len(stale)

    @property
    def slots(self) -> int:
        return self._slots

    def slots_of(self, user_id: Hashable) -> int:
        return self._slots_by_user.get(user_id, 0)

    # -- the streams -------------------------------------------------------------

    def add(self, user_id: Hashable, stream: S) -> None:
        self.streams.add(stream)
        self.by_user.setdefault(user_id, set()).add(stream)

    def remove(self, user_id: Hashable, stream: S) -> bool:
        """Forget ``stream``; False if it was not registered."""
        if stream not in self.streams:
            return False
        self.streams.discard(stream)
        mine = self.by_user.get(user_id)
        if mine is not None:
            mine.discard(stream)
            if not mine:
                del self.by_user[user_id]
        return True
