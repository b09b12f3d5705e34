"""
Production set-up: several server processes (daphne and uvicorn) sharing
PostgreSQL and the Redis channel layer, with failures.

Runs when the suite runs on PostgreSQL with REDIS_URL set (CI's second pass):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/5 ./dev test
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db import connections as db_connections

from notifications import api
from notifications.models import Notification

from .conftest import ROOT, Server, session_cookies
from .services import PrivatePostgres, PrivateRedis, pgbouncer_clients
from .sse import Stream, open_raw_stream, read_events

pytestmark = [
    pytest.mark.server,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"),
        reason="needs DATABASE_URL=postgres://... and REDIS_URL",
    ),
]


@pytest.fixture
def pair(make_server):
    """Two server processes on different ports, one daphne and one uvicorn."""
    return make_server("daphne"), make_server("uvicorn")


def wait_ids(stream: Stream, ids: list[int], timeout: float) -> None:
    stream.wait_for(lambda s: set(ids) <= set(s.notification_ids()), timeout=timeout)


def test_two_processes_share_pokes_and_broadcasts(pair, make_user, browser):
    a, b = pair
    alice, bob, carol = make_user(), make_user(), make_user()
    on_a = browser(alice, on=a).stream().connected()
    on_b = browser(carol, on=b).stream().connected()

    started = time.monotonic()
    response = browser(bob, on=b).post("/", data={"recipient": f"user:{alice.pk}", "verb": "via B", "level": "info"})
    assert response.status_code == 302
    on_a.wait_for(lambda s: s.notifications(), timeout=1.0)
    assert on_a.notifications()[0]["verb"] == "via B"
    assert time.monotonic() - started < 1.0

    started = time.monotonic()
    a.manage("notify", "--user", alice.get_username(), "via a command")
    on_a.wait_for(lambda s: len(s.notifications()) == 2, timeout=1.0)
    assert on_a.notifications()[1]["verb"] == "via a command"

    everyone = api.broadcast("to every process").pk
    wait_ids(on_a, [everyone], timeout=1.5)
    wait_ids(on_b, [everyone], timeout=1.5)


class Reader(threading.Thread):
    """
    A browser that keeps dropping its connection at random moments and
    reconnects, to either server, with the last id it saw.
    """

    def __init__(self, servers: list[Server], cookies: dict[str, str], seed: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.servers, self.cookies, self.stop_flag = servers, cookies, stop
        self.rng = random.Random(seed)
        self.received: list[int] = []
        self.cursor: str | None = None
        self.connections = 0
        self.errors: list[str] = []

    def connect(self) -> Stream:
        self.connections += 1
        server = self.rng.choice(self.servers)
        return Stream(server.url, cookies=self.cookies, last_event_id=self.cursor)

    def absorb(self, stream: Stream) -> None:
        with stream._cond:
            events = list(stream.events)
        for event in events:
            if event.event == "notification":
                self.received.append(event.json["id"])
            elif event.event == "reset":
                self.errors.append(f"reset after cursor {self.cursor!r}")
        if stream.last_id is not None:
            self.cursor = stream.last_id

    def run(self) -> None:
        while not self.stop_flag.is_set():
            stream = self.connect()
            try:
                stream.connected(timeout=30)
            except AssertionError as exc:
                self.errors.append(f"connect: {exc}")
            time.sleep(self.rng.uniform(0.0, 1.0))  # then drop it, mid-stream
            stream.close()
            self.absorb(stream)

    def finish(self, expected: int, timeout: float) -> None:
        cursor = self.cursor
        stream = self.connect()
        try:
            stream.wait_for(lambda s: len(self.received) + len(s.notification_ids()) >= expected, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; resumed from {cursor!r}, earlier: {self.errors}") from None
        finally:
            time.sleep(0.5)  # anything extra (a duplicate) would arrive now
            stream.close()
            self.absorb(stream)


def stress(servers: list[Server], users: list[Any], *, long_transaction: float = 0, env: dict[str, str] | None = None,
           during: Callable[[Callable[[], int]], None] | None = None) -> list[tuple[float, float]]:
    """
    The production stress test: four writer processes (two with clocks 5
    minutes behind, one in ten rows backdated up to an hour, each holding one
    transaction open ``long_transaction`` seconds while the others go on) write
    10,000 rows to ``users`` while two readers per user reconnect at random to
    any of ``servers``; then every reader must hold every row of its user
    exactly once. ``during(written)`` runs while the writers write (``written()``
    counts the rows so far). Returns each ``notify()`` call's wall-clock start
    and seconds, with its commit.
    """
    stop = threading.Event()
    readers = {
        user.pk: [Reader(list(servers), session_cookies(user), seed=user.pk * 10 + i, stop=stop) for i in range(2)]
        for user in users
    }
    # Every reader starts from a cursor taken before any write.
    first = next(iter(readers.values()))[0]
    probe = first.connect().connected()
    start_cursor = probe.of("open")[0].id
    probe.close()
    for group in readers.values():
        for reader in group:
            reader.cursor = start_cursor
            reader.start()

    ids = [str(u.pk) for u in users]
    env = {**servers[0].env, **(env or {}), "LONG_TRANSACTION": str(long_transaction)}
    writers = [
        subprocess.Popen([sys.executable, "-m", "tests.scripts", "write", str(seed), "2500", *ids],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for seed in range(4)
    ]
    started = time.monotonic()
    try:
        if during is not None:
            during(lambda: Notification.objects.filter(recipient__in=users).count())
        outputs = [writer.communicate(timeout=300)[0] for writer in writers]
    except BaseException:
        stop.set()
        raise
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    assert [writer.returncode for writer in writers] == [0, 0, 0, 0]
    calls = sorted((float(at), float(seconds)) for out in outputs for at, seconds in (line.split() for line in out.splitlines()))
    print(f"writers took {time.monotonic() - started:.1f}s, the slowest notify() {max(s for _, s in calls) * 1000:.0f} ms")
    stop.set()
    for group in readers.values():
        for reader in group:
            reader.join(10)

    total = 0
    for user in users:
        expected = list(Notification.objects.filter(recipient=user).values_list("id", flat=True))
        total += len(expected)
        for reader in readers[user.pk]:
            reader.finish(len(expected), timeout=30)
            assert reader.errors == []
            duplicates = [nid for nid, n in Counter(reader.received).items() if n > 1]
            assert duplicates == [], f"user {user.pk}: duplicated {duplicates[:10]}"
            missing = set(expected) - set(reader.received)
            assert missing == set(), f"user {user.pk}: lost {sorted(missing)[:10]} of {len(expected)}"
            assert set(reader.received) == set(expected)
            assert reader.connections > 3
    assert total == 10_000
    return calls


@pytest.mark.parametrize("long_transaction", [0, 15], ids=["short", "long-transactions"])
def test_exactly_once_with_concurrent_writers_and_reconnecting_readers(pair, make_user, long_transaction):
    """The stress test (``stress``) on a daphne and a uvicorn server."""
    stress(list(pair), [make_user() for _ in range(20)], long_transaction=long_transaction)


def test_redis_restart_loses_nothing_and_is_logged_once(make_server, make_user, browser):
    redis = PrivateRedis().start()
    try:
        servers = [make_server("daphne", REDIS_URL=redis.url), make_server("uvicorn", REDIS_URL=redis.url)]
        users = [make_user() for _ in range(4)]
        streams = [browser(u, on=servers[i % 2]).stream().connected() for i, u in enumerate(users)]

        def notify(user, verb):  # from another process that uses the same Redis
            return int(servers[0].script("notify", user.get_username(), verb))

        redis.stop()
        time.sleep(1)
        during = [notify(u, "while redis was down") for u in users]
        redis.start()
        back = time.monotonic()
        # What was committed during the outage arrives within seconds of the
        # restart (timed before the next notifications: each is a new process,
        # seconds of Django start-up on a busy machine).
        for stream, nid in zip(streams, during):
            wait_ids(stream, [nid], timeout=10)
        assert time.monotonic() - back < 10
        after = [notify(u, "after redis came back") for u in users]
        sent = time.monotonic()
        for stream, ids in zip(streams, zip(during, after)):
            wait_ids(stream, list(ids), timeout=10)
        assert time.monotonic() - sent < 10
        time.sleep(0.5)
        for stream, ids in zip(streams, zip(during, after)):
            assert stream.notification_ids() == list(ids)
        # Pushes work again once the hub has re-joined its groups.
        deadline = time.monotonic() + 15
        while True:
            nid = notify(users[0], "pushed")
            started = time.monotonic()
            wait_ids(streams[0], [nid], timeout=5)
            if time.monotonic() - started < 0.5:
                break
            assert time.monotonic() < deadline, "pokes never came back after the outage"
        for srv in servers:
            assert srv.proc.poll() is None, "server crashed"
            log = srv.log.read_text()
            assert log.count("Channel layer unavailable") == 1, log[-3000:]
    finally:
        redis.stop()


def test_postgres_restart_streams_recover_and_nothing_is_lost(make_server):
    pg = PrivatePostgres().init()
    try:
        env = {"DATABASE_URL": pg.url}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=ROOT, env={**os.environ, **env}, check=True, capture_output=True, timeout=120,
        )
        srv = make_server("uvicorn", **env)
        _, cookies = srv.session("pg-alice")
        stream = Stream(srv.url, cookies=cookies).connected()
        before = [int(i) for i in srv.script("notify", "pg-alice", "before", "3").split()]
        wait_ids(stream, before, timeout=5)

        pg.stop()
        time.sleep(3)  # the hub's checks fail meanwhile
        pg.start()
        after = [int(i) for i in srv.script("notify", "pg-alice", "after", "3").split()]

        # The open stream, or the client's reconnect with its cursor, catches up.
        received = list(stream.notification_ids())
        cursor = stream.last_id
        try:
            wait_ids(stream, after, timeout=10)
            received = stream.notification_ids()
        except AssertionError:
            stream.close()
            again = Stream(srv.url, cookies=cookies, last_event_id=cursor).connected(10)
            wait_ids(again, after, timeout=10)
            received = received + again.notification_ids()
            again.close()
        assert received == before + after
        assert srv.proc.poll() is None
        stream.close()
    finally:
        pg.destroy()


def pg_connections() -> int:
    """Connections others hold to the test database (through PgBouncer: its clients)."""
    if settings.NOTIFICATIONS_TRANSACTION_POOLING:
        connection.close()
        db = settings.DATABASES["default"]
        return pgbouncer_clients(db["HOST"], db["PORT"], db["NAME"])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_500_idle_streams_hold_no_database_connection(make_server, make_user):
    srv = make_server("uvicorn")
    users = [make_user() for _ in range(100)]
    cookies = [session_cookies(u) for u in users]
    streams = [Stream(srv.url, cookies=cookies[i % 100]) for i in range(500)]
    try:
        for stream in streams:
            stream.connected(30)
        assert all(s.status == 200 for s in streams)
        nid = api.notify(users[0], "wake the hub")[0].pk
        wait_ids(streams[0], [nid], timeout=5)
        deadline = time.monotonic() + 3
        while pg_connections() > 0:
            assert time.monotonic() < deadline, f"{pg_connections()} connections held by idle streams"
            time.sleep(0.1)
        assert all(not s.ended for s in streams)
    finally:
        for stream in streams:
            stream.close()


@pytest.mark.parametrize("kind", ["uvicorn", "daphne"])
def test_sigterm_ends_streams_quickly_and_clients_resume_on_the_other_server(make_server, make_user, kind):
    leaving, staying = make_server(kind), make_server("uvicorn")
    users = [make_user() for _ in range(10)]
    streams = {u.pk: Stream(leaving.url, cookies=session_cookies(u)).connected() for u in users}
    first = {u.pk: api.notify(u, "before the deploy")[0].pk for u in users}
    for u in users:
        wait_ids(streams[u.pk], [first[u.pk]], timeout=5)

    started = time.monotonic()
    leaving.proc.send_signal(signal.SIGTERM)
    during = {u.pk: api.notify(u, "during the deploy")[0].pk for u in users}
    for stream in streams.values():
        stream.wait_for(lambda s: s.ended, timeout=5)
    assert time.monotonic() - started < 5
    leaving.proc.wait(10)

    after = {u.pk: api.notify(u, "after the deploy")[0].pk for u in users}
    for u in users:
        old = streams[u.pk]
        resumed = Stream(staying.url, cookies=session_cookies(u), last_event_id=old.last_id).connected()
        expected = {first[u.pk], during[u.pk], after[u.pk]}
        resumed.wait_for(lambda s: expected <= set(old.notification_ids() + s.notification_ids()))
        time.sleep(0.2)  # a duplicate would arrive now
        combined = old.notification_ids() + resumed.notification_ids()
        assert sorted(combined) == sorted(expected), combined
        resumed.close()


def test_sigterm_with_2000_open_streams_drains_in_5s_and_clients_resume_exactly_once(make_server, make_user):
    import asyncio

    leaving, staying = make_server("uvicorn"), make_server("uvicorn")
    users = [make_user() for _ in range(100)]
    cookies = [session_cookies(u) for u in users]

    async def scenario() -> None:
        conns = await asyncio.gather(*(open_raw_stream(leaving.port, cookies[i % 100]) for i in range(2000)))
        opened = await asyncio.gather(
            *(read_events(r, lambda ev: any(e[0] == "open" for e in ev), 60) for r, _ in conns)
        )
        assert all(any(e[0] == "open" for e in ev) for ev, _ in opened)
        cursors = [next(e[2] for e in ev if e[0] == "open") for ev, _ in opened]

        started = asyncio.get_running_loop().time()
        leaving.proc.send_signal(signal.SIGTERM)
        def notify_all() -> dict[int, int]:
            try:
                return {u.pk: api.notify(u, "during shutdown")[0].pk for u in users}
            finally:
                db_connections.close_all()  # this thread's: it is not the test's

        missed = await asyncio.to_thread(notify_all)
        drained = await asyncio.gather(*(read_events(r, lambda ev: False, 8) for r, _ in conns))
        elapsed = asyncio.get_running_loop().time() - started
        assert all(ended for _, ended in drained), "some streams were still open"
        assert elapsed < 5.5
        for (_, writer) in conns:
            writer.close()
        # Each client resumes on the other server from its last id.
        for i, (events, _) in enumerate(drained):
            for _, _, nid in events:
                if nid:
                    cursors[i] = nid
        def ids(events) -> list[int]:
            return [int(json.loads(d)["id"]) for e, d, _ in events if e == "notification"]

        for start in range(0, 2000, 500):
            batch = list(range(start, start + 500))
            resumed = await asyncio.gather(
                *(open_raw_stream(staying.port, cookies[i % 100], cursors[i]) for i in batch)
            )
            results = await asyncio.gather(
                *(
                    read_events(r, lambda ev, n=1 - len(ids(drained[i][0])): len(ids(ev)) >= n and ev, 15)
                    for (r, _), i in zip(resumed, batch)
                )
            )
            await asyncio.sleep(0.3)  # a duplicate would arrive now
            extra = await asyncio.gather(*(read_events(r, lambda ev: False, 0.05) for r, _ in resumed))
            for i, (events, _), (more, _), (_, writer) in zip(batch, results, extra, resumed):
                combined = ids(drained[i][0]) + ids(events) + ids(more)
                assert combined == [missed[users[i % 100].pk]], (i, combined)
                writer.close()

    assert_within = time.monotonic()
    asyncio.run(scenario())
    assert leaving.proc.wait(10) is not None
    assert time.monotonic() - assert_within < 300
