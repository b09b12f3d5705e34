"""The stream served without the project's middleware (notifications.asgi)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from notifications import api
from notifications.asgi import StreamHandler, stream_without_middleware


def scope(path: str, method: str = "GET", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


def test_only_get_requests_for_the_stream_path_skip_the_middleware(monkeypatch):
    seen: list[tuple[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(("app", scope.get("path", scope["type"])))

    async def handler(self: StreamHandler, scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(("stream", scope["path"]))

    monkeypatch.setattr(StreamHandler, "__call__", handler)
    wrapped = stream_without_middleware(app)
    scopes = (
        scope("/notifications/stream/"),
        scope("/notifications/stream/", method="POST"),  # the view's 405, through the middleware
        scope("/notifications/stream"),
        scope("/notifications/api/"),
        scope("/"),
        scope("/mounted/notifications/stream/", root_path="/mounted"),
        {"type": "lifespan"},
    )
    for s in scopes:
        asyncio.run(wrapped(s, None, None))
    assert seen == [
        ("stream", "/notifications/stream/"),
        ("app", "/notifications/stream/"),
        ("app", "/notifications/stream"),
        ("app", "/notifications/api/"),
        ("app", "/"),
        ("stream", "/mounted/notifications/stream/"),
        ("app", "lifespan"),
    ]


def threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_open_streams_cost_no_thread_each_and_skip_the_middleware(server, browser, make_user):
    """
    Through Django's full handler every open stream kept a worker thread of its
    own (its ThreadSensitiveContext) and passed a dozen middleware hooks; the
    demo's asgi.py serves the stream without either.
    """
    users = [make_user() for _ in range(3)]
    first = browser(users[0]).stream().connected()
    assert server.proc is not None
    before = threads(server.proc.pid)
    streams = [browser(users[i % 3]).stream().connected() for i in range(15)]
    time.sleep(0.5)
    assert threads(server.proc.pid) <= before + 2, "a thread per open stream"

    # The middleware did not run for the stream (XFrameOptionsMiddleware sets
    # this header on every response it sees), but did for the API.
    assert "x-frame-options" not in first.headers
    page = browser(users[0]).http.get("/notifications/api/")
    assert page.status_code == 200 and "x-frame-options" in page.headers

    note = api.notify(users[1], "still live")[0]
    for stream in streams[1::3]:
        stream.wait_for(lambda s: note.pk in s.notification_ids(), timeout=6)
