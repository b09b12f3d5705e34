"""Cursor parsing and arithmetic."""

import pytest

from notifications.cursor import Cursor, InvalidCursor


def test_round_trip():
    assert str(Cursor.parse("42")) == "42"
    assert str(Cursor.parse("42.50.45")) == "42.45.50"


@pytest.mark.parametrize("raw", ["", "x", "-1", "1.1", "3.2", "1e3", "١", "9" * 20, "1..2", "1.", ".1"])
def test_malformed_cursors_are_rejected(raw):
    with pytest.raises(InvalidCursor):
        Cursor.parse(raw)


def test_has_add_advance():
    cursor = Cursor(10)
    cursor.add(12)
    assert cursor.has(9) and cursor.has(10) and cursor.has(12)
    assert not cursor.has(11)
    cursor.advance(11)
    assert str(cursor) == "11.12"
    cursor.advance(12)
    assert str(cursor) == "12" and cursor.seen == set()
    cursor.advance(5)
    assert cursor.watermark == 12
