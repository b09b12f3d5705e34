"""
A process's membership of channel-layer groups, on one channel.

Streams need the groups of their users (and the group every hub is in); the
process joins each group once, however many of its streams need it (reference
counts), and leaves it LINGER seconds after the last one left, so a reconnect
storm makes no layer calls. Membership is renewed every
NOTIFICATIONS_GROUP_REJOIN seconds (channels-redis expires it) and after an
outage. A failing layer is logged once, retried with backoff, and costs only
latency: the hub's database check delivers meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from channels.layers import get_channel_layer

from .conf import conf

logger = logging.getLogger(__name__)

# Seconds a group stays joined after its last stream left: the streams of a
# reconnect storm (a deploy, a proxy restart) come back to groups still joined.
LINGER = 30.0
# Channel-layer calls made at once; ten thousand streams opening together must
# not exhaust the layer's connection pool.
LAYER_CONCURRENCY = 32


class Membership:
    """
    Groups joined on this process's channel. ``on_message`` gets every message
    received; ``on_recovered`` is called when the layer works again after a
    failure (so the owner can catch up from the database).
    """

    def __init__(
        self, on_message: Callable[[dict[str, Any]], None], on_recovered: Callable[[], None]
    ) -> None:
        self.layer = get_channel_layer(conf.CHANNEL_LAYER)
        self.channel: str | None = None
        self.groups: dict[str, int] = {}  # group -> streams needing it
        self.lingering: dict[str, float] = {}  # group -> when it is left
        self.ok = True
        self._on_message = on_message
        self._on_recovered = on_recovered
        self._ready = asyncio.Event()
        self._joined_at = 0.0
        self._calls = asyncio.Semaphore(LAYER_CONCURRENCY)
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start receiving; wait (at most 5 s) until the channel exists or the layer failed."""
        if self._task is None:
            self._task = asyncio.create_task(self._receive_loop(), name="notifications-receive")
        if self._ready.is_set():
            return
        try:
            # Not asyncio.wait_for: before Python 3.12 it swallows a cancellation
            # that arrives as the wait ends, and the stream whose client left
            # would go on, its slot held, with nobody left to cancel it.
            async with asyncio.timeout(5.0):
                await self._ready.wait()
        except TimeoutError:
            pass  # a stuck layer only costs latency

    def stop(self) -> None:
        """Stop receiving and forget every group (the layer expires the channel)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._ready.clear()
        self.channel = None
        self.groups.clear()
        self.lingering.clear()

    async def join(self, names: list[str]) -> None:
        """Count one more stream needing each group; join those newly needed."""
        fresh = []
        for name in names:
            self.groups[name] = self.groups.get(name, 0) + 1
            if self.groups[name] == 1 and self.lingering.pop(name, None) is None:
                fresh.append(name)
        if fresh and self.channel is not None:
            # Shielded: a stream cancelled meanwhile must not leave a group
            # counted as joined that the layer never heard of.
            await asyncio.shield(self._add(self.channel, fresh))

    async def _add(self, channel: str, names: list[str]) -> None:
        try:
            async with self._calls:
                for name in names:
                    await self.layer.group_add(name, channel)
        except Exception as exc:
            self._failed(exc)

    def release(self, names: list[str]) -> None:
        """Count one stream less for each group; those no longer needed linger."""
        leave_at = time.monotonic() + LINGER
        for name in names:
            count = self.groups.get(name, 0) - 1
            if count > 0:
                self.groups[name] = count
            else:
                self.groups.pop(name, None)
                self.lingering[name] = leave_at

    def expire(self, now: float) -> None:
        """Leave the groups whose linger ran out."""
        expired = [name for name, at in self.lingering.items() if at <= now]
        for name in expired:
            del self.lingering[name]
        if expired and self.channel is not None:
            task = asyncio.create_task(self._leave(self.channel, expired))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def renew_if_due(self) -> None:
        """Join every group again once NOTIFICATIONS_GROUP_REJOIN has passed."""
        if (
            self.ok
            and self.channel is not None
            and time.monotonic() - self._joined_at > conf.GROUP_REJOIN
        ):
            try:
                await self._rejoin()
            except Exception as exc:
                self._failed(exc)

    async def _leave(self, channel: str, names: list[str]) -> None:
        try:
            async with self._calls:
                for name in names:
                    # (A stream may have joined it again meanwhile.)
                    if channel != self.channel or (
                        name not in self.groups and name not in self.lingering
                    ):
                        await self.layer.group_discard(name, channel)
        except Exception as exc:
            self._failed(exc)

    async def _rejoin(self) -> None:
        assert self.channel is not None  # noqa: S101  # narrows the type for mypy; both callers set it first
        async with self._calls:
            for name in [*self.groups, *self.lingering]:
                await self.layer.group_add(name, self.channel)
        self._joined_at = time.monotonic()

    def _failed(self, exc: BaseException) -> None:
        if self.ok:
            logger.warning(
                "Channel layer unavailable (%s); streams fall back to polling "
                "the database until it is back.",
                exc,
            )
        self.ok = False

    async def _receive_loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                if self.channel is None:
                    self.channel = await self.layer.new_channel("notifications.")
                    self._joined_at = 0.0
                if not self.ok or self._joined_at == 0.0:
                    await self._rejoin()
                    if not self.ok:
                        logger.warning("Channel layer is back; streams are catching up.")
                    self.ok = True
                    backoff = 0.5
                    self._on_recovered()
                self._ready.set()
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
                self._ready.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._on_message(message)
