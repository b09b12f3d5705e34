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
from concurrent.futures import Future, ThreadPoolExecutor
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
        # The event loop whose timer will close the connection, if any.
        self.close_loop: asyncio.AbstractEventLoop | None = None

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


def close_connections() -> None:
    """
    Close every lane's database connections now, waiting for work in progress.
    Lanes close their own once idle, on timers of the event loop that used
    them; call this where that loop has ended (a script's ``asyncio.run``).
    """
    with _lock:
        lanes = _lanes
    if lanes is None or lanes.pid != os.getpid():
        return
    for lane in lanes.lanes:
        lane.executor.submit(connections.close_all).result()


def _take_lane() -> Lane:
    """The least busy lane, counted as busy with one more call."""
    lanes = _get_lanes()
    with _lock:
        lane = lanes.pick()
        with lane.lock:
            lane.pending += 1
    return lane


async def run(fn: Callable[..., T], *args: Any) -> T:
    """
    Run the synchronous ``fn(*args)`` on a database lane and return its result.
    The lane's connection is closed once it has been idle for a moment.
    """
    lane = _take_lane()
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(lane.executor, lane.call, fn, args)
    try:
        # Shielded: a cancelled caller must not unqueue the call, or the
        # pending count would never reach zero and the connection stay open.
        return await asyncio.shield(future)
    finally:
        _schedule_close(loop, lane)


def _schedule_close(loop: asyncio.AbstractEventLoop, lane: Lane, delay: float | None = None) -> None:
    with lane.lock:
        # A timer of a loop that has ended since (a script's ``asyncio.run``)
        # will never run: this loop takes over.
        if lane.close_loop is not None and not lane.close_loop.is_closed():
            return
        lane.close_loop = loop

    def check() -> None:
        with lane.lock:
            lane.close_loop = None
            busy = lane.pending > 0
            # When the lane was last used: the close is due DB_IDLE_CLOSE after
            # that, not DB_IDLE_CLOSE after this check (which could double it).
            left = lane.last_used + conf.DB_IDLE_CLOSE - time.monotonic()
        if busy:
            _schedule_close(loop, lane)
        elif left > 0:
            _schedule_close(loop, lane, left)
        else:
            loop.run_in_executor(lane.executor, lane.close_if_idle)

    if not loop.is_closed():
        loop.call_later(conf.DB_IDLE_CLOSE if delay is None else delay, check)


class Batched:
    """
    Coalesce concurrent calls into one call on a database lane.

    ``fn`` takes a list of arguments and returns a list of results in the same
    order (an ``Exception`` instance in place of a result fails only that
    call). While one batch runs, the calls that arrive wait and go together in
    the next, so a burst of K stream opens costs a few queries, not K times a
    few. A lone call goes at once, so light load waits for nothing.
    """

    def __init__(self, fn: Callable[[list[Any]], list[Any]], max_size: int = 500) -> None:
        self.fn = fn
        self.max_size = max_size
        self._loops: dict[asyncio.AbstractEventLoop, _BatchQueue] = {}
        self._threads = _ThreadBatchQueue(self)

    def call_from_thread(self, arg: Any, loop: asyncio.AbstractEventLoop) -> Any:
        """
        The same call from a worker thread (not ``loop``'s), waiting in that
        thread: calls from several threads are coalesced on a lane without
        passing through the event loop, which may be busy with the very burst
        being batched. ``loop`` times the lane's idle close.
        """
        return self._threads.submit(arg, loop)

    async def __call__(self, arg: Any) -> Any:
        loop = asyncio.get_running_loop()
        queue = self._loops.get(loop)
        if queue is None:
            queue = self._loops[loop] = _BatchQueue(self, loop)
            for other in [lp for lp in self._loops if lp.is_closed()]:
                del self._loops[other]
        return await queue.submit(arg)


class _BatchQueue:
    def __init__(self, batched: Batched, loop: asyncio.AbstractEventLoop) -> None:
        self.batched = batched
        self.loop = loop
        self.waiting: list[tuple[Any, asyncio.Future[Any]]] = []
        self.running = False

    async def submit(self, arg: Any) -> Any:
        future = self.loop.create_future()
        self.waiting.append((arg, future))
        if not self.running:
            self.running = True
            task = self.loop.create_task(self._drain())
            _draining.add(task)
            task.add_done_callback(_draining.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self.waiting:
                batch = self.waiting[: self.batched.max_size]
                del self.waiting[: len(batch)]
                try:
                    results = await run(self.batched.fn, [arg for arg, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the caller went away
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self.running = False


_draining: set[asyncio.Task[None]] = set()


class _ThreadBatchQueue:
    """``Batched`` for callers on worker threads: one drain at a time, on a lane."""

    def __init__(self, batched: Batched) -> None:
        self.batched = batched
        self.lock = threading.Lock()
        self.waiting: list[tuple[Any, Future[Any]]] = []
        self.running = False

    def submit(self, arg: Any, loop: asyncio.AbstractEventLoop) -> Any:
        future: Future[Any] = Future()
        with self.lock:
            self.waiting.append((arg, future))
            start, self.running = not self.running, True
        if start:
            lane = _take_lane()
            lane.executor.submit(self._drain, lane, loop)
        return future.result()

    def _drain(self, lane: Lane, loop: asyncio.AbstractEventLoop) -> None:
        """On the lane: run batches until nobody waits."""
        batch: list[tuple[Any, Future[Any]]] = []
        try:
            while True:
                with self.lock:
                    batch = self.waiting[: self.batched.max_size]
                    del self.waiting[: len(batch)]
                    if not batch:
                        self.running = False
                        return
                try:
                    results = self.batched.fn([arg for arg, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
                batch = []
        except BaseException as exc:
            # Never leave a caller waiting, nor the queue without a drain.
            with self.lock:
                left, self.waiting, self.running = batch + self.waiting, [], False
            for _, future in left:
                if not future.done():
                    future.set_exception(exc)
            raise
        finally:
            with lane.lock:
                lane.pending -= 1
                lane.last_used = time.monotonic()
            try:
                loop.call_soon_threadsafe(_schedule_close, loop, lane)
            except RuntimeError:  # the loop has closed: close_connections() is for that
                pass
