"""
Server-Sent Events frame encoding.

Frames are bytes. A field value never contains a newline: JSON from
``render.dumps`` has none, and cursors are digits and dots.
"""

from __future__ import annotations

HEARTBEAT = b": ping\n\n"


def frame(event: str, data: str, id: str | None = None) -> bytes:
    """One event: optional ``id:``, ``event:`` and a single ``data:`` line."""
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def retry(milliseconds: int) -> bytes:
    """Tell the browser how long to wait before reconnecting."""
    return f"retry: {int(milliseconds)}\n\n".encode()
