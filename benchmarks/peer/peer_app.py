"""
The peer: a minimal django-eventstream 5.3 project serving one broadcast channel.

Events are stored with ``DjangoModelStorage`` (so ``Last-Event-ID`` resumes) and
carried from the publisher process to the server by django-eventstream's Redis
support (``EVENTSTREAM_REDIS``), as its documentation sets them up.

    uvicorn peer_app:application               serve GET /events/ (channel "broadcast")
    python peer_app.py migrate                 create the event tables
    python peer_app.py publish                 JSON commands on stdin, answers on stdout

Environment: PEER_DB (the SQLite file), PEER_REDIS_DB (the Redis database number).
"""

from __future__ import annotations

import json
import os
import sys
import time

from django.conf import settings

CHANNEL = "broadcast"

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="peer-benchmark-only",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django_eventstream"],
        MIDDLEWARE=[],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get("PEER_DB", "peer.sqlite3"),
                "OPTIONS": {
                    "timeout": 20,
                    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                },
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
        EVENTSTREAM_STORAGE_CLASS="django_eventstream.storage.DjangoModelStorage",
        EVENTSTREAM_REDIS={
            "host": "127.0.0.1",
            "port": 6379,
            "db": int(os.environ.get("PEER_REDIS_DB", "0")),
        },
    )

import django  # noqa: E402

django.setup()

import django_eventstream  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.urls import include, path  # noqa: E402

urlpatterns = [path("events/", include(django_eventstream.urls), {"channels": [CHANNEL]})]
application = get_asgi_application()


def publish() -> None:
    """``{"cmd": "broadcast", "run": tag, "seq": k}`` per line; ``t`` is the send time."""
    from django.db import connections
    from django_eventstream import send_event

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "quit":
            break
        if command["cmd"] != "broadcast":
            print(json.dumps({"error": "unsupported"}), flush=True)
            continue
        t = time.time()
        send_event(CHANNEL, "message", {"t": t, "run": command["run"], "seq": command["seq"]})
        connections.close_all()
        print(json.dumps({"t": t, "write_s": time.time() - t}), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["publish"]:
        publish()
    else:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
