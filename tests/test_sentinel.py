"""
Redis behind Sentinel: the master dies (SIGKILL) during the production stress
test (tests/test_production.py), while streams are open on two server
processes and four others write. The sentinels promote the replica, the
channel layer follows it, and every stream gets every notification exactly
once (what the layer lost, the database fills in).

Runs where the production tests run (PostgreSQL and REDIS_URL), with a Redis
master, a replica and three sentinels of its own (tests/services.py).
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter

import pytest
from django.db import connection

from notifications.models import Notification

from .conftest import session_cookies
from .services import RedisSentinels
from .sse import Stream
from .test_production import stress

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


def test_the_stress_test_across_a_master_failover_loses_and_doubles_nothing(sentinels, make_server, make_user):
    """
    The production stress test (10,000 rows from four writers, 40 readers
    reconnecting at random) on a daphne and a uvicorn server whose channel
    layer finds Redis through the sentinels, with the master SIGKILLed when a
    quarter of the rows are written; and a stream per user that stays open
    throughout. Nothing is lost or doubled, ``notify()`` keeps returning at
    once, and pokes come back on the promoted replica.
    """
    env = {"REDIS_URL": "", "REDIS_SENTINELS": sentinels.sentinels, "REDIS_MASTER_NAME": sentinels.MASTER_NAME}
    servers = [make_server("daphne", **env), make_server("uvicorn", **env)]
    users = [make_user() for _ in range(20)]
    watcher = make_user()
    watch = Stream(servers[0].url, cookies=session_cookies(watcher)).connected()
    # Pokes travel through the master (faster than the hubs' database check),
    # where the hubs keep their groups.
    assert live_delivery_seconds(servers[0], watch, watcher.get_username(), timeout=5) < 1.0
    assert sentinels.keys() > 0
    streams = {user.pk: Stream(servers[user.pk % 2].url, cookies=session_cookies(user)).connected() for user in users}
    timings: dict[str, float] = {}

    def fail_over(written) -> None:
        deadline = time.monotonic() + 120
        while written() < 2_500:
            assert time.monotonic() < deadline, "the writers did not get going"
            time.sleep(0.05)
        killed, timings["killed_at"] = time.monotonic(), time.time()
        sentinels.kill_master()
        while sentinels.master() != sentinels.replica_port:
            assert time.monotonic() < killed + 30, "the sentinels did not promote the replica"
            time.sleep(0.05)
        timings["promoted"] = time.monotonic() - killed
        # Recovered when a notification reaches a stream by a poke again.
        while live_delivery_seconds(servers[0], watch, watcher.get_username(), timeout=15) > 0.5:
            assert time.monotonic() < killed + 60, "pokes never came back after the failover"
        timings["recovered"] = time.monotonic() - killed
        timings["recovered_at"] = time.time()
        timings["rows_at_recovery"] = written()

    calls = stress(servers, users, env=env, during=fail_over)
    print(f"replica promoted {timings['promoted']:.1f}s and pokes live again {timings['recovered']:.1f}s "
          f"after the master died ({timings['rows_at_recovery']:.0f} of 10,000 rows written by then)")
    assert timings["rows_at_recovery"] < 10_000, "the writers finished before the layer recovered: no failover under load"
    # notify() keeps returning at once while the layer has no master: had it
    # waited for the layer, most calls of the outage would take its seconds.
    outage = sorted(seconds for at, seconds in calls if timings["killed_at"] <= at <= timings["recovered_at"])
    others = sorted(seconds for at, seconds in calls if not timings["killed_at"] <= at <= timings["recovered_at"])
    print(f"notify() during the outage: {len(outage)} calls, median {outage[len(outage) // 2] * 1000:.0f} ms, "
          f"90th percentile {outage[len(outage) * 9 // 10] * 1000:.0f} ms, slowest {outage[-1] * 1000:.0f} ms; "
          f"before and after: median {others[len(others) // 2] * 1000:.0f} ms, slowest {others[-1] * 1000:.0f} ms")
    assert len(outage) > 20, "the writers did not write during the outage"
    assert outage[len(outage) * 9 // 10] < 0.25, "notify() waited during the failover"

    # The streams that stayed open hold every row of their user once.
    for user in users:
        expected = set(Notification.objects.filter(recipient=user).values_list("id", flat=True))
        stream = streams[user.pk]
        stream.wait_for(lambda s, e=expected: e <= set(s.notification_ids()), timeout=30)
        received = stream.notification_ids()
        duplicated = [nid for nid, n in Counter(received).items() if n > 1]
        assert duplicated == [], f"user {user.pk}: duplicated {duplicated}"
        assert set(received) == expected
    for srv in servers:
        assert srv.proc.poll() is None, "server crashed"
