"""
The stream budget holds when opens arrive all at once, and no slot leaks when
an open fails halfway.
"""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from notifications.registry import Registry

from .conftest import session_cookies
from .sse import open_raw_stream


def test_reserving_from_many_threads_at_once_never_passes_the_caps(settings):
    settings.NOTIFICATIONS_MAX_STREAMS = 50
    settings.NOTIFICATIONS_MAX_STREAMS_PER_USER = 5
    registry: Registry[object] = Registry()
    barrier = threading.Barrier(40)
    got: list[object] = []

    def grab(user_id: int) -> None:
        barrier.wait()
        for _ in range(10):
            reservation = registry.reserve(user_id)
            if reservation is not None:
                got.append(reservation)

    threads = [threading.Thread(target=grab, args=(i % 20,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 50 == registry.slots
    assert all(registry.slots_of(u) <= 5 for u in range(20))
    for reservation in got:
        registry.release(reservation)
        registry.release(reservation)  # a second release counts for nothing
    assert registry.slots == 0


def test_an_unused_reservation_is_given_back(settings):
    registry: Registry[object] = Registry()
    reservation = registry.reserve(1)
    assert reservation is not None
    assert registry.expire_unused(time.monotonic()) == 0
    assert registry.expire_unused(time.monotonic() + 31) == 1
    assert registry.slots == 0 and not registry.start(reservation)


# -- against a real server ------------------------------------------------------


async def status_of(port: int, cookies: dict[str, str]) -> tuple[int, asyncio.StreamWriter]:
    """Open a stream; its HTTP status, and the connection (left open)."""
    reader, writer = await open_raw_stream(port, cookies)
    line = await asyncio.wait_for(reader.readline(), 60)
    return int(line.split()[1]), writer


def open_at_once(port: int, cookies: dict[str, str], count: int) -> list[int]:
    """Open ``count`` streams at the same moment, hold them, then close them all."""

    async def scenario() -> list[int]:
        results = await asyncio.gather(*(status_of(port, cookies) for _ in range(count)))
        for _, writer in results:
            writer.close()
        return [status for status, _ in results]

    return asyncio.run(scenario())


def hub_stats(url: str, staff_cookies: dict[str, str]) -> dict:
    return httpx.get(url + "/notifications/api/hub/", cookies=staff_cookies, timeout=10).json()


def wait_for_empty_hub(url: str, staff_cookies: dict[str, str], timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stats = hub_stats(url, staff_cookies)
        if stats["streams"] == 0 and stats["reserved"] == 0:
            return stats
        assert time.monotonic() < deadline, stats
        time.sleep(0.2)


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_four_times_the_per_user_cap_opened_at_once_gives_the_cap(make_server, make_user):
    srv = make_server("uvicorn", NOTIFICATIONS_MAX_STREAMS_PER_USER="5")
    statuses = open_at_once(srv.port, session_cookies(make_user()), 20)
    assert statuses.count(200) == 5 and statuses.count(503) == 15, statuses
    wait_for_empty_hub(srv.url, session_cookies(make_user(staff=True)))


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_2000_opens_at_once_against_a_process_cap_of_500_give_500(make_server, make_user):
    srv = make_server(
        "uvicorn", NOTIFICATIONS_MAX_STREAMS="500", NOTIFICATIONS_MAX_STREAMS_PER_USER="100000"
    )
    users = [session_cookies(make_user()) for _ in range(4)]

    async def scenario() -> list[int]:
        results = await asyncio.gather(*(status_of(srv.port, users[i % 4]) for i in range(2000)))
        for _, writer in results:
            writer.close()
        return [status for status, _ in results]

    statuses = asyncio.run(scenario())
    assert statuses.count(200) == 500 and statuses.count(503) == 1500
    wait_for_empty_hub(srv.url, session_cookies(make_user(staff=True)), timeout=30)


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_no_slot_leaks_when_opens_fail_halfway(make_server, make_user):
    """
    Clients that leave before their stream answers, or while it replays, and
    streams whose replay fails on a bad cursor: afterwards every slot is free.
    """
    srv = make_server(
        "uvicorn", NOTIFICATIONS_MAX_STREAMS_PER_USER="3", NOTIFICATIONS_MAX_STREAMS="10"
    )
    user = session_cookies(make_user())
    staff = session_cookies(make_user(staff=True))

    async def abandon(cursor: str | None, wait: float) -> None:
        _, writer = await open_raw_stream(srv.port, user, cursor)
        await asyncio.sleep(wait)
        writer.close()

    async def scenario() -> None:
        await asyncio.gather(
            *(abandon(None, 0), abandon("1", 0.01), abandon("9" * 19, 0.05), abandon("x", 0.2)) * 10
        )

    asyncio.run(scenario())
    wait_for_empty_hub(srv.url, staff)
    assert open_at_once(srv.port, user, 3) == [200, 200, 200]


def test_a_stream_cancelled_as_the_hub_becomes_ready_is_cancelled(settings):
    """
    A client that leaves while its stream waits for the hub's channel is
    cancelled by Django once. If the wait ends in the same loop turn,
    asyncio.wait_for (before Python 3.12) returned instead of raising: the
    stream went on with its slot, and nothing cancelled it again.
    """
    from notifications.membership import Membership

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

    async def scenario() -> str:
        membership = Membership(lambda message: None, lambda: None)
        membership._task = asyncio.get_running_loop().create_future()  # no receive loop here

        async def stream() -> str:
            await membership.start()
            return "went on after its client left"

        task = asyncio.create_task(stream())
        await asyncio.sleep(0)  # waiting for the channel
        membership._ready.set()  # the channel is ready ...
        task.cancel()  # ... as the client leaves
        try:
            return await task
        except asyncio.CancelledError:
            return "cancelled"

    assert asyncio.run(scenario()) == "cancelled"
