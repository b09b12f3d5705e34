"""
The body of the SSE stream: subscribe, replay what the client missed, follow live.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import AsyncIterator

from django.db import DatabaseError

from . import db, feed, sse
from .conf import conf
from .cursor import Cursor
from .hub import Batch, Subscription, get_hub
from .models import Audiences
from .render import dumps

logger = logging.getLogger(__name__)


async def event_stream(who: Audiences, cursor: Cursor | None, *, reset: bool) -> AsyncIterator[bytes]:
    """
    Yield SSE frames for the user described by ``who``, starting after ``cursor``
    (None: from now on). ``reset`` tells the client its cursor was unusable.

    The stream subscribes to the hub before it replays, so nothing committed in
    between is missed; what arrives twice is dropped by the cursor. It ends after
    the maximum stream life, when the client leaves, or when it falls too far
    behind; the client resumes from its last cursor in each case.
    """
    hub = get_hub()
    sub = await hub.subscribe(who)
    try:
        try:
            opening, cursor = await _replay(sub, cursor, reset=reset)
        except DatabaseError:
            # The client reconnects after ``retry`` with the same cursor.
            logger.warning("Replay failed: database unavailable.", exc_info=True)
            return
        yield opening
        # Following live, inline rather than in a nested generator: every frame
        # to every stream passes here, so one generator level is measurable.
        life = conf.MAX_STREAM_LIFE * random.uniform(0.9, 1.0)  # spread reconnects
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
            chunk = _frames(items, cursor)
            if chunk:
                yield chunk
    finally:
        hub.unsubscribe(sub)


# Streams opening together (a reconnect storm) are replayed together.
_replay_batched = db.Batched(feed.replay_many)


async def _replay(sub: Subscription, cursor: Cursor | None, *, reset: bool) -> tuple[bytes, Cursor]:
    """The opening frames: retry, maybe reset, the current cursor, then what was missed."""
    final = sub.watermark_at_start  # every id up to here is final, and committed
    if cursor is None or reset:
        cursor = Cursor(final)
    missed = await _replay_batched((sub.who, cursor, conf.REPLAY_LIMIT))
    if not missed.rows and cursor.watermark > final:
        # A watermark beyond anything this process has seen: only trust it
        # if the database has such ids (another process may be ahead of us).
        if cursor.watermark > await db.run(feed.newest_id):
            reset, cursor = True, Cursor(final)
    if missed.overflow:
        reset, cursor = True, Cursor(final)
        missed = await db.run(feed.replay, sub.who, cursor, conf.REPLAY_LIMIT)

    frames = [sse.retry(conf.RETRY_MS)]
    if reset:
        frames.append(sse.frame("reset", dumps({"cursor": str(cursor)}), id=str(cursor)))
    frames.append(sse.frame("open", dumps({"cursor": str(cursor)}), id=str(cursor)))
    for nid, data in missed.rows:
        if nid <= final:
            cursor.advance(nid)  # replay is complete and in order up to here
        else:
            cursor.add(nid)
        frames.append(sse.frame("notification", data, id=str(cursor)))
    if not missed.overflow:
        cursor.advance(final)
    return b"".join(frames), cursor


def _frames(items: list[Batch | str], cursor: Cursor) -> bytes:
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(sse.frame("read", item))
            continue
        for nid, data in item.rows:
            if cursor.has(nid):
                continue
            if nid <= item.watermark:
                cursor.advance(nid)
            else:
                cursor.add(nid)
            out.append(sse.frame("notification", data, id=str(cursor)))
        cursor.advance(item.watermark)
    return b"".join(out)
