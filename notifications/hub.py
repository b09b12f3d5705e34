"""
The per-process hub: one channel-layer channel, one database reader, many streams.

Streams subscribe to the hub instead of the channel layer. The hub joins the
channel-layer groups its streams need (reference-counted), receives pokes on its
one channel, reads the new rows once per poke, encodes each row's JSON once, and
hands the rows to every local stream whose user may see them. A periodic check
of the database catches rows whose poke never arrived (another process on the
in-memory layer, a layer outage), so the database stays the source of truth.

The hub also tracks the global watermark ``G``: every id up to ``G`` is final
(committed and seen, or a hole older than the gap grace: a rolled-back
transaction). Streams use it to keep their cursors short.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import weakref
from collections import deque
from typing import Any

from channels.layers import get_channel_layer

from . import db, feed
from .conf import conf
from .models import Audience, Audiences

logger = logging.getLogger(__name__)

ALL_GROUP = "notifications.all"
FETCH_LIMIT = 1000
# Seconds a group stays joined after its last stream left, and the hub keeps
# running after the last stream: the streams of a reconnect storm (a deploy, a
# proxy restart) come back to a hub that needs no channel-layer call for them.
LINGER = 30.0
# Channel-layer calls the hub makes at once; ten thousand streams opening
# together must not exhaust the layer's connection pool.
LAYER_CONCURRENCY = 32


def user_group(user_id: int) -> str:
    """The channel-layer group that carries pokes and read events for one user."""
    return f"notifications.user.{user_id}"


class Batch:
    """New rows for one stream, and the hub watermark once they were handed out."""

    __slots__ = ("rows", "watermark")

    def __init__(self, rows: list[tuple[int, str]], watermark: int):
        self.rows = rows
        self.watermark = watermark


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscription:
    """
    One stream's place in the hub: a bounded queue of pending items (``Batch``
    objects and read-event JSON strings) and the future its stream waits on.
    The bound counts notifications, so a stream that stops reading holds at
    most NOTIFICATIONS_STREAM_QUEUE_SIZE of them before it is cut off.

    A wait costs one bare future: no task, no Event, no timer. The hub's one
    ticker wakes the streams whose wait ran out (for a heartbeat or the end of
    their life). With ten thousand streams woken per broadcast, what each wait
    allocates (and the garbage collector then walks) is most of the fan-out time.
    """

    __slots__ = (
        "who",
        "pending",
        "size",
        "waiter",
        "wake_at",
        "closed_reason",
        "watermark_at_start",
        "task",
    )

    def __init__(self, who: Audiences, watermark: int):
        self.who = who
        self.pending: deque[Batch | str] = deque()
        self.size = 0
        self.waiter: asyncio.Future[None] | None = None
        self.wake_at = 0.0
        self.closed_reason: str | None = None
        self.watermark_at_start = watermark
        # The task serving the stream: cancelled when the client stops reading,
        # since it may be stuck writing to a full socket.
        self.task = asyncio.current_task()

    def push(self, item: Batch | str) -> bool:
        """Queue ``item``; False when the queue is full (the stream is too slow)."""
        count = len(item.rows) if isinstance(item, Batch) else 1
        if self.size and self.size + count > conf.STREAM_QUEUE_SIZE:
            return False  # (an empty queue takes any batch, or it could never drain)
        self.pending.append(item)
        self.size += count
        self.wake()
        return True

    def wake(self) -> None:
        if self.waiter is not None:
            _wake(self.waiter)

    async def next(self, timeout: float) -> list[Batch | str] | None:
        """Everything queued, waiting up to ``timeout``; None when nothing came."""
        if not self.pending and self.closed_reason is None:
            self.wake_at = time.monotonic() + timeout  # the hub's ticker sees to it
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
            if not self.pending:
                return None
        items = list(self.pending)
        self.pending.clear()
        self.size = 0
        return items


class Hub:
    def __init__(self) -> None:
        self.layer = get_channel_layer(conf.CHANNEL_LAYER)
        self.channel: str | None = None
        self.subscriptions: set[Subscription] = set()
        self.by_user: dict[int, set[Subscription]] = {}
        self.groups: dict[str, int] = {}
        self.lingering: dict[str, float] = {}  # group -> when it is left
        self.watermark: int | None = None
        self.seen: set[int] = set()
        self.gap_since: dict[int, float] = {}
        self.layer_ok = True
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._epoch = 0
        self._init_lock = asyncio.Lock()
        self._loops: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._joined_at = time.monotonic()
        self._idle_since: float | None = None
        self._layer_calls = asyncio.Semaphore(LAYER_CONCURRENCY)

    # -- streams ---------------------------------------------------------------

    def has_room(self, user_id: int) -> bool:
        """Is there budget for one more stream, globally and for this user?"""
        return len(self.subscriptions) < conf.MAX_STREAMS and len(
            self.by_user.get(user_id, ())
        ) < conf.MAX_STREAMS_PER_USER

    async def subscribe(self, who: Audiences) -> Subscription:
        """
        Register a stream for ``who`` and make sure its groups are joined. The
        subscription receives every row committed from now on that ``who`` may see.
        """
        await self._start()
        while self.watermark is None:  # the last stream left while we started
            await self._start()
        sub = Subscription(who, self.watermark)
        self._idle_since = None
        self.subscriptions.add(sub)
        self.by_user.setdefault(who.user_id, set()).add(sub)
        await self._join([ALL_GROUP, user_group(who.user_id)])
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub``; groups no stream needs any more are left after LINGER."""
        if sub not in self.subscriptions:
            return
        self.subscriptions.discard(sub)
        user_subs = self.by_user.get(sub.who.user_id)
        if user_subs is not None:
            user_subs.discard(sub)
            if not user_subs:
                del self.by_user[sub.who.user_id]
        leave_at = time.monotonic() + LINGER
        for name in (ALL_GROUP, user_group(sub.who.user_id)):
            if self._release(name):
                self.lingering[name] = leave_at
        if not self.subscriptions:
            self._idle()

    def _idle(self) -> None:
        """
        No stream left: forget the watermark, so the next stream starts from
        the present rather than from rows nobody here needed.
        """
        self._epoch += 1
        self._idle_since = time.monotonic()
        self.watermark = None
        self.seen.clear()
        self.gap_since.clear()

    def _stop(self) -> None:
        """Idle for LINGER: stop receiving and polling. An idle process costs nothing."""
        self._idle()
        self._idle_since = None
        self.lingering.clear()
        for task in self._loops:
            task.cancel()
        self._loops = []
        self._ready.clear()
        self.channel = None

    def stats(self) -> dict[str, Any]:
        return {
            "streams": len(self.subscriptions),
            "users": len(self.by_user),
            "groups": sorted(self.groups),
            "lingering": len(self.lingering),
            "watermark": self.watermark,
            "layer_ok": self.layer_ok,
        }

    # -- channel layer ---------------------------------------------------------

    async def _start(self) -> None:
        async with self._init_lock:
            if self.watermark is None:
                self.watermark = await db.run(feed.safe_watermark)
            if not self._loops:
                self._loops = [
                    asyncio.create_task(self._receive_loop(), name="notifications-receive"),
                    asyncio.create_task(self._fetch_loop(), name="notifications-fetch"),
                    asyncio.create_task(self._sweep_loop(), name="notifications-sweep"),
                    asyncio.create_task(self._tick_loop(), name="notifications-tick"),
                ]
        # Wait for the hub's channel (or for the layer to fail) so the groups are
        # joined before replay; a stuck layer only costs polling latency.
        try:
            await asyncio.wait_for(self._ready.wait(), 5.0)
        except TimeoutError:
            pass

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _release(self, name: str) -> bool:
        count = self.groups.get(name, 0) - 1
        if count > 0:
            self.groups[name] = count
            return False
        self.groups.pop(name, None)
        return True

    async def _join(self, names: list[str]) -> None:
        fresh = []
        for name in names:
            self.groups[name] = self.groups.get(name, 0) + 1
            if self.groups[name] == 1 and self.lingering.pop(name, None) is None:
                fresh.append(name)
        if fresh and self.channel is not None:
            try:
                async with self._layer_calls:
                    for name in fresh:
                        await self.layer.group_add(name, self.channel)
            except Exception as exc:
                self._layer_failed(exc)

    def _expire_lingering(self, now: float) -> None:
        """Leave the groups whose LINGER ran out; stop when nothing is left."""
        expired = [name for name, at in self.lingering.items() if at <= now]
        for name in expired:
            del self.lingering[name]
        if expired and self.channel is not None:
            self._spawn(self._leave(self.channel, expired))
        if (
            not self.subscriptions
            and not self.lingering
            and self._idle_since is not None
            and now - self._idle_since >= LINGER
        ):
            self._stop()

    async def _leave(self, channel: str, names: list[str]) -> None:
        try:
            async with self._layer_calls:
                for name in names:
                    # (A stream may have joined it again meanwhile.)
                    if channel != self.channel or (
                        name not in self.groups and name not in self.lingering
                    ):
                        await self.layer.group_discard(name, channel)
        except Exception as exc:
            self._layer_failed(exc)

    async def _rejoin(self) -> None:
        assert self.channel is not None
        async with self._layer_calls:
            for name in [*self.groups, *self.lingering]:
                await self.layer.group_add(name, self.channel)
        self._joined_at = time.monotonic()

    def _layer_failed(self, exc: BaseException) -> None:
        if self.layer_ok:
            logger.warning(
                "Channel layer unavailable (%s); streams fall back to polling "
                "the database until it is back.",
                exc,
            )
        self.layer_ok = False

    async def _receive_loop(self) -> None:
        backoff = 0.5
        while True:
            try:
                if self.channel is None:
                    self.channel = await self.layer.new_channel("notifications.")
                    self._joined_at = 0.0
                if not self.layer_ok or self._joined_at == 0.0:
                    await self._rejoin()
                    if not self.layer_ok:
                        logger.warning("Channel layer is back; streams are catching up.")
                    self.layer_ok = True
                    backoff = 0.5
                    self._wake.set()
                self._ready.set()
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._layer_failed(exc)
                self._ready.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            self._on_message(message)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "notifications.poke":
            self._wake.set()
        elif kind == "notifications.read":
            for sub in list(self.by_user.get(message.get("user"), ())):  # type: ignore[arg-type]
                self._push(sub, message["payload"])

    # -- database ------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        """Read new rows on every poke and at least every POLL_INTERVAL."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), conf.POLL_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            if time.monotonic() - self._joined_at > conf.GROUP_REJOIN and self.layer_ok:
                try:
                    await self._rejoin()
                except Exception as exc:
                    self._layer_failed(exc)
            try:
                await self._fetch()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Reading new notifications failed; retrying.")
                await asyncio.sleep(conf.POLL_INTERVAL)

    async def _tick_loop(self) -> None:
        """Wake the streams whose wait ran out: one timer for the whole process."""
        tick = min(1.0, max(0.01, conf.HEARTBEAT / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for sub in self.subscriptions:
                if sub.waiter is not None and sub.wake_at <= now:
                    _wake(sub.waiter)
            if self.lingering or self._idle_since is not None:
                self._expire_lingering(now)

    async def _sweep_loop(self) -> None:
        """
        Check sessions every half heartbeat, so a signed-out stream ends within
        one. A loop of its own, on its own database lane: a sweep of thousands
        of sessions never holds up the delivery of a notification.
        """
        while True:
            await asyncio.sleep(conf.HEARTBEAT / 2)
            if not self.subscriptions:
                continue
            try:
                await self._sign_out()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Checking stream sessions failed; retrying.")

    async def _sign_out(self) -> None:
        """End the streams of sessions that ended and of users made inactive."""
        streams = [s.who for s in self.subscriptions]
        ended, inactive = await db.run(feed.signed_out, streams)
        for sub in list(self.subscriptions):
            if sub.who.session_key in ended or sub.who.user_id in inactive:
                self._close(sub, "signed out")

    async def _fetch(self) -> None:
        """Read every row after the watermark and hand it to the streams that may see it."""
        while self.subscriptions and self.watermark is not None:
            epoch = self._epoch
            rows = await db.run(
                feed.rows_after, self.watermark, set(self.seen), FETCH_LIMIT, frozenset(self.by_user)
            )
            if epoch != self._epoch:  # every stream left while we read
                return
            # A stream may have subscribed while the rows were read, for a user
            # whose rows were therefore not rendered. Its replay may have run
            # before those rows committed: render them now, or no path would
            # deliver them while the watermark moves past.
            while late := {r.id for r in rows if not r.rendered and r.recipient_id in self.by_user}:
                jsons = await db.run(feed.render, late)
                if epoch != self._epoch:
                    return
                rows = [
                    dataclasses.replace(r, json=jsons.get(r.id), rendered=True) if r.id in late else r
                    for r in rows
                ]
            self._dispatch(rows)
            if len(rows) < FETCH_LIMIT:
                return

    def _dispatch(self, rows: list[feed.Row]) -> None:
        """
        Route ``rows`` to streams and advance the watermark; no await inside.

        Streams that get the same rows share one ``Batch``: a broadcast to ten
        thousand streams allocates one, not ten thousand lists.
        """
        routed: list[tuple[tuple[int, str], Any]] = []
        for row in rows:
            self.seen.add(row.id)
            if row.json is None:
                continue
            if row.audience == Audience.USER:
                targets: Any = self.by_user.get(row.recipient_id, ())  # type: ignore[arg-type]
            elif row.audience == Audience.ALL:
                targets = self.subscriptions
            else:
                targets = [
                    s
                    for s in self.subscriptions
                    if s.who.may_see(row.audience, row.recipient_id, row.group_id)
                ]
            if targets:
                routed.append(((row.id, row.json), targets))
        self._advance_watermark()
        watermark = self.watermark
        assert watermark is not None
        if len(routed) == 1:
            frame, targets = routed[0]
            batch = Batch([frame], watermark)
            for sub in list(targets):
                self._push(sub, batch)
            return
        per_stream: dict[Subscription, list[tuple[int, str]]] = {}
        for frame, targets in routed:
            for sub in targets:
                frames = per_stream.get(sub)
                if frames is None:
                    per_stream[sub] = [frame]
                else:
                    frames.append(frame)
        shared: dict[tuple[int, ...], Batch] = {}
        for sub, frames in per_stream.items():
            key = tuple(nid for nid, _ in frames)
            same = shared.get(key)
            if same is None:
                same = shared[key] = Batch(frames, watermark)
            self._push(sub, same)
        # Streams with nothing new still learn the watermark through an empty queue.

    def _advance_watermark(self) -> None:
        assert self.watermark is not None
        grace = conf.GAP_GRACE
        now = time.monotonic()
        for nid in sorted(self.seen):
            if nid != self.watermark + 1:
                since = self.gap_since.setdefault(nid, now)
                if now - since < grace:
                    break
            self.watermark = nid
            self.seen.discard(nid)
            self.gap_since.pop(nid, None)

    def _push(self, sub: Subscription, item: Batch | str) -> None:
        if sub.closed_reason is None and not sub.push(item):
            self._close(sub, "overflow")
            if sub.task is not None and sub.task is not asyncio.current_task():
                # It may be blocked writing to a client that stopped reading.
                logger.info("Cutting off a stream that stopped reading (user %s).", sub.who.user_id)
                sub.task.cancel()

    def _close(self, sub: Subscription, reason: str) -> None:
        """End a stream: it stops at its next wake-up (the client resumes or is refused)."""
        sub.closed_reason = reason
        sub.wake()
        self.unsubscribe(sub)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = (
    weakref.WeakKeyDictionary()
)


def get_hub() -> Hub:
    """The hub of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
