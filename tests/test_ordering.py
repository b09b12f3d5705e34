"""
Exactly-once bookkeeping when ids commit out of order (as on PostgreSQL):
the hub's watermark never passes a hole until it is filled or older than the
gap grace, and a stream's cursor always names what it delivered.
"""

import asyncio
import time

import pytest

from notifications.cursor import Cursor
from notifications.feed import Row
from notifications.hub import Batch, Hub
from notifications.stream import _frames


def row(nid):
    return Row(nid, 1, "user", None, f'{{"id": {nid}}}')


@pytest.fixture
def hub(settings):
    settings.NOTIFICATIONS_GAP_GRACE = 0.2
    h = Hub()
    h.watermark = 10
    return h


def test_watermark_stops_at_a_hole_until_it_fills(hub):
    hub._dispatch([row(12), row(13)])
    assert hub.watermark == 10
    hub._dispatch([row(11)])
    assert hub.watermark == 13 and hub.seen == set()


def test_watermark_skips_a_hole_after_the_grace(hub):
    hub._dispatch([row(12)])
    assert hub.watermark == 10
    time.sleep(0.25)
    hub._dispatch([])
    assert hub.watermark == 12


def test_stream_cursor_lists_ids_delivered_above_the_watermark():
    cursor = Cursor(10)
    out = _frames([Batch([(12, "{}")], watermark=10)], cursor)
    assert b"id: 10.12\n" in out
    out = _frames([Batch([(11, "{}"), (12, "{}")], watermark=12)], cursor)
    assert out.count(b"event: notification") == 1  # 12 is not sent twice
    assert b"id: 11.12\n" in out
    assert str(cursor) == "12"


def test_resuming_from_a_cursor_with_extra_ids_skips_exactly_those():
    cursor = Cursor.parse("10.12")
    out = _frames([Batch([(11, "{}"), (12, "{}"), (13, "{}")], watermark=13)], cursor)
    assert out.count(b"event: notification") == 2
    assert str(cursor) == "13"


def test_a_row_read_while_its_user_subscribes_is_rendered_and_delivered(monkeypatch):
    """
    The hub reads new rows rendering only its streams' users. A stream that
    subscribes during that read (its replay may run before the row commits)
    must still get the row: the hub renders it after the read.
    """
    from notifications import db, feed
    from notifications.hub import Subscription
    from notifications.models import Audiences

    calls: list[str] = []
    late: list[Subscription] = []

    async def scenario() -> Hub:
        hub = Hub()
        hub.watermark = 10
        early = Subscription(Audiences(1, False, frozenset()), 10)
        hub.subscriptions.add(early)
        hub.by_user[1] = {early}

        async def run(fn, *args):
            calls.append(fn.__name__)
            if fn is feed.rows_after:
                assert 2 not in args[3]  # user 2 had no stream when the read began
                sub = Subscription(Audiences(2, False, frozenset()), 10)  # ...and has one now
                hub.subscriptions.add(sub)
                hub.by_user[2] = {sub}
                late.append(sub)
                return [
                    feed.Row(11, 2, "user", None, None, rendered=False),
                    feed.Row(12, 3, "user", None, None, rendered=False),  # nobody here
                    feed.Row(13, 1, "user", None, '{"id": 13}'),
                ]
            assert fn is feed.render and set(args[0]) == {11}
            return {11: '{"id": 11}'}

        monkeypatch.setattr(db, "run", run)
        await hub._fetch()
        return hub

    hub = asyncio.run(scenario())
    assert calls == ["rows_after", "render"]
    assert hub.watermark == 13
    (batch,) = late[0].pending
    assert batch.rows == [(11, '{"id": 11}')] and batch.watermark == 13
