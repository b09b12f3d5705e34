"""Connection budget and slow consumers, against real server processes."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from notifications import api
from notifications.models import Audience, Notification

from .conftest import session_cookies

pytestmark = [pytest.mark.server, pytest.mark.django_db(transaction=True)]


def refused(stream) -> dict:
    stream.wait_for(lambda s: s.ended)
    assert stream.status == 503
    assert int(stream.headers["retry-after"]) > 0
    return json.loads(stream.body)


def test_over_budget_streams_get_503_with_retry_after_and_others_are_unaffected(browser, make_user, make_server):
    srv = make_server(NOTIFICATIONS_MAX_STREAMS="3", NOTIFICATIONS_MAX_STREAMS_PER_USER="2")
    alice, bob, carol = make_user(), make_user(), make_user()
    a = browser(alice, on=srv)
    open_ones = [a.stream().connected(), a.stream().connected()]
    assert "error" in refused(a.stream())  # per user
    open_ones.append(browser(bob, on=srv).stream().connected())
    assert "error" in refused(browser(carol, on=srv).stream())  # per process
    ids = {alice.pk: api.notify(alice, "still served")[0].pk, bob.pk: api.notify(bob, "still served")[0].pk}
    for stream, owner in zip(open_ones, (alice, alice, bob)):
        stream.wait_for(lambda s: ids[owner.pk] in s.notification_ids(), timeout=6)
    open_ones[0].close()
    # A freed slot is usable again at once.
    browser(carol, on=srv).stream().connected()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_client_that_never_reads_is_cut_off_and_the_server_stays_small(browser, make_user, make_server):
    srv = make_server("uvicorn")
    slow_user, other, admin = make_user(), make_user(), make_user(staff=True)
    cookies = session_cookies(slow_user)

    # A client that connects and then never reads a byte.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", srv.port))
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    slow.sendall(f"GET /notifications/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n".encode())
    ops = browser(admin, on=srv)
    watcher = browser(other, on=srv).stream().connected()
    deadline = time.monotonic() + 5
    while ops.http.get("/notifications/api/hub/").json()["streams"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    before = rss_kib(srv.proc.pid)

    text = "x" * 300
    for start in range(0, 20_000, 2000):
        Notification.objects.bulk_create(
            Notification(recipient=slow_user, audience=Audience.USER, verb=f"n{start + i}", description=text)
            for i in range(2000)
        )
    # The slow stream is cut off once its queue is full; the hub forgets it.
    deadline = time.monotonic() + 30
    while ops.http.get("/notifications/api/hub/").json()["streams"] > 1:
        assert time.monotonic() < deadline, "the slow stream was never cut off"
        time.sleep(0.1)

    started = time.monotonic()
    response = browser(slow_user, on=srv).post("/", data={"recipient": f"user:{other.pk}", "verb": "still quick", "level": "info"})
    assert response.status_code == 302
    watcher.wait_for(lambda s: any(n["verb"] == "still quick" for n in s.notifications()), timeout=2)
    assert time.monotonic() - started < 1.0
    growth_mib = (rss_kib(srv.proc.pid) - before) / 1024
    assert growth_mib < 50, f"server grew by {growth_mib:.1f} MiB"
    slow.close()
