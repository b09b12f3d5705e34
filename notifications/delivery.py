"""
Pokes: the channel-layer messages that tell hubs to look at the database.

A poke carries no notification; the hub reads what it sends from the database,
so a lost poke costs latency (until the hub's next check), never a notification.
Sending happens after commit and never makes the caller wait on the layer: a
paused, unreachable or full layer costs the caller nothing, and a failing
layer is logged (once per outage), never raised.

How a poke leaves, by where the caller runs:

- in the server's event loop, or in a thread the server runs sync code in
  (a sync view, ``sync_to_async``), with the in-memory layer: scheduled on
  that loop, which owns the layer's queues;
- otherwise: put in this process's bounded queue, which one background thread
  sends from. A poke for a group already waiting there is that one; when the
  queue is full, pokes are dropped with one log line (the hubs' database check
  still delivers what they announced).

A login check (a password change, a logout) sent from the server's loop or
one of its threads also reaches that loop's hub directly, whatever the layer,
in order with what the loop is handed next (see ``_start_in_loop``).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

from asgiref.sync import SyncToAsync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer

from .conf import conf
from .hub import ALL_GROUP, existing_hub, user_group

logger = logging.getLogger(__name__)

POKE = {"type": "notifications.poke"}
CHECK = {"type": "notifications.check"}  # and "user": the user's pk as text

# Seconds one batch of sends may take before it is given up (its pokes are
# lost; the database check delivers). Pokes queue meanwhile.
SEND_TIMEOUT = 10.0
# Groups the background thread pokes at once.
SEND_CONCURRENCY = 16
# Seconds an exiting process waits for its queued pokes to go out.
EXIT_FLUSH_TIMEOUT = 2.0

Message = tuple[str, dict[str, Any]]


def poke_users(user_ids: Iterable[int]) -> None:
    """Wake the hubs serving these users (every hub, past the fan-out limit)."""
    ids = sorted(set(user_ids))
    if len(ids) > conf.POKE_FANOUT_LIMIT:
        _send([(ALL_GROUP, POKE)])
    else:
        _send([(user_group(uid), POKE) for uid in ids])


def check_users(user_ids: Iterable[int]) -> None:
    """
    Tell the hubs serving these users to check their streams' logins now,
    before they hand out anything more (a password change, a logout, a group
    left): the sweep would within half a heartbeat. Also a poke.
    """
    _send([(user_group(uid), {**CHECK, "user": str(uid)}) for uid in set(user_ids)])


def end_login(user_id: Any, session_key: str | None) -> None:
    """
    A login is ending (a logout): its streams end at once. Without a session
    key (signed-cookie sessions), the user's logins are checked instead.
    """
    message = {**CHECK, "user": str(user_id)}
    if session_key:
        message["session"] = session_key
    _send([(user_group(user_id), message)])


def poke_all() -> None:
    """Wake every hub: a broadcast (everyone, staff or a group) was created."""
    _send([(ALL_GROUP, POKE)])


def flush(timeout: float = 5.0) -> bool:
    """
    Wait up to ``timeout`` seconds until this process's queued pokes have
    been handed to the channel layer (or given up). Returns whether the queue
    emptied in time. Exiting processes do this by themselves, for a moment.
    """
    publisher = _publisher_instance
    if publisher is None or publisher.pid != os.getpid():
        return True
    return publisher.flush(timeout)


def _send(messages: list[Message]) -> None:
    if not messages:
        return
    layer = get_channel_layer(conf.CHANNEL_LAYER)
    if layer is None:
        return
    loop = _server_loop()
    if loop is not None:
        in_loop = isinstance(layer, InMemoryChannelLayer)
        if in_loop or any(m.get("type") == CHECK["type"] for _, m in messages):
            try:
                loop.call_soon_threadsafe(_start_in_loop, loop, layer if in_loop else None, messages)
            except RuntimeError:  # the loop is closed: send as from a plain thread
                in_loop = False
        if in_loop:
            return
    _publisher().put(messages)


# -- in the server's event loop -------------------------------------------------

_in_loop_tasks: set[asyncio.Task[None]] = set()


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """
    The event loop of the ASGI server this code runs for, if any: the running
    loop, or the loop whose ``sync_to_async`` worker thread this is.

    asgiref records that loop in a thread-local of ``SyncToAsync`` (its own
    ``async_to_sync`` finds the server's loop there). It is not a public API;
    tests/test_publishing.py has a test that fails if a release changes it.
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
    if loop is None or loop.is_closed():
        return None
    return loop


def _start_in_loop(
    loop: asyncio.AbstractEventLoop, layer: BaseChannelLayer | None, messages: list[Message]
) -> None:
    # Logins to check reach this loop's hub now, not a few loop turns later
    # through the layer (whichever it is: Redis too): the loop takes callbacks
    # in the order threads hand them over, so a row committed after the change
    # (a password change, then a notification) is dispatched only after its
    # streams were checked. Then the layer takes the messages to the other
    # processes' hubs (``layer``: this loop's in-memory layer; otherwise the
    # caller queued them for the background thread).
    hub = existing_hub(loop)
    if hub is not None:
        for _, message in messages:
            if message.get("type") == CHECK["type"]:
                hub.on_message(message)
    if layer is None:
        return
    task = loop.create_task(_send_in_order(layer, messages))
    _in_loop_tasks.add(task)  # keep a reference until it is done
    task.add_done_callback(_in_loop_done)


def _in_loop_done(task: asyncio.Task[None]) -> None:
    _in_loop_tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.warning(
            "Could not poke streams through the channel layer; they will find "
            "the change on their next database check.",
            exc_info=task.exception(),
        )


async def _send_in_order(layer: BaseChannelLayer, messages: list[Message]) -> None:
    for group, message in messages:
        await layer.group_send(group, message)


# -- the background queue ---------------------------------------------------------


class _Publisher:
    """
    A bounded queue of pokes and the daemon thread that sends them, with an
    event loop of its own that keeps the layer's connection pool across sends.

    ``put()`` never blocks on the layer: it takes a lock held only to update
    the queue. The thread takes everything queued at once and sends it.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        # group -> message, in the order queued: a poke for a group already
        # waiting is that one (a check replaces a waiting poke).
        self.queue: dict[str, dict[str, Any]] = {}
        self.signalled = False
        self.sending = 0  # pokes taken from the queue and not yet sent
        self.overflowing = False  # logged a drop, not yet caught up
        self.failing = False  # logged a failing layer, not yet recovered
        self.loop = asyncio.new_event_loop()
        self.ready = asyncio.Event()
        self.drained = threading.Condition(self.lock)
        self.thread = threading.Thread(
            target=self.loop.run_until_complete,
            args=(self._run(),),
            name="notifications-publisher",
            daemon=True,
        )
        self.thread.start()

    def put(self, messages: list[Message]) -> None:
        """Queue ``messages`` (one per group), dropping what does not fit."""
        dropped = 0
        size = conf.PUBLISH_QUEUE_SIZE
        with self.lock:
            for group, message in messages:
                if group in self.queue:
                    if message["type"] == CHECK["type"]:  # a check is a poke and more
                        self.queue[group] = message
                    continue
                if len(self.queue) >= size:
                    dropped += 1
                    continue
                self.queue[group] = message
            wake = bool(self.queue) and not self.signalled
            self.signalled = self.signalled or wake
            first_drop = dropped > 0 and not self.overflowing
            self.overflowing = self.overflowing or dropped > 0
        if wake:
            self.loop.call_soon_threadsafe(self.ready.set)
        if first_drop:
            logger.warning(
                "The channel-layer queue is full (%d pokes): dropping pokes until "
                "the layer catches up; streams find those notifications on their "
                "next database check.",
                size,
            )

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.queue or self.sending:
                left = deadline - time.monotonic()
                if left <= 0 or not self.thread.is_alive():
                    return False
                self.drained.wait(left)
        return True

    async def _run(self) -> None:
        while True:
            await self.ready.wait()
            with self.lock:
                self.ready.clear()
                self.signalled = False
                batch = list(self.queue.items())
                self.queue.clear()
                self.sending = len(batch)
            ok = await self._send(batch) if batch else True
            with self.lock:
                self.sending = 0
                if ok:
                    self.overflowing = False
                self.drained.notify_all()

    async def _send(self, batch: list[Message]) -> bool:
        """Send ``batch``; log the first failure of an outage and the recovery."""
        try:
            layer = get_channel_layer(conf.CHANNEL_LAYER)
            if layer is not None:
                await asyncio.wait_for(_send_all(layer, batch), SEND_TIMEOUT)
        except Exception as exc:
            if not self.failing:
                self.failing = True
                logger.warning(
                    "Could not poke streams through the channel layer (%s); they will "
                    "find changes on their next database check until it is back.",
                    exc.__class__.__name__ if isinstance(exc, TimeoutError) else exc,
                )
            return False
        if self.failing:
            self.failing = False
            logger.info("The channel layer takes pokes again.")
        return True


async def _send_all(layer: BaseChannelLayer, batch: list[Message]) -> None:
    """Poke several groups at once; raise the first error once all are done."""
    slots = asyncio.Semaphore(SEND_CONCURRENCY)

    async def send(group: str, message: dict[str, Any]) -> None:
        async with slots:
            await layer.group_send(group, message)

    results = await asyncio.gather(
        *(send(group, message) for group, message in batch), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result


_publisher_lock = threading.Lock()
_publisher_instance: _Publisher | None = None
_hooks_registered = False


def _publisher() -> _Publisher:
    """This process's publisher, started on first use (and anew in a forked child)."""
    global _publisher_instance, _hooks_registered
    with _publisher_lock:
        if not _hooks_registered:
            atexit.register(flush, EXIT_FLUSH_TIMEOUT)
            os.register_at_fork(after_in_child=_forget_publisher)
            _hooks_registered = True
        if _publisher_instance is None or _publisher_instance.pid != os.getpid():
            _publisher_instance = _Publisher()
        return _publisher_instance


def _forget_publisher() -> None:
    """In a forked child: the parent's thread is not here, nor may its lock be free."""
    global _publisher_lock, _publisher_instance
    _publisher_lock = threading.Lock()
    _publisher_instance = None
