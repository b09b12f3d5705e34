"""
Redis behind Sentinel: the master dies (SIGKILL) while streams are open on two
server processes and another process keeps publishing. The sentinels promote
the replica, the channel layer follows it, and every stream gets every
notification exactly once (what the layer lost, the database fills in).

Runs where the production tests run (PostgreSQL and REDIS_URL), with a Redis
master, a replica and three sentinels of its own (tests/services.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from django.db import connection

from notifications.models import Notification

from .conftest import ROOT, session_cookies
from .services import RedisSentinels
from .sse import Stream
from .test_production import Reader

pytestmark = [
    pytest.mark.server,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"),
        reason="needs DATABASE_URL=postgres://... and REDIS_URL",
    ),
    pytest.mark.skipif(shutil.which("redis-sentinel") is None, reason="needs redis-sentinel"),
]


@pytest.fixture
def sentinels():
    redis = RedisSentinels().start()
    yield redis
    redis.stop()


def live_delivery_seconds(server, stream: Stream, username: str, timeout: float) -> float:
    """Notify ``username`` from another process; the seconds until ``stream`` has it."""
    nid = int(server.script("notify", username, "probe"))
    started = time.monotonic()
    stream.wait_for(lambda s: nid in s.notification_ids(), timeout=timeout)
    return time.monotonic() - started


def test_master_killed_mid_stream_every_stream_gets_every_notification_once(sentinels, make_server, make_user, tmp_path):
    env = {"REDIS_URL": "", "REDIS_SENTINELS": sentinels.sentinels, "REDIS_MASTER_NAME": sentinels.MASTER_NAME}
    servers = [make_server("daphne", **env), make_server("uvicorn", **env)]
    users = [make_user() for _ in range(6)]
    streams = {
        user.pk: [Stream(servers[i % 2].url, cookies=session_cookies(user)).connected() for i in range(2)]
        for user in users
    }
    first = users[0]
    watch = streams[first.pk][0]
    # Pokes travel through the master (faster than the hubs' database check),
    # where the hubs keep their groups.
    assert live_delivery_seconds(servers[0], watch, first.get_username(), timeout=5) < 1.0
    assert sentinels.keys() > 0

    # And a browser per user that keeps dropping its stream and resuming, on either server.
    start_cursor = watch.of("open")[0].id
    stop_readers = threading.Event()
    readers = {user.pk: Reader(servers, session_cookies(user), seed=user.pk, stop=stop_readers) for user in users}
    for reader in readers.values():
        reader.cursor = start_cursor
        reader.start()

    stop = tmp_path / "stop"
    publisher = subprocess.Popen(
        [sys.executable, "-m", "tests.scripts", "publish", "0.05", str(stop), *(u.get_username() for u in users)],
        cwd=ROOT, env=servers[0].env, stdout=subprocess.PIPE, text=True,
    )
    try:
        watch.wait_for(lambda s: len(s.notification_ids()) >= 3, timeout=10)
        killed = time.monotonic()
        sentinels.kill_master()
        deadline = killed + 30
        while sentinels.master() != sentinels.replica_port:
            assert time.monotonic() < deadline, "the sentinels did not promote the replica"
            time.sleep(0.05)
        promoted = time.monotonic() - killed
        # Recovered when a notification reaches a stream by a poke again.
        while live_delivery_seconds(servers[0], watch, first.get_username(), timeout=15) > 0.5:
            assert time.monotonic() < killed + 60, "pokes never came back after the failover"
        recovered = time.monotonic() - killed
        print(f"replica promoted {promoted:.1f}s and pokes live again {recovered:.1f}s after the master died")
    finally:
        stop.touch()
        out, _ = publisher.communicate(timeout=30)
        stop_readers.set()
        for reader in readers.values():
            reader.join(10)
    assert publisher.returncode == 0
    published = [line.split() for line in out.splitlines()]
    assert len(published) > 20
    slowest = max(float(seconds) for _, _, seconds in published)
    print(f"{len(published)} notify() calls, the slowest {slowest * 1000:.0f} ms")
    assert slowest < 0.5, f"notify() took {slowest:.2f}s during the failover"

    # A last notification per user marks the end of what each stream must hold.
    for user in users:
        marker = int(servers[1].script("notify", user.get_username(), "marker"))
        expected = list(Notification.objects.filter(recipient=user).values_list("id", flat=True))
        for stream in streams[user.pk]:
            stream.wait_for(lambda s, m=marker: m in s.notification_ids(), timeout=30)
            received = stream.notification_ids()
            duplicated = [nid for nid, n in Counter(received).items() if n > 1]
            assert duplicated == [], f"user {user.pk}: duplicated {duplicated}"
            assert set(received) == set(expected), f"user {user.pk}: lost {sorted(set(expected) - set(received))}"
        reader = readers[user.pk]
        reader.finish(len(expected), timeout=30)
        assert reader.errors == []
        duplicated = [nid for nid, n in Counter(reader.received).items() if n > 1]
        assert duplicated == [], f"reconnecting reader of user {user.pk}: duplicated {duplicated}"
        assert set(reader.received) == set(expected)
        assert reader.connections > 3
    for srv in servers:
        assert srv.proc.poll() is None, "server crashed"
