"""
Pokes: the channel-layer messages that tell hubs to look at the database.

A poke carries no notification; the hub reads what it sends from the database,
so a lost poke costs latency (until the hub's next check), never a notification.
Sending happens after commit; a failing layer is logged, never raised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Coroutine, Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

from .conf import conf
from .hub import ALL_GROUP, user_group

logger = logging.getLogger(__name__)

POKE = {"type": "notifications.poke"}


def poke_users(user_ids: Iterable[int]) -> None:
    """Wake the hubs serving these users (every hub, past the fan-out limit)."""
    ids = sorted(set(user_ids))
    if len(ids) > conf.POKE_FANOUT_LIMIT:
        _send([(ALL_GROUP, POKE)])
    else:
        _send([(user_group(uid), POKE) for uid in ids])


def poke_all() -> None:
    """Wake every hub: a broadcast (everyone, staff or a group) was created."""
    _send([(ALL_GROUP, POKE)])


def send_read(user_id: int, payload: str) -> None:
    """Tell the user's open streams that notifications were read (JSON ``payload``)."""
    _send([(user_group(user_id), {"type": "notifications.read", "user": user_id, "payload": payload})])


def _send(messages: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer(conf.CHANNEL_LAYER)
    if layer is None or not messages:
        return

    async def send_all() -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        if isinstance(layer, InMemoryChannelLayer):
            # Its queues belong to the server's event loop: send from there.
            async_to_sync(send_all)()
        else:
            _publisher().submit(send_all())
    except Exception:
        logger.warning(
            "Could not poke streams through the channel layer; they will find "
            "the change on their next database check.",
            exc_info=True,
        )


class _Publisher:
    """
    An event loop on a daemon thread that sends pokes for synchronous code.

    ``async_to_sync`` outside a server would build a new event loop, and so a
    new Redis connection, for every notification; this loop keeps the layer's
    connection pool across calls.
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="notifications-publisher", daemon=True)
        thread.start()

    def submit(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` on the loop and wait for it (raising what it raises)."""
        asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=SEND_TIMEOUT)


SEND_TIMEOUT = 10.0
_publisher_lock = threading.Lock()
_publisher_instance: _Publisher | None = None


def _publisher() -> _Publisher:
    global _publisher_instance
    with _publisher_lock:
        if _publisher_instance is None or _publisher_instance.pid != os.getpid():
            _publisher_instance = _Publisher()  # first use, or in a forked child
        return _publisher_instance
