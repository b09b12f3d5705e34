"""
The raw floor: the physical limit of one uvicorn process fanning out one event to
N Server-Sent Events streams. A bare ASGI application, no Django at all.

``GET /stream/`` registers a process-local queue and sends what lands in it;
``POST /publish/`` encodes the request body into one SSE frame once and puts the
same bytes into every queue. Whatever Django adds on top is "Django's cost"
(the Django floor, ``floor_app.py``); whatever this project adds on top of that
is "this app's cost".

    uvicorn raw_app:application
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

QUEUE_SIZE = 256  # frames a stream may fall behind before it misses some
OPEN = b"retry: 3000\n\nevent: open\ndata: {}\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

_queues: set[asyncio.Queue[bytes | None]] = set()
_ids = itertools.count(1)


async def _until_disconnect(receive: Any, queue: asyncio.Queue[bytes | None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    _queues.discard(queue)
    while queue.full():
        queue.get_nowait()
    queue.put_nowait(None)


async def stream(receive: Any, send: Any) -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE_SIZE)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": OPEN, "more_body": True})
    _queues.add(queue)
    watcher = asyncio.ensure_future(_until_disconnect(receive, queue))
    try:
        while True:
            frame = await queue.get()
            if frame is None:
                break
            await send({"type": "http.response.body", "body": frame, "more_body": True})
    finally:
        _queues.discard(queue)
        watcher.cancel()


async def publish(receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    frame = b"id: %d\nevent: message\ndata: %s\n\n" % (next(_ids), body)
    dropped = 0
    for queue in list(_queues):
        if queue.full():
            dropped += 1
        else:
            queue.put_nowait(frame)
    answer = f"{len(_queues) - dropped} {dropped}".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": answer})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "GET" and scope["path"] == "/stream/":
        await stream(receive, send)
    elif scope["method"] == "POST" and scope["path"] == "/publish/":
        await publish(receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
