"""
The body of the SSE stream: subscribe, replay what the client missed, follow live.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from django.db import DatabaseError

from . import db, feed, once, sse
from .conf import conf
from .finality import Cursor
from .hub import END_MESSAGE, Batch, Hub, Reads, Subscription, body, encode, frames
from .models import Audiences
from .registry import Reservation
from .render import dumps

logger = logging.getLogger(__name__)


class EventStream:
    """
    The response body of one stream. Django closes it when the response ends
    (``close()`` runs on a worker thread), which gives the stream's slot back
    even if the body never started: a client that left while the project's
    middleware ran, say.

    The handlers of ``notifications.asgi`` do not iterate it: once the
    response has passed the middleware they ``take()`` it, send the headers,
    let Django close the response and the request, and ``serve()`` it on the
    ASGI connection, where the hub writes its frames (``follow``).
    """

    def __init__(
        self,
        hub: Hub,
        who: Audiences,
        reservation: Reservation,
        cursor: Cursor | None,
        *,
        reset: bool,
    ):
        self.hub = hub
        self.who = who
        self.reservation = reservation
        self.cursor = cursor
        self.reset = reset
        self.taken = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return event_stream(self.hub, self.who, self.reservation, self.cursor, reset=self.reset)

    def take(self) -> bool:
        """Keep the slot past ``close()``: ``serve()`` will stream it. False if it was given back."""
        if self.reservation.released:
            return False
        self.taken = True
        return True

    async def serve(self, receive: Any, send: Any) -> None:
        """Stream on the ASGI connection, the response's headers sent; gives the slot back."""
        try:
            await follow(self.hub, self.who, self.reservation, self.cursor, self.reset, receive, send)
        finally:
            self.hub.registry.release(self.reservation)

    def close(self) -> None:
        if not self.taken:
            self.hub.registry.release(self.reservation)


async def follow(
    hub: Hub,
    who: Audiences,
    reservation: Reservation,
    cursor: Cursor | None,
    reset: bool,
    receive: Any,
    send: Any,
) -> None:
    """
    ``event_stream`` on an ASGI connection whose response has started: the
    same frames, written by the hub. This coroutine subscribes, replays and
    sends the opening frames, hands the stream to the hub (``Hub.go_live``)
    and then only waits for the client to leave; the hub ends the stream by
    cancelling that wait (its life is over, its session ended, it overflowed).
    So an open stream holds its subscription and this one suspended coroutine:
    no request, response or middleware of Django, no task of its own, and
    nothing that wakes up per broadcast.
    """
    sub = await hub.subscribe(who, reservation, send=send)
    if sub is None:
        await send(END_MESSAGE)
        return
    end = True  # end the response (not when the client left, or the server stops the task)
    try:
        try:
            opening, cursor = await _replay(sub, cursor, reset=reset)
        except DatabaseError:
            logger.warning("Replay failed: database unavailable.", exc_info=True)
            return
        except SignedOut:
            return  # the client reconnects: refused, or with its rights as they are now
        await send(body(opening))
        life = conf.MAX_STREAM_LIFE * random.uniform(0.9, 1.0)  # spread reconnects  # noqa: S311  # spreads reconnects in time; nothing secret
        hub.go_live(sub, cursor, time.monotonic() + life)
        if sub.closed_reason is not None:
            return
        task = asyncio.current_task()
        assert task is not None  # noqa: S101  # a coroutine of the server's task
        sub.following = True
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
            end = False
        except asyncio.CancelledError:
            if sub.closed_reason is None or task.uncancel() > 0:
                end = False
                raise  # not the hub's: the server is stopping
        finally:
            sub.following = False
    except asyncio.CancelledError:
        end = False
        raise
    finally:
        hub.unsubscribe(sub)
        if end and not sub.stuck:
            await send(END_MESSAGE)


async def event_stream(
    hub: Hub, who: Audiences, reservation: Reservation, cursor: Cursor | None, *, reset: bool
) -> AsyncIterator[bytes]:
    """
    Yield SSE frames for the user described by ``who``, starting after ``cursor``
    (None: from now on). ``reset`` tells the client its cursor was unusable.

    The stream subscribes to the hub before it replays, so nothing committed in
    between is missed; what arrives twice is dropped by the cursor. It ends after
    the maximum stream life, when the client leaves, when its session ends, or
    when it falls too far behind; the client resumes from its last cursor.
    """
    sub = await hub.subscribe(who, reservation)
    if sub is None:
        return
    try:
        try:
            opening, cursor = await _replay(sub, cursor, reset=reset)
        except DatabaseError:
            # The client reconnects after ``retry`` with the same cursor.
            logger.warning("Replay failed: database unavailable.", exc_info=True)
            return
        except SignedOut:
            return  # the client reconnects: refused, or with its rights as they are now
        yield opening
        # Following live, inline rather than in a nested generator: every frame
        # to every stream passes here, so one generator level is measurable.
        life = conf.MAX_STREAM_LIFE * random.uniform(0.9, 1.0)  # spread reconnects  # noqa: S311  # spreads reconnects in time; nothing secret
        deadline = time.monotonic() + life
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            items = await sub.next(min(conf.HEARTBEAT, remaining))
            if sub.closed_reason is not None:
                return
            if items is None:
                if deadline - time.monotonic() > 0:
                    yield sse.HEARTBEAT
                continue
            chunk, cursor = _frames(items, cursor)
            if chunk:
                yield chunk
    finally:
        hub.unsubscribe(sub)


class SignedOut(Exception):
    """The replay found that Django would no longer accept the stream's login: it ends, sending nothing."""


# Streams opening together (a reconnect storm) are replayed together.
_replay_batched = db.Batched(feed.replay_many)


async def _replay(sub: Subscription, cursor: Cursor | None, *, reset: bool) -> tuple[bytes, Cursor]:
    """
    The opening frames: retry, maybe reset, the cursor, then what was missed.
    Returns them and the stream's cursor after them.
    """
    frames = [sse.retry(conf.RETRY_MS)]
    if cursor is None and not reset:
        # A new client: everything after the hub's position reaches it live.
        start = Cursor.at(sub.start, sub.read_start)
        frames.append(sse.frame("open", dumps({"cursor": str(start)}), id=str(start)))
        return b"".join(frames), start
    missed = None
    if cursor is not None:
        missed = await _replay_batched((sub.who, cursor, conf.REPLAY_LIMIT))
        if missed.signed_out:
            raise SignedOut
        if not missed.usable or missed.overflow:
            reset = True
    if reset or cursor is None or missed is None:
        # Unusable (or too far behind): the client reloads its list instead.
        if missed is not None and missed.read_end is not None:
            fresh = Cursor.at(missed.end, missed.read_end)
        else:
            fresh = await db.run(feed.cursor_now)
        frames.append(sse.frame("reset", dumps({"cursor": str(fresh)}), id=str(fresh)))
        frames.append(sse.frame("open", dumps({"cursor": str(fresh)}), id=str(fresh)))
        return b"".join(frames), fresh
    opening, missed_frames, after = once.replayed(
        cursor, missed.rows, missed.end, missed.reads, missed.read_end
    )
    frames.append(sse.frame("open", dumps({"cursor": str(opening)}), id=str(opening)))
    frames.extend(_encode(missed_frames))
    return b"".join(frames), after


def _frames(items: list[Batch | Reads], cursor: Cursor) -> tuple[bytes, Cursor]:
    """The frames for what the hub queued, and the cursor after them."""
    return frames(items, cursor)


_encode = encode
