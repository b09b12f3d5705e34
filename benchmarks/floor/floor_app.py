"""
The floor: the least a Django ASGI view can do to fan out one event to N streams.

No authentication, no database, no channel layer. ``GET /stream/`` registers a
process-local queue and streams what lands in it; ``POST /publish/`` encodes the
request body into one SSE frame once and puts the same bytes into every queue.
Anything this project does on top of it is overhead.

The stream is served the way this project serves its own: through
``notifications.asgi.StreamHandler`` (Django's handler, empty middleware chain, no
thread-sensitive context per request, without the app's prefetch of the user), so the gap between this floor and the raw
ASGI floor (``raw_app.py``) is Django's cost, and the gap between this floor and
this project is the app's. Needs the repository root on ``PYTHONPATH``.

    uvicorn floor_app:application
"""

from __future__ import annotations

import asyncio
import itertools

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="floor-benchmark-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
    )

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

QUEUE_SIZE = 256  # frames a stream may fall behind before it misses some

_queues: set[asyncio.Queue[bytes]] = set()
_ids = itertools.count(1)


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)

    async def frames():
        _queues.add(queue)
        try:
            yield b"retry: 3000\n\nevent: open\ndata: {}\n\n"
            while True:
                yield await queue.get()
        finally:
            _queues.discard(queue)

    response = StreamingHttpResponse(frames(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


async def publish(request: HttpRequest) -> HttpResponse:
    frame = b"id: %d\nevent: message\ndata: %s\n\n" % (next(_ids), request.body)
    dropped = 0
    for queue in list(_queues):
        if queue.full():
            dropped += 1
        else:
            queue.put_nowait(frame)
    return HttpResponse(f"{len(_queues) - dropped} {dropped}")


urlpatterns = [path("stream/", stream), path("publish/", publish)]
django_application = get_asgi_application()

from notifications.asgi import StreamHandler  # noqa: E402

stream_handler = StreamHandler(prefetch=False)  # this app's part of it is not the floor's


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/stream/":
        await stream_handler(scope, receive, send)
    else:
        await django_application(scope, receive, send)
