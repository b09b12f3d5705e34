"""
A small SSE test client: reads a stream on a thread and keeps every event.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    event: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


def parse(lines: list[str]) -> Event | None:
    """One event from its lines (the SSE field rules, comments ignored)."""
    fields: dict[str, Any] = {"event": "message", "data": [], "id": None}
    seen = False
    for line in lines:
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            fields["data"].append(value)
            seen = True
        elif name in ("event", "id"):
            fields[name] = value
            seen = True
        elif name == "retry":
            seen = True
            fields["event"] = "retry" if fields["event"] == "message" else fields["event"]
            fields["data"].append(value)
    if not seen:
        return None
    return Event(fields["event"], "\n".join(fields["data"]), fields["id"])


class Stream:
    """
    An open SSE connection. ``events`` grows as frames arrive; ``comments``
    counts heartbeat lines; ``status``/``headers`` are set once connected.
    ``close()`` shuts the socket, as a browser closing a tab does.
    """

    def __init__(
        self,
        base_url: str,
        cookies: dict[str, str] | None = None,
        last_event_id: str | bytes | None = None,
        params: dict[str, str] | None = None,
        path: str = "/notifications/stream/",
        headers: dict[str, str] | None = None,
    ):
        self.events: list[Event] = []
        self.comments = 0
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = b""
        self.ended = False
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        url = urllib.parse.urlsplit(base_url)
        self._conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        if params:
            path += "?" + urllib.parse.urlencode(params)
        self._path = path
        self._headers: dict[str, str | bytes] = {"Accept": "text/event-stream", **(headers or {})}
        if cookies:
            self._headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if last_event_id is not None:
            # Raw bytes on the wire, as a misbehaving client might send them.
            self._headers["Last-Event-ID"] = (
                last_event_id.encode() if isinstance(last_event_id, str) else last_event_id
            )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._conn.request("GET", self._path, headers=self._headers)
            response = self._conn.getresponse()
            self._conn.sock.settimeout(None)
            with self._cond:
                self.status = response.status
                self.headers = {k.lower(): v for k, v in response.getheaders()}
                self._cond.notify_all()
            if response.status != 200:
                self.body = response.read()
                return
            buffer: list[str] = []
            while not self._stop.is_set():
                raw = response.readline()
                if not raw:
                    break
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    with self._cond:
                        self.comments += 1
                        self._cond.notify_all()
                    continue
                if line == "":
                    event = parse(buffer)
                    buffer = []
                    if event is not None:
                        with self._cond:
                            self.events.append(event)
                            self._cond.notify_all()
                    continue
                buffer.append(line)
        except BaseException as exc:  # reported by wait_for
            if not self._stop.is_set():
                self.error = exc
        finally:
            self._conn.close()
            with self._cond:
                self.ended = True
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Stream], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate(self)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s; status={self.status} "
                        f"events={[(e.event, e.data[:80]) for e in self.events][-10:]} "
                        f"error={self.error!r}"
                    )
                self._cond.wait(left)

    def connected(self, timeout: float = 5.0) -> Stream:
        """Wait for the opening event; return self."""
        self.wait_for(lambda s: any(e.event == "open" for e in s.events), timeout)
        return self

    def notifications(self) -> list[dict[str, Any]]:
        with self._cond:
            return [e.json for e in self.events if e.event == "notification"]

    def notification_ids(self) -> list[int]:
        return [n["id"] for n in self.notifications()]

    def of(self, kind: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.event == kind]

    @property
    def last_id(self) -> str | None:
        with self._cond:
            ids = [e.id for e in self.events if e.id is not None]
        return ids[-1] if ids else None

    def close(self) -> None:
        self._stop.set()
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._conn.close()
        self._thread.join(5)


async def open_raw_stream(port: int, cookies: dict[str, str], cursor: str | None = None):
    """A minimal asyncio SSE client: returns (reader, writer) after the opening event."""
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    extra = f"Last-Event-ID: {cursor}\r\n" if cursor else ""
    writer.write(f"GET /notifications/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n{extra}\r\n".encode())
    await writer.drain()
    return reader, writer


async def read_events(reader, until, timeout: float) -> tuple[list[tuple[str, str, str | None]], bool]:
    """Read SSE events until ``until(events)`` or EOF; returns (events, ended)."""
    import asyncio

    events: list[tuple[str, str, str | None]] = []
    fields: dict[str, str] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    while not until(events):
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return events, False
        try:
            line = await asyncio.wait_for(reader.readline(), left)
        except TimeoutError:
            return events, False
        if not line:
            return events, True
        text = line.decode().rstrip("\r\n")
        # Chunked transfer: skip chunk-size lines (hex digits only).
        if text and all(c in "0123456789abcdefABCDEF" for c in text) and ":" not in text:
            continue
        if text == "":
            if "event" in fields:
                events.append((fields["event"], fields.get("data", ""), fields.get("id")))
            fields = {}
        elif not text.startswith(":") and ":" in text:
            name, _, value = text.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
    return events, False
