"""
Stream cursors: where a client is in the notification sequence.

A cursor is a watermark ``W`` (every id up to ``W`` is final and was either
delivered or not meant for this client) plus the few ids above ``W`` that were
delivered already. It is written ``W`` or ``W.a.b`` (ASCII digits and dots) and
travels as the SSE ``id:`` and the ``Last-Event-ID`` header.

Ids can commit out of order (PostgreSQL hands out id 10, then 11, and 11
commits first), so "everything after the last id seen" is not enough: 10 must
still come. The extra ids let replay send what is above ``W`` and not yet seen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_ID = 2**63 - 1
MAX_EXTRA_IDS = 512
_CURSOR_RE = re.compile(rf"\A[0-9]{{1,19}}(?:\.[0-9]{{1,19}}){{0,{MAX_EXTRA_IDS}}}\Z")


class InvalidCursor(ValueError):
    pass


@dataclass
class Cursor:
    watermark: int
    seen: set[int] = field(default_factory=set)

    @classmethod
    def parse(cls, value: str) -> Cursor:
        """Parse a cursor, raising ``InvalidCursor`` for anything malformed."""
        if not _CURSOR_RE.match(value):
            raise InvalidCursor("A cursor is digits, optionally followed by .id parts.")
        numbers = [int(part) for part in value.split(".")]
        watermark, seen = numbers[0], set(numbers[1:])
        if any(n > MAX_ID for n in numbers):
            raise InvalidCursor("Cursor ids must fit in 63 bits.")
        if any(n <= watermark for n in seen):
            raise InvalidCursor("Extra cursor ids must be above the watermark.")
        return cls(watermark, seen)

    def __str__(self) -> str:
        if not self.seen:
            return str(self.watermark)
        return ".".join(map(str, [self.watermark, *sorted(self.seen)]))

    def has(self, notification_id: int) -> bool:
        """Was ``notification_id`` delivered already (or is it final below W)?"""
        return notification_id <= self.watermark or notification_id in self.seen

    def add(self, notification_id: int) -> None:
        if notification_id > self.watermark:
            self.seen.add(notification_id)

    def advance(self, watermark: int) -> None:
        """Raise the watermark to ``watermark`` (never lowers it)."""
        if watermark > self.watermark:
            self.watermark = watermark
            self.seen = {n for n in self.seen if n > watermark}
