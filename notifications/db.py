"""
Database access for streams and the hub, in short bursts.

A process's stream and hub queries (authentication, replay, the hub's reads)
run on a few worker threads ("lanes", NOTIFICATIONS_DB_THREADS), so a process
holds at most that many database connections however many streams are open or
reconnecting at once. A lane closes its connection once it has had nothing to
do for NOTIFICATIONS_DB_IDLE_CLOSE seconds: ten thousand idle streams hold no
connection at all, and a burst of reconnects reuses one instead of opening one
per query.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connections

from .conf import conf

T = TypeVar("T")


class Lane:
    """One worker thread with its own connection, closed when idle."""

    def __init__(self, index: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"notifications-db-{index}")
        self.lock = threading.Lock()
        self.pending = 0
        self.last_used = 0.0
        self.close_scheduled = False

    def call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        try:
            return fn(*args)
        finally:
            with self.lock:
                self.pending -= 1
                self.last_used = time.monotonic()

    def close_if_idle(self) -> None:
        """Runs on the lane's thread: close its connections unless work came in."""
        with self.lock:
            idle = self.pending == 0 and time.monotonic() - self.last_used >= conf.DB_IDLE_CLOSE
        if idle:
            connections.close_all()


class Lanes:
    def __init__(self, count: int) -> None:
        self.pid = os.getpid()
        self.lanes = [Lane(i) for i in range(count)]

    def pick(self) -> Lane:
        """The least busy lane (the first of equals, so light load uses one connection)."""
        return min(self.lanes, key=lambda lane: lane.pending)


_lock = threading.Lock()
_lanes: Lanes | None = None


def _get_lanes() -> Lanes:
    global _lanes
    with _lock:
        if _lanes is None or _lanes.pid != os.getpid():
            _lanes = Lanes(conf.DB_THREADS)
        return _lanes


async def run(fn: Callable[..., T], *args: Any) -> T:
    """
    Run the synchronous ``fn(*args)`` on a database lane and return its result.
    The lane's connection is closed once it has been idle for a moment.
    """
    lanes = _get_lanes()
    with _lock:
        lane = lanes.pick()
        with lane.lock:
            lane.pending += 1
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(lane.executor, lane.call, fn, args)
    try:
        # Shielded: a cancelled caller must not unqueue the call, or the
        # pending count would never reach zero and the connection stay open.
        return await asyncio.shield(future)
    finally:
        _schedule_close(loop, lane)


def _schedule_close(loop: asyncio.AbstractEventLoop, lane: Lane) -> None:
    with lane.lock:
        if lane.close_scheduled:
            return
        lane.close_scheduled = True

    def check() -> None:
        with lane.lock:
            lane.close_scheduled = False
            busy = lane.pending > 0
            recent = time.monotonic() - lane.last_used < conf.DB_IDLE_CLOSE
        if busy or recent:
            _schedule_close(loop, lane)
        else:
            loop.run_in_executor(lane.executor, lane.close_if_idle)

    if not loop.is_closed():
        loop.call_later(conf.DB_IDLE_CLOSE, check)
