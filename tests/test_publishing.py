"""
Publishing never waits on the channel layer: notify() and the commit that
pokes return at once whether the layer is paused, unreachable or full; pokes
leave from a bounded queue in the background, and the hubs' database check
delivers what a lost poke announced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import BaseChannelLayer
from django.db import transaction

from notifications import api, delivery
from notifications.hub import ALL_GROUP, user_group

from .conftest import free_port
from .services import PrivateRedis, redis_layer

FAST = 0.05  # seconds: what a notify() or its commit takes, whatever the layer does


def assert_fast(durations: list[float]) -> None:
    """
    Typically within FAST, and none waited on the layer. The database write
    is part of each call, and on a loaded machine one write may take longer.
    """
    assert statistics.median(durations) < FAST, durations
    assert max(durations) < 10 * FAST, durations


def pause(redis: PrivateRedis, seconds: float) -> float:
    """Pause every client of ``redis`` (CLIENT PAUSE); return when the pause ends (monotonic)."""
    subprocess.run(
        ["redis-cli", "-p", str(redis.port), "CLIENT", "PAUSE", str(int(seconds * 1000))],
        check=True, capture_output=True, timeout=5,
    )
    return time.monotonic() + seconds


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    redis = PrivateRedis().start()
    yield redis
    redis.stop()


@pytest.fixture
def delivery_log() -> Iterator[list[logging.LogRecord]]:
    """The records ``notifications.delivery`` logs (the app's logger does not propagate)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.INFO)
    logger = logging.getLogger("notifications.delivery")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def warnings_of(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= logging.WARNING]


# -- a layer whose sends wait at a gate, to watch the queue ----------------------


class GatedLayer(BaseChannelLayer):
    """Records each group_send once the test opens the gate; sends wait until then."""

    extensions = ["groups"]
    gate = threading.Event()
    entered = threading.Event()
    sent: list[tuple[str, dict[str, Any]]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        GatedLayer.entered.set()
        while not GatedLayer.gate.is_set():
            await asyncio.sleep(0.005)
        GatedLayer.sent.append((group, message))

    async def group_add(self, group: str, channel: str) -> None:
        pass

    async def group_discard(self, group: str, channel: str) -> None:
        pass


@pytest.fixture
def gated(settings: Any) -> Iterator[type[GatedLayer]]:
    """The channel layer is a GatedLayer, its gate closed; opened and drained afterwards."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tests.test_publishing.GatedLayer"}}
    GatedLayer.gate.clear()
    GatedLayer.entered.clear()
    GatedLayer.sent = []
    yield GatedLayer
    GatedLayer.gate.set()
    assert delivery.flush(5)


def hold_the_sender(layer: type[GatedLayer], user: Any) -> None:
    """Make the background sender take a poke and wait at the gate with it."""
    api.notify(user, "taken by the sender")
    assert layer.entered.wait(5), "the sender never called the layer"


@pytest.mark.django_db(transaction=True)
def test_pokes_for_one_user_waiting_in_the_queue_go_out_once(gated, make_user):
    held, alice = make_user(), make_user()
    hold_the_sender(gated, held)
    for i in range(5):
        api.notify(alice, f"waiting {i}")
    gated.gate.set()
    assert delivery.flush(5)
    assert [group for group, _ in gated.sent] == [user_group(held.pk), user_group(alice.pk)]


@pytest.mark.django_db(transaction=True)
def test_full_queue_drops_pokes_with_one_log_line(gated, make_user, settings, delivery_log):
    settings.NOTIFICATIONS_PUBLISH_QUEUE_SIZE = 3
    held = make_user()
    others = [make_user() for _ in range(10)]
    hold_the_sender(gated, held)
    durations = [timed(lambda: api.notify(user, "overflow")) for user in others]
    assert_fast(durations)
    gated.gate.set()
    assert delivery.flush(5)
    assert [group for group, _ in gated.sent] == [user_group(u.pk) for u in [held, *others[:3]]]
    dropped = [m for m in warnings_of(delivery_log) if "queue is full" in m]
    assert len(dropped) == 1, warnings_of(delivery_log)


@pytest.mark.django_db(transaction=True)
def test_full_queue_logs_again_only_after_it_caught_up(gated, make_user, settings, delivery_log):
    settings.NOTIFICATIONS_PUBLISH_QUEUE_SIZE = 1
    held, a, b, c = make_user(), make_user(), make_user(), make_user()
    hold_the_sender(gated, held)
    api.notify([a, b, c], "overflow")
    api.notify([a, b, c], "overflow again")
    gated.gate.set()
    assert delivery.flush(5)
    gated.gate.clear()
    gated.entered.clear()
    hold_the_sender(gated, held)
    api.notify([a, b, c], "a second overflow")
    dropped = [m for m in warnings_of(delivery_log) if "queue is full" in m]
    assert len(dropped) == 2


@pytest.mark.django_db(transaction=True)
def test_a_forked_process_sends_from_a_publisher_of_its_own(gated, make_user):
    gated.gate.set()
    api.notify(make_user(), "the parent's publisher is running")
    assert delivery.flush(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads, as gunicorn does
        pid = os.fork()
    if pid == 0:  # the child: the parent's sending thread is not here
        try:
            delivery.poke_all()
            sent = delivery.flush(5) and gated.sent[-1][0] == ALL_GROUP
            os._exit(0 if sent else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


# -- a real Redis, paused or gone ----------------------------------------------------


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_notify_and_its_commit_return_at_once_while_redis_is_paused(private_redis, settings, make_user):
    settings.CHANNEL_LAYERS = redis_layer(private_redis.url)
    alice = make_user()
    api.notify(alice, "warm-up: the layer's connection is open")
    assert delivery.flush(5)
    pause_ends = pause(private_redis, 4)

    calls = [timed(lambda: api.notify(alice, "while paused")) for _ in range(9)]

    def commit() -> None:
        with transaction.atomic():
            api.notify(alice, "in a transaction")

    commits = [timed(commit) for _ in range(9)]
    assert time.monotonic() < pause_ends, "the calls outlasted the pause: it proves nothing"
    assert_fast(calls)
    assert_fast(commits)


@pytest.fixture
def streaming(private_redis, settings, make_server, make_user, browser):
    """
    ``streaming(poll)``: this process and a server share a private Redis; returns
    a user and their open stream on that server, whose database check runs
    every ``poll`` seconds.
    """
    settings.CHANNEL_LAYERS = redis_layer(private_redis.url)

    def open_stream(poll: float) -> tuple[Any, Any]:
        srv = make_server(REDIS_URL=private_redis.url, NOTIFICATIONS_POLL_INTERVAL=str(poll))
        user = make_user()
        return user, browser(user, on=srv).stream().connected()

    return open_stream


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_notification_sent_while_redis_is_paused_reaches_an_open_stream_by_the_poll(
    streaming, private_redis
):
    alice, stream = streaming(poll=0.5)
    pause_ends = pause(private_redis, 6)

    nid = api.notify(alice, "while paused")[0].pk
    stream.wait_for(lambda s: nid in s.notification_ids(), timeout=4)
    assert time.monotonic() < pause_ends


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_poke_queued_while_redis_is_paused_goes_out_after_the_pause(streaming, private_redis):
    alice, stream = streaming(poll=120)  # no database check within the test: only the poke delivers
    pause_ends = pause(private_redis, 2)

    nid = api.notify(alice, "while paused")[0].pk
    stream.wait_for(lambda s: nid in s.notification_ids(), timeout=6)
    assert time.monotonic() > pause_ends - 0.1


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_notify_returns_at_once_when_the_layer_is_unreachable(
    settings, make_server, make_user, browser, delivery_log
):
    settings.CHANNEL_LAYERS = redis_layer(f"redis://127.0.0.1:{free_port()}/0")  # nobody listens
    srv = make_server(NOTIFICATIONS_POLL_INTERVAL="0.5")
    alice = make_user()
    stream = browser(alice, on=srv).stream().connected()

    durations, ids = [], []
    for i in range(9):
        started = time.perf_counter()
        ids.append(api.notify(alice, f"unreachable {i}")[0].pk)
        durations.append(time.perf_counter() - started)
    stream.wait_for(lambda s: set(ids) <= set(s.notification_ids()), timeout=5)
    assert_fast(durations)
    delivery.flush(5)
    failures = [m for m in warnings_of(delivery_log) if "Could not poke" in m]
    assert len(failures) == 1, warnings_of(delivery_log)


# -- the in-memory layer: sent on the server's own loop --------------------------------


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_in_memory_layer_pokes_a_stream_from_a_sync_view_of_the_same_server(
    make_server, make_user, browser
):
    srv = make_server(REDIS_URL="", NOTIFICATIONS_POLL_INTERVAL="120")
    alice, bob = make_user(), make_user()
    stream = browser(alice, on=srv).stream().connected()
    started = time.monotonic()
    response = browser(bob, on=srv).post("/", data={"recipient": f"user:{alice.pk}", "verb": "hi", "level": "info"})
    assert response.status_code == 302
    stream.wait_for(lambda s: s.notifications(), timeout=3)
    assert time.monotonic() - started < 3


def test_sync_code_run_by_the_server_finds_the_server_loop():
    # asgiref's thread-local is not a public API: this fails if a release moves it.
    async def main() -> tuple[Any, Any]:
        found = await sync_to_async(delivery._server_loop)()
        return found, asyncio.get_running_loop()

    found, running = asyncio.run(main())
    assert found is running
