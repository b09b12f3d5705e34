"""
Database access for streams and the hub, in short bursts.

All of a process's stream and hub queries run on one worker thread, so a
process holds at most one database connection for its streams however many are
open, and that connection is closed as soon as no query is waiting. Ten
thousand idle streams therefore hold no connection at all.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending = 0


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="notifications-db"
            )
        return _executor


def _call(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    global _pending
    try:
        return fn(*args)
    finally:
        with _lock:
            _pending -= 1
            idle = _pending == 0
        if idle:
            connections.close_all()


async def run(fn: Callable[..., T], *args: Any) -> T:
    """
    Run the synchronous ``fn(*args)`` on the database thread and return its
    result. The thread's connections are closed when no other call is queued.
    """
    global _pending
    executor = _get_executor()
    with _lock:
        _pending += 1
    future = asyncio.get_running_loop().run_in_executor(executor, _call, fn, args)
    # Shielded: a cancelled caller must not unqueue the call, or the pending
    # count would never reach zero and the connection would stay open.
    return await asyncio.shield(future)
