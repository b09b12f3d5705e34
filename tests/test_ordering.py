"""
Exactly-once bookkeeping when ids commit out of order (as on PostgreSQL):
the hub's watermark never passes a hole until it is filled or older than the
gap grace, and a stream's cursor always names what it delivered.
"""

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
