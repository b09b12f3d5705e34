"""
The per-process hub: one channel-layer channel, one database reader, many streams.

Streams subscribe to the hub instead of the channel layer. The hub composes:

- ``registry``: the open streams and the budget they reserved;
- ``membership``: the channel-layer groups its streams need, joined once each;
- its fetch loop: on every poke, and at least every NOTIFICATIONS_POLL_INTERVAL,
  it reads what committed since its last position (``finality``), once for the
  whole process, encodes each row once and hands it to every local stream
  whose user may see it; read events likewise;
- its snooze check: at most every NOTIFICATIONS_POLL_INTERVAL, its read first
  wakes the snoozes that came due (``feed.fetch(wake=True)``), whose ``woken``
  events that read then hands out like any read event;
- its sweep: every half heartbeat, streams whose session ended stop (``signout``);
- its ticker: one timer that wakes the streams due a heartbeat;
- its writer: the streams that ``notifications.asgi`` serves get their frames
  written by the hub itself, right after each hand-out, into their ASGI
  ``send`` (see ``Subscription``): no task, future or generator per stream
  wakes up, and streams at the same cursor share one encoded frame.

The database stays the source of truth: a poke only says "look now".
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
import weakref
from collections import deque
from collections.abc import Hashable
from typing import Any

from . import db, feed, grouping, once, signout, sse
from .conf import conf
from .finality import Cursor, Position
from .membership import LINGER, Membership
from .models import Audience, Audiences
from .registry import Registry, Reservation

logger = logging.getLogger(__name__)

ALL_GROUP = "notifications.all"
_GROUP_NAME_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # what a channel-layer group name allows
# Read events are kept this long (seconds) for streams that missed their poke.
READ_EVENT_LIFE = 3600.0
PRUNE_EVERY = 300.0


def user_group(user_id: Hashable) -> str:
    """
    The channel-layer group that carries pokes for one user, whatever the type
    of their primary key: a key the layer would refuse in a group name (one
    with "@", or too long) is hashed.
    """
    text = str(user_id)
    if not _GROUP_NAME_SAFE.fullmatch(text):
        text = hashlib.sha256(text.encode()).hexdigest()[:40]
    return f"notifications.user.{text}"


# While rows keep coming (each read finds some, and the next poke comes before
# the previous read is BURST_GAP old), the fetch loop waits longer between
# reads, doubling from BURST_SPACING_MIN up to BURST_SPACING_MAX: a burst of a
# thousand rows of one group becomes a few reads and, coalesced, a few frames.
# A read that finds nothing, or rows after a quiet spell, resets the wait: a
# notification after a pause goes out at once.
BURST_GAP = 0.05
BURST_SPACING_MIN = 0.01
BURST_SPACING_MAX = 0.5

# Most rows in one Batch: a larger share of one read goes in several, so a
# stream that stops reading overflows its queue instead of taking them all.
BATCH_ROWS = 1000


class Batch:
    """
    New rows for one stream, in id order, as (id, finality key, JSON), and the
    position they complete: with them (and, when ``complete`` is False, with
    the batches that follow), the stream has everything up to ``end``.
    """

    __slots__ = ("rows", "end", "complete", "written")

    def __init__(self, rows: list[tuple[int, int, str]], end: Position, complete: bool = True):
        self.rows = rows
        self.end = end
        self.complete = complete
        self.written: Written | None = None


class Reads:
    """
    One user's read events from one read of the hub, as (finality key, JSON)
    in id order, and the read position they complete (``once.take_reads``).
    Queued after that read's batches.
    """

    __slots__ = ("events", "end", "written")

    def __init__(self, events: list[tuple[int, str]], end: Position):
        self.events = events
        self.end = end
        self.written: Written | None = None


class Written:
    """
    What one item (a ``Batch`` or ``Reads``) comes to for the streams the hub
    writes to, by the cursor they had: the ASGI message to send (None: nothing
    new for them) and their cursor after it. Streams at the same cursor (after
    the first broadcast, nearly all of them, as one object) share both.
    """

    __slots__ = ("cursor", "message", "after", "others")

    def __init__(self, cursor: Cursor, message: dict[str, Any] | None, after: Cursor):
        self.cursor = cursor
        self.message = message
        self.after = after
        self.others: dict[Cursor, tuple[dict[str, Any] | None, Cursor]] = {}


def body(chunk: bytes) -> dict[str, Any]:
    """The ASGI message that writes ``chunk`` to a stream."""
    return {"type": "http.response.body", "body": chunk, "more_body": True}


HEARTBEAT_MESSAGE = body(sse.HEARTBEAT)
END_MESSAGE = {"type": "http.response.body", "body": b"", "more_body": False}


def frames(items: Any, cursor: Cursor) -> tuple[bytes, Cursor]:
    """The frames for what the hub queued (``Batch`` and ``Reads`` in order), and the cursor after them."""
    out = []
    last = len(items) - 1
    for i, item in enumerate(items):
        if isinstance(item, Reads):
            taken, cursor = once.take_reads(cursor, item.events, item.end)
        else:
            following = items[i + 1] if i < last else None
            reads_follow = isinstance(following, Reads) and following.end == item.end
            taken, cursor = once.take(cursor, item.rows, item.end, item.complete, reads_follow)
        out.extend(encode(taken))
    return b"".join(out), cursor


def encode(taken: list[once.Frame]) -> list[bytes]:
    return [sse.frame(event, data, id=None if at is None else str(at)) for event, data, at in taken]


async def _resume(coro: Any, waiting: Any) -> None:
    """
    Run on a coroutine that yielded ``waiting`` to its driver (a future, or
    None for a bare yield), as a task would: an ASGI server's ``send()`` that
    had to wait for the client to read (flow control).
    """
    try:
        while True:
            try:
                if waiting is None:
                    await asyncio.sleep(0)
                else:
                    await waiting
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # the stream ends
                waiting = coro.throw(asyncio.CancelledError())
            except Exception as exc:
                waiting = coro.throw(exc)
            else:
                waiting = coro.send(None)
    except StopIteration:
        pass
    finally:
        coro.close()


def _batches(rows: list[tuple[int, int, str]], end: Position) -> list[Batch]:
    """``rows`` as batches of at most BATCH_ROWS; only the last one completes ``end``."""
    if len(rows) <= BATCH_ROWS:
        return [Batch(rows, end)]
    chunks = [rows[i : i + BATCH_ROWS] for i in range(0, len(rows), BATCH_ROWS)]
    return [Batch(chunk, end, complete=i == len(chunks) - 1) for i, chunk in enumerate(chunks)]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Subscription:
    """
    One stream's place in the hub: a bounded queue of pending items (``Batch``
    and ``Reads`` objects) and the future its stream waits on.
    The bound counts notifications, so a stream that stops reading holds at
    most NOTIFICATIONS_STREAM_QUEUE_SIZE of them before it is cut off.

    A wait costs one bare future: no task, no Event, no timer. The hub's one
    ticker wakes the streams whose wait ran out (for a heartbeat or the end of
    their life). With ten thousand streams woken per broadcast, what each wait
    allocates (and the garbage collector then walks) is most of the fan-out time.

    A subscription with ``send`` (an ASGI send callable: the streams that
    ``notifications.asgi`` serves) waits on nothing: once ``Hub.go_live``
    gave it its cursor, the hub writes its frames itself after each hand-out
    (``Hub._write_pending``), its heartbeats from the ticker, and ends it by
    cancelling its task, which waits for the client to leave. Its queue holds
    items only while it replays or while the server's ``send()`` waits for the
    client to read.
    """

    __slots__ = (
        "who",
        "reservation",
        "pending",
        "size",
        "waiter",
        "wake_at",
        "closed_reason",
        "start",
        "read_start",
        "task",
        "send",
        "cursor",
        "live",
        "beat_at",
        "deadline",
        "writing",
        "following",
        "stuck",
    )

    def __init__(
        self,
        who: Audiences,
        start: Position,
        reservation: Reservation,
        read_start: Position | None = None,
        send: Any = None,
    ):
        self.who = who
        self.reservation = reservation
        self.pending: deque[Batch | Reads] = deque()
        self.size = 0
        self.waiter: asyncio.Future[None] | None = None
        self.wake_at = 0.0
        self.closed_reason: str | None = None
        # Every row committed after ``start`` reaches this subscription.
        self.start = start
        # ...and every read event committed after ``read_start``.
        self.read_start = start if read_start is None else read_start
        # The task serving the stream: cancelled when the client stops reading,
        # since it may be stuck writing to a full socket.
        self.task = asyncio.current_task()
        # Written by the hub (see above):
        self.send = send
        self.cursor: Cursor | None = None  # the client's, once live
        self.live = False
        self.beat_at = 0.0  # the next heartbeat is due then
        self.deadline = 0.0  # the end of its life
        self.writing: asyncio.Task[None] | None = None  # a send() waiting for the client
        self.following = False  # its task waits for the client to leave
        self.stuck = False  # a write was abandoned: the response cannot end cleanly

    def push(self, item: Batch | Reads) -> bool:
        """Queue ``item``; False when the queue is full (the stream is too slow)."""
        count = len(item.rows) if isinstance(item, Batch) else len(item.events)
        if self.size and self.size + count > conf.STREAM_QUEUE_SIZE:
            return False  # (an empty queue takes any batch, or it could never drain)
        self.pending.append(item)
        self.size += count
        if self.send is None:
            self.wake()
        return True

    def wake(self) -> None:
        if self.waiter is not None:
            _wake(self.waiter)
        if self.send is not None and self.closed_reason is not None:
            self._end()

    def _end(self) -> None:
        """A written stream was closed: stop its write in progress, and its task's wait."""
        if self.writing is not None:
            self.stuck = True
            self.writing.cancel()
            self.writing = None
        if self.following and self.task is not None:
            self.following = False
            self.task.cancel()

    async def next(self, timeout: float) -> list[Batch | Reads] | None:
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
        self.registry: Registry[Subscription] = Registry()
        self.membership = Membership(self.on_message, self._poke)
        self.position: Position | None = None  # every row committed by here was handed out
        self.read_position: Position | None = None
        self._poked = asyncio.Event()
        self._epoch = 0
        self._init_lock = asyncio.Lock()
        self._loops: list[asyncio.Task[None]] = []
        self._idle_since: float | None = None
        self._pruned_at = 0.0
        self._spacing = 0.0  # the wait after a read while a burst lasts
        self._to_check: set[Any] = set()  # users whose logins changed (delivery.check_users)
        self._rows_at = -1e9  # when a read last found rows
        self._woken_at = -1e9  # when due snoozes were last woken
        self._dirty: list[Subscription] = []  # written streams given items since the last write

    # -- streams ---------------------------------------------------------------

    def reserve(self, user_id: Hashable) -> Reservation | None:
        """A slot for one more stream of ``user_id`` (see ``registry``), or None when full."""
        return self.registry.reserve(user_id)

    async def subscribe(
        self, who: Audiences, reservation: Reservation, send: Any = None
    ) -> Subscription | None:
        """
        Register a stream for ``who`` on its reserved slot and make sure its
        groups are joined. The subscription receives every row committed after
        its ``start`` that ``who`` may see. None if the slot was given back.
        With ``send`` (ASGI), the hub writes its frames once it is live
        (``go_live``).
        """
        if not self.registry.start(reservation):
            return None
        try:
            await self._start()
            while self.position is None:  # the last stream left while we started
                await self._start()
        except BaseException:
            self.registry.release(reservation)
            raise
        sub = Subscription(who, self.position, reservation, self.read_position, send=send)
        self._idle_since = None
        self.registry.add(who.user_id, sub)
        try:
            await self.membership.join([ALL_GROUP, user_group(who.user_id)])
        except BaseException:  # the client left while the groups were joined
            self.unsubscribe(sub)
            raise
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub`` and give its slot back; groups no stream needs linger, then go."""
        self.registry.release(sub.reservation)
        if not self.registry.remove(sub.who.user_id, sub):
            return
        self.membership.release([ALL_GROUP, user_group(sub.who.user_id)])
        if not self.registry.streams:
            self._idle()

    def _idle(self) -> None:
        """
        No stream left: forget the position, so the next stream starts from
        the present rather than from rows nobody here needed.
        """
        self._epoch += 1
        self._idle_since = time.monotonic()
        self.position = None
        self.read_position = None

    def _stop(self) -> None:
        """Idle for LINGER: stop receiving and polling. An idle process costs nothing."""
        self._idle()
        self._idle_since = None
        for task in self._loops:
            task.cancel()
        self._loops = []
        self.membership.stop()

    def stats(self) -> dict[str, Any]:
        return {
            "streams": len(self.registry.streams),
            "reserved": self.registry.slots,
            "users": len(self.registry.by_user),
            "groups": sorted(self.membership.groups),
            "lingering": len(self.membership.lingering),
            "position": None if self.position is None else str(self.position),
            "layer_ok": self.membership.ok,
        }

    def streams_of(self, user_id: Hashable) -> int:
        return len(self.registry.by_user.get(user_id, ()))

    async def _start(self) -> None:
        async with self._init_lock:
            if self.position is None:
                self.position, self.read_position = await db.run(feed.position_now)
            if not self._loops:
                self._loops = [
                    asyncio.create_task(self._fetch_loop(), name="notifications-fetch"),
                    asyncio.create_task(self._sweep_loop(), name="notifications-sweep"),
                    asyncio.create_task(self._tick_loop(), name="notifications-tick"),
                ]
        # The groups must be joined before replay; a stuck layer only costs latency.
        await self.membership.start()

    # -- the channel layer -------------------------------------------------------

    def on_message(self, message: dict[str, Any]) -> None:
        """A message of the channel layer (or handed over in this process: ``delivery``)."""
        kind = message.get("type")
        if kind == "notifications.check":
            self._take_check(message)
            self._poke()
        elif kind in ("notifications.poke", "notifications.read"):
            self._poke()

    def _take_check(self, message: dict[str, Any]) -> None:
        """End the streams a check ends now; note the users whose logins are checked next."""
        ending, users = signout.on_check(message, self.registry.by_user)
        for sub in ending:
            self._close(sub, "signed out")
        self._to_check |= users

    def _take_kept_checks(self, fetched: feed.Fetched) -> feed.Fetched:
        """
        Take the login checks kept as read events out of ``fetched`` (they are
        for this hub, not for its clients) and take them in: they committed
        before any row of ``fetched`` that came after them, so they are
        applied before those rows go out, whatever the channel layer did
        with the same check.
        """
        fetched.reads, checks = signout.login_checks(fetched.reads)
        for message in checks:
            self._take_check(message)
        return fetched

    def _poke(self) -> None:
        self._poked.set()

    # -- the database ------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        """Read what committed on every poke and at least every POLL_INTERVAL."""
        while True:
            try:
                # (asyncio.timeout: wait_for may swallow the cancellation that stops the hub.)
                async with asyncio.timeout(conf.POLL_INTERVAL):
                    await self._poked.wait()
            except TimeoutError:
                pass
            self._poked.clear()
            await self.membership.renew_if_due()
            began = time.monotonic()
            try:
                found = await self._fetch()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Reading new notifications failed; retrying.")
                await asyncio.sleep(conf.POLL_INTERVAL)
                continue
            if self._pace(found, began, time.monotonic()):
                await asyncio.sleep(self._spacing)  # pokes meanwhile wait for the next read

    def _pace(self, found: bool, began: float, ended: float) -> bool:
        """
        Update the wait between reads (see BURST_GAP), for a read from
        ``began`` to ``ended``; True when the loop should wait. Rows keep
        coming when this read began within the wait and BURST_GAP of the end
        of the last read that found some: how long the reads themselves take
        (a busy database) does not end a burst.
        """
        if found and began - self._rows_at < self._spacing + BURST_GAP:
            self._spacing = min(BURST_SPACING_MAX, max(BURST_SPACING_MIN, self._spacing * 2))
        else:
            self._spacing = 0.0
        if found:
            self._rows_at = ended
        return self._spacing > 0

    async def _fetch(self) -> bool:
        """
        Hand every row and read event committed since the hub's position to the
        streams. True when there were new rows.
        """
        start, read_start = self.position, self.read_position
        if start is None or read_start is None or not self.registry.streams:
            return False
        epoch = self._epoch
        await self._check_now()
        users = frozenset(self.registry.by_user)
        fetched = self._take_kept_checks(
            await db.run(feed.fetch, start, read_start, users, self._wake_is_due())
        )
        read = once.Read(start, fetched.end, users)
        # Until the hand-out below, every await lets in streams the read does
        # not serve (they start at ``start`` too, but their users' rows were
        # not read) and logins that changed meanwhile. Read the former, check
        # the latter, and ask again, until neither is left: only then hand out,
        # with nothing awaited in between (``once``).
        while epoch == self._epoch:
            if late := read.unserved(self.registry.by_user):
                more = await db.run(feed.fetch_late, start, read_start, fetched, late)
                fetched.add(self._take_kept_checks(more))
                read = read.taking(late)
            elif self._to_check:  # a login that changed is checked before its rows go out
                await self._check_now()
            else:
                break
        if epoch != self._epoch:  # every stream left while we read
            return False
        self.position, self.read_position = fetched.end, fetched.read_end
        self._dispatch(fetched.rows, fetched.end)
        reads: dict[int, list[tuple[int, str]]] = {}
        for user_id, key, payload in fetched.reads:
            reads.setdefault(user_id, []).append((key, payload))
        for user_id, events in reads.items():
            item = Reads(events, fetched.read_end)
            for sub in list(self.registry.by_user.get(user_id, ())):
                self._push(sub, item)
        self._write_all()
        return bool(fetched.rows)

    def _wake_is_due(self) -> bool:
        """
        Whether this read should first wake the snoozes that came due (at most
        every POLL_INTERVAL): each becomes a ``woken`` read event, committed
        before the read, which hands it out (and replays give it to streams
        that missed it).
        """
        now = time.monotonic()
        if now - self._woken_at < conf.POLL_INTERVAL:
            return False
        self._woken_at = now
        return True

    def _dispatch(self, rows: list[feed.Row], end: Position) -> None:
        """
        Route ``rows`` to streams; no await inside.

        Streams that get the same rows share one ``Batch``: a broadcast to ten
        thousand streams allocates one, not ten thousand lists. Of the rows of
        one group, only the newest goes out: its JSON carries the whole group
        (``grouping.coalesce``), as a replay would send it.
        """
        if any(row.notification_group for row in rows):
            kept = grouping.coalesce(
                [
                    (row.id, row.json, (row.recipient_id, row.notification_group), row)
                    if row.notification_group
                    else (row.id, row.json, None, row)
                    for row in rows
                ]
            )
            rows = [entry[3] for entry in kept]
        routed: list[tuple[tuple[int, int, str], Any]] = []
        streams = self.registry.streams
        for row in rows:
            if row.audience == Audience.USER:
                targets: Any = self.registry.by_user.get(row.recipient_id, ())
            elif row.audience == Audience.ALL:
                targets = streams
            else:
                targets = [
                    s
                    for s in streams
                    if s.who.may_see(row.audience, row.recipient_id, row.group_id)
                ]
            if targets:
                routed.append(((row.id, row.key, row.json), targets))
        if len(routed) == 1:
            frame, targets = routed[0]
            batch = Batch([frame], end)
            for sub in list(targets):
                self._push(sub, batch)
            return
        per_stream: dict[Subscription, list[tuple[int, int, str]]] = {}
        for frame, targets in routed:
            for sub in targets:
                frames = per_stream.get(sub)
                if frames is None:
                    per_stream[sub] = [frame]
                else:
                    frames.append(frame)
        shared: dict[tuple[int, ...], list[Batch]] = {}
        for sub, frames in per_stream.items():
            key = tuple(nid for nid, _, _ in frames)
            same = shared.get(key)
            if same is None:
                same = shared[key] = _batches(frames, end)
            for batch in same:
                self._push(sub, batch)

    # -- timers ------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        """Wake the streams whose wait ran out: one timer for the whole process."""
        tick = min(1.0, max(0.01, conf.HEARTBEAT / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            due: list[Subscription] = []
            for sub in self.registry.streams:
                if sub.waiter is not None and sub.wake_at <= now:
                    _wake(sub.waiter)
                elif sub.live and (sub.beat_at <= now or sub.deadline <= now):
                    due.append(sub)
            for sub in due:
                if sub.deadline <= now:
                    self._close(sub, "ended")
                elif sub.closed_reason is None and sub.writing is None:
                    self._write(sub, HEARTBEAT_MESSAGE, now)
            self.registry.expire_unused(now)
            self.membership.expire(now)
            if (
                not self.registry.streams
                and not self.membership.lingering
                and self._idle_since is not None
                and now - self._idle_since >= LINGER
            ):
                self._stop()
                return

    async def _sweep_loop(self) -> None:
        """
        Check sessions every half heartbeat, so a signed-out stream ends within
        one. A loop of its own, on its own database lane: a sweep of thousands
        of sessions never holds up the delivery of a notification.
        """
        while True:
            await asyncio.sleep(conf.HEARTBEAT / 2)
            try:
                if self.registry.streams:
                    await self._sign_out()
                if time.monotonic() - self._pruned_at > PRUNE_EVERY:
                    self._pruned_at = time.monotonic()
                    await db.run(feed.prune_read_events, READ_EVENT_LIFE)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Checking stream sessions failed; retrying.")

    async def _sign_out(self, subs: list[Subscription] | None = None) -> None:
        """End the streams (of ``subs``, or all) whose login Django would no longer accept."""
        if subs is None:
            subs = list(self.registry.streams)
        ended, inactive = await db.run(signout.signed_out, [s.who for s in subs])
        for sub in subs:
            if sub.closed_reason is None and (
                sub.who.session_key in ended or sub.who.user_id in inactive
            ):
                self._close(sub, "signed out")

    async def _check_now(self) -> None:
        """Check the logins of the users ``delivery.check_users`` named, before the next rows go out."""
        if not self._to_check:
            return
        users, self._to_check = self._to_check, set()
        subs = [sub for uid in users for sub in self.registry.by_user.get(uid, ())]
        if subs:
            await self._sign_out(subs)

    # -- streams, continued --------------------------------------------------------

    def _push(self, sub: Subscription, item: Batch | Reads) -> None:
        if sub.closed_reason is not None:
            return
        if not sub.push(item):
            logger.info("Cutting off a stream that stopped reading (user %s).", sub.who.user_id)
            self._close(sub, "overflow")
            if sub.send is None and sub.task is not None and sub.task is not asyncio.current_task():
                # It may be blocked writing to a client that stopped reading.
                sub.task.cancel()
        elif sub.send is not None and len(sub.pending) == 1:
            self._dirty.append(sub)  # written once the hand-out is done (``_write_all``)

    def _close(self, sub: Subscription, reason: str) -> None:
        """End a stream: it stops at its next wake-up (the client resumes or is refused)."""
        sub.closed_reason = reason
        sub.wake()
        self.unsubscribe(sub)


    # -- writing to the streams ------------------------------------------------------

    def go_live(self, sub: Subscription, cursor: Cursor, deadline: float) -> None:
        """
        A written stream sent its opening frames, which leave the client at
        ``cursor``: from now on the hub writes to it, starting with what was
        queued while it replayed. It ends at ``deadline`` (monotonic).
        """
        now = time.monotonic()
        sub.cursor = cursor
        sub.deadline = deadline
        sub.beat_at = now + conf.HEARTBEAT
        sub.live = True
        self._write_pending(sub, now)

    def _write_all(self) -> None:
        """Write what the last hand-out queued for the written streams."""
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, []
        now = time.monotonic()
        for sub in dirty:
            self._write_pending(sub, now)

    def _write_pending(self, sub: Subscription, now: float) -> None:
        """
        Write ``sub``'s queued items as frames and move its cursor past them.
        The frames of one item for one cursor are encoded once and the message
        is shared by every stream at that cursor: a broadcast allocates one
        frame, not one per stream.
        """
        if not sub.live or sub.writing is not None or sub.closed_reason is not None or not sub.pending:
            return
        cursor = sub.cursor
        assert cursor is not None  # noqa: S101  # set with live
        pending = sub.pending
        if len(pending) == 1:
            item = pending[0]
            written = item.written
            if written is not None and written.cursor is cursor:
                message, after = written.message, written.after
            else:
                known = None if written is None else written.others.get(cursor)
                if known is None:
                    chunk, after = frames(pending, cursor)
                    message = body(chunk) if chunk else None
                    if written is None:
                        item.written = Written(cursor, message, after)
                    else:
                        written.others[cursor] = (message, after)
                else:
                    message, after = known
        else:
            chunk, after = frames(pending, cursor)
            message = body(chunk) if chunk else None
        pending.clear()
        sub.size = 0
        sub.cursor = after
        if message is not None:
            self._write(sub, message, now)

    def _write(self, sub: Subscription, message: dict[str, Any], now: float) -> None:
        """
        Send ``message`` to a written stream. The server's ``send()`` nearly
        always completes at once; when it must wait for the client to read,
        it finishes in a task of its own, and the stream's next items queue
        until then (a client that never reads overflows its queue).
        """
        sub.beat_at = now + conf.HEARTBEAT
        sending = sub.send(message)
        try:
            waiting = sending.send(None)
        except StopIteration:
            return
        except Exception:
            sending.close()
            logger.debug("Writing to a stream failed; ending it.", exc_info=True)
            self._close(sub, "gone")
            return
        sub.writing = asyncio.get_running_loop().create_task(self._finish_write(sub, sending, waiting))

    async def _finish_write(self, sub: Subscription, sending: Any, waiting: Any) -> None:
        try:
            await _resume(sending, waiting)
        except asyncio.CancelledError:
            raise  # the stream was closed (``Subscription._end``)
        except Exception:
            logger.debug("Writing to a stream failed; ending it.", exc_info=True)
            sub.writing = None
            self._close(sub, "gone")
            return
        sub.writing = None
        self._write_pending(sub, time.monotonic())


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def existing_hub(loop: asyncio.AbstractEventLoop) -> Hub | None:
    """The hub of ``loop``, if it has one."""
    return _hubs.get(loop)


def get_hub() -> Hub:
    """The hub of the running event loop, created on first use."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = Hub()
    return hub
