"""
What an open stream keeps alive in the server, what its opening leaves as
garbage in reference cycles, and what a broadcast leaves behind per stream:
counted by the garbage collector of a real uvicorn process
(``tests/census/sitecustomize.py`` answers the census).

With thousands of streams in one process, every object a stream keeps is
walked by each full collection, and every object a broadcast's wake-up keeps
for a while is promoted and starts full collections of its own. Not timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest
from django.db import connections

from notifications import api

from .conftest import ROOT, session_cookies

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]

STREAMS = 300
# Measured 55 to 56 tracked objects per idle stream (uvicorn's protocol, parser,
# request cycle, task and their callbacks, about 35; the app's subscription,
# cursor and coroutines, and DEBUG's static files handler, the rest). When
# Django's request handling stayed alive for the stream, 147.
MAX_OBJECTS_PER_STREAM = 70
# Measured about 1 per stream, all of it the hub's own read (the same however
# many streams); a wait per stream on a fresh future and generator left 10.4.
MAX_LEFT_PER_STREAM = 1.5
# Measured 0.1 per opening (a few closures of the app's own); when the request
# kept what the middleware attached to it (the lazy user, auser, the messages'
# storages, each referring back to it), 38: every opening became garbage that
# only a collection frees, and a reconnect storm started full collections.
MAX_GARBAGE_PER_OPENING = 1.0
# Django's objects of a request and its response: none may live per stream.
DJANGO_REQUEST_TYPES = (
    "django.core.handlers.asgi.ASGIRequest",
    "django.http.response.StreamingHttpResponse",
    "notifications.views.EventStreamResponse",
    "django.http.request.QueryDict",
    "django.utils.datastructures.MultiValueDict",
)


def ask(census: Path, pid: int, sig: int) -> dict:
    census.unlink(missing_ok=True)
    os.kill(pid, sig)
    deadline = time.monotonic() + 60
    while not census.exists():
        assert time.monotonic() < deadline, "the server did not answer the census"
        time.sleep(0.05)
    return json.loads(census.read_text())


async def open_stream(port: int, cookie: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /notifications/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    await read_until(reader, b"event: open")
    return reader, writer


async def read_until(reader: asyncio.StreamReader, marker: bytes) -> None:
    seen = b""
    while marker not in seen:
        chunk = await asyncio.wait_for(reader.read(65536), 20)
        assert chunk, f"stream closed: {seen[-300:]!r}"
        seen = seen[-200:] + chunk


def broadcast(verb: str) -> None:
    """``api.broadcast`` in a thread of its own, closing the connection it opened there."""
    try:
        api.broadcast(verb)
    finally:
        connections.close_all()


def per_stream(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    return {
        name: (after.get(name, 0) - before.get(name, 0)) / STREAMS
        for name in set(before) | set(after)
        if after.get(name, 0) - before.get(name, 0) >= STREAMS // 2
    }


def test_an_open_stream_keeps_little_and_a_broadcast_leaves_nothing_per_stream(
    make_server, make_user, tmp_path
):
    census = tmp_path / "census.json"
    srv = make_server(
        "uvicorn",
        PYTHONPATH=str(ROOT / "tests" / "census"),
        NOTIFICATIONS_TEST_CENSUS=str(census),
        NOTIFICATIONS_MAX_STREAMS_PER_USER=str(STREAMS + 10),
        NOTIFICATIONS_POLL_INTERVAL="0.3",
    )
    pid = srv.proc.pid
    cookie = "; ".join(f"{k}={v}" for k, v in session_cookies(make_user()).items())

    async def scenario() -> tuple[dict, dict, dict]:
        # Warm up: imports, the hub and its loops, a stream opened and gone.
        reader, writer = await open_stream(srv.port, cookie)
        writer.close()
        await asyncio.sleep(0.5)
        opened = [await open_stream(srv.port, cookie)]  # the hub keeps its groups while one stays
        await asyncio.sleep(0.5)
        before = (await asyncio.to_thread(ask, census, pid, signal.SIGUSR1))["all"]
        await asyncio.to_thread(ask, census, pid, signal.SIGUSR2)
        opened += await asyncio.gather(*(open_stream(srv.port, cookie) for _ in range(STREAMS)))
        await asyncio.sleep(1.0)
        counted = await asyncio.to_thread(ask, census, pid, signal.SIGUSR1)
        idle, opening_garbage = counted["all"], counted["garbage"]
        # A broadcast reaches every stream; what it allocated and left alive
        # after every frame was written is what the census finds since the mark.
        await asyncio.to_thread(ask, census, pid, signal.SIGUSR2)
        await asyncio.to_thread(broadcast, "to everyone")
        await asyncio.gather(*(read_until(r, b"event: notification") for r, _ in opened))
        await asyncio.sleep(0.5)
        left = (await asyncio.to_thread(ask, census, pid, signal.SIGUSR1))["new"]
        for _, w in opened:
            w.close()
        return before, idle, left, opening_garbage

    before, idle, left, opening_garbage = asyncio.run(scenario())
    garbage_total = sum(opening_garbage.values()) / STREAMS
    print(f"cyclic garbage per opening: {garbage_total:.1f}", sorted(opening_garbage.items(), key=lambda kv: -kv[1])[:25])
    kept = per_stream(before, idle)
    total = (sum(idle.values()) - sum(before.values())) / STREAMS
    print(f"tracked objects per idle stream: {total:.1f}", sorted(kept.items(), key=lambda kv: -kv[1]))
    left_total = sum(left.values()) / STREAMS
    print(f"left per stream by a broadcast: {left_total:.2f}", sorted(left.items(), key=lambda kv: -kv[1])[:15])
    assert not [name for name in DJANGO_REQUEST_TYPES if idle.get(name, 0) >= STREAMS], kept
    assert total <= MAX_OBJECTS_PER_STREAM, kept
    assert garbage_total <= MAX_GARBAGE_PER_OPENING, opening_garbage
    assert left_total <= MAX_LEFT_PER_STREAM, per_stream({}, left)
