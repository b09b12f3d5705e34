"""
The second peer: the notification stream as Channels' documentation has people
write it. An ``AsyncHttpConsumer`` behind ``AuthMiddlewareStack`` answers
``GET /events/`` with ``text/event-stream``, joins a group for its user (where
per-user notifications go) and a group every stream joins (where broadcasts go),
and writes each group message as one SSE frame. The channel layer is
channels-redis with its default settings; users and sessions live in the same
PostgreSQL database as this project's benchmark (same ``SECRET_KEY``), so the
same cookies log the same users in. No history: a reconnecting client gets what
is sent after it is back.

    uvicorn channels_app:application           serve GET /events/
    python channels_app.py publish             JSON commands on stdin, answers on stdout

Environment: DATABASE_URL, REDIS_URL, DJANGO_SECRET_KEY.
"""

from __future__ import annotations

import json
import os
import sys
import time

import dj_database_url
from django.conf import settings

BROADCAST_GROUP = "broadcast"

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "channels-benchmark-only"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "channels",
        ],
        MIDDLEWARE=[],
        DATABASES={"default": dj_database_url.parse(os.environ["DATABASE_URL"])},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        CHANNEL_LAYERS={
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
            }
        },
    )

import django  # noqa: E402

django.setup()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.exceptions import StopConsumer  # noqa: E402
from channels.generic.http import AsyncHttpConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402


def user_group(user_id: int) -> str:
    return f"user-{user_id}"


class EventsConsumer(AsyncHttpConsumer):
    """
    The documented long-poll shape: ``handle()`` sends the headers and a first
    chunk with ``more_body=True``; group messages write the rest. Channels 4.3's
    ``http_request`` stops the consumer as soon as ``handle()`` returns, which
    would end the response, so it is overridden to leave the consumer running
    until the client disconnects (``http_disconnect`` stops it then).
    """

    groups_joined: list[str]

    async def http_request(self, message: dict) -> None:
        if "body" in message:
            self.body.append(message["body"])
        if not message.get("more_body"):
            await self.handle(b"".join(self.body))

    async def handle(self, body: bytes) -> None:
        self.groups_joined = []
        user = self.scope["user"]
        if not user.is_authenticated:
            await self.send_response(
                403, b"log in first", headers=[(b"Content-Type", b"text/plain")]
            )
            raise StopConsumer()
        for group in (user_group(user.pk), BROADCAST_GROUP):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
        await self.send_headers(
            headers=[
                (b"Content-Type", b"text/event-stream"),
                (b"Cache-Control", b"no-cache"),
                (b"X-Accel-Buffering", b"no"),
            ]
        )
        await self.send_body(b"retry: 3000\n\nevent: open\ndata: {}\n\n", more_body=True)

    async def notify(self, event: dict) -> None:
        frame = f"id: {event['id']}\nevent: message\ndata: {event['data']}\n\n"
        await self.send_body(frame.encode(), more_body=True)

    async def disconnect(self) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)


application = ProtocolTypeRouter(
    {"http": AuthMiddlewareStack(URLRouter([path("events/", EventsConsumer.as_asgi())]))}
)


def publish() -> None:
    """``{"cmd": "broadcast", "run": tag, "seq": k}`` per line; ``t`` is the send time."""
    import asyncio

    from channels.layers import get_channel_layer

    async def serve() -> None:
        layer = get_channel_layer()
        loop = asyncio.get_running_loop()
        print(json.dumps({"ready": True}), flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command = json.loads(line)
            if command["cmd"] == "quit":
                break
            if command["cmd"] != "broadcast":
                print(json.dumps({"error": "unsupported"}), flush=True)
                continue
            t = time.time()
            data = json.dumps({"t": t, "run": command["run"], "seq": command["seq"]})
            await layer.group_send(
                BROADCAST_GROUP, {"type": "notify", "id": command["seq"], "data": data}
            )
            print(json.dumps({"t": t, "write_s": time.time() - t}), flush=True)

    asyncio.run(serve())


if __name__ == "__main__":
    if sys.argv[1:] == ["publish"]:
        publish()
    else:
        raise SystemExit(__doc__)
