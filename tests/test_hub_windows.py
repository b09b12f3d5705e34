"""
The hub never loses a row, whatever else it is doing: a stream that subscribes
while the hub reads, or while it checks a login after its read, gets every row
committed after its start, once, and its cursor claims only what it got.

These tests drive the stream's body (``stream.event_stream``) against a hub in
the test's own event loop and a real database, so that the hub's database
calls can be slowed down and the stream opened at an exact moment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from notifications import api, db, feed
from notifications.finality import Cursor
from notifications.hub import Hub, get_hub
from notifications.models import Audiences
from notifications.stream import event_stream

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = 0.3  # seconds a slowed read or login check takes
WAIT = 10.0  # the most a test waits for something that must happen


class Tab:
    """One stream, read in a task: its SSE events as (event, id, data)."""

    def __init__(self, hub: Hub, user: Any, cursor: str | None = None):
        reservation = hub.reserve(user.pk)
        assert reservation is not None
        who = Audiences(user.pk, False, frozenset())
        parsed = None if cursor is None else Cursor.parse(cursor)
        self.body = event_stream(hub, who, reservation, parsed, reset=False)
        self.events: list[tuple[str, str | None, str]] = []
        self.changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for chunk in self.body:
            for block in chunk.decode().split("\n\n"):
                fields: dict[str, str] = {}
                for line in block.split("\n"):
                    name, _, value = line.partition(": ")
                    if name in ("event", "id", "data"):
                        fields[name] = value
                if "event" in fields:
                    self.events.append((fields["event"], fields.get("id"), fields.get("data", "")))
            self.changed.set()

    async def until(self, predicate: Callable[[Tab], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not predicate(self):
                self.changed.clear()
                await self.changed.wait()

    def ids(self) -> list[int]:
        return [json.loads(data)["id"] for event, _, data in self.events if event == "notification"]

    def last_id(self) -> str:
        return [i for _, i, _ in self.events if i is not None][-1]

    async def close(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        await self.body.aclose()


def _notify(user: Any, verb: str) -> int:
    try:
        return api.notify(user, verb)[0].pk
    finally:
        connections.close_all()  # (a thread of the default executor)


async def commit(user: Any, verb: str) -> int:
    """Commit a notification for ``user``, from another thread, as a view would."""
    return await asyncio.to_thread(_notify, user, verb)


async def notify(user: Any, verb: str, hub: Hub) -> int:
    """Commit a notification for ``user`` and tell the hub to look (as a poke would)."""
    nid = await commit(user, verb)
    hub._poke()
    return nid


def slowed(monkeypatch: pytest.MonkeyPatch, hooks: dict[Any, Callable[[], Any]]) -> None:
    """Run ``hooks[fn]()`` (a coroutine) before each database call of ``fn``, once each."""
    real = db.run

    async def run(fn: Any, *args: Any) -> Any:
        hook = hooks.pop(fn, None)
        if hook is not None:
            await hook()
        return await real(fn, *args)

    monkeypatch.setattr(db, "run", run)


def run_bounded(coro: Any, timeout: float = 60.0) -> None:
    """
    ``asyncio.run(coro)``, bounded: a scenario that takes longer than
    ``timeout`` fails, and so does a task (the hub's, a stream's) that is still
    running 10 s after being cancelled, with where it waits, rather than the
    test run hanging in ``asyncio.run``'s clean-up.
    """
    loop = asyncio.new_event_loop()
    stuck: list[asyncio.Task[Any]] = []
    try:
        loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = loop.run_until_complete(asyncio.wait(tasks, timeout=10))
            stuck = list(pending)
        if not stuck:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
    assert not stuck, "tasks still running after cancellation: " + "; ".join(
        f"{t.get_name()} at {[f'{f.f_code.co_filename}:{f.f_lineno}' for f in t.get_stack()]}"
        for t in stuck
    )


@pytest.fixture(autouse=True)
def in_memory_layer(settings: Any) -> None:
    """
    The scenarios cancel the hub's tasks when they end; a Redis layer's
    blocking receive has been seen to outlive that (see run_bounded), which
    is about the layer, not the windows tested here.
    """
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def test_a_stream_that_subscribes_during_a_login_check_after_the_read_gets_its_row_once(
    make_user, monkeypatch
):
    run_bounded(subscribe_during(monkeypatch, feed.signed_out, make_user(), make_user(), make_user()))


def test_a_stream_that_subscribes_during_the_read_while_a_login_check_waits_gets_its_row_once(
    make_user, monkeypatch
):
    run_bounded(subscribe_during(monkeypatch, feed.fetch, make_user(), make_user(), make_user()))


async def subscribe_during(monkeypatch: pytest.MonkeyPatch, step: Any, reader: Any, changed: Any, late: Any) -> None:
    """
    With streams of ``reader`` and ``changed`` open, a row for ``late``
    commits; the hub reads (0.3 s), while it reads ``changed``'s login
    changes, and it checks that login (0.3 s). ``late`` opens a stream while
    the hub is in ``step`` (its read, ``feed.fetch``, or the login check,
    ``feed.signed_out``): that stream must get the row once.
    """
    hub = get_hub()
    others = [Tab(hub, reader), Tab(hub, changed)]
    for tab in others:
        await tab.until(lambda t: bool(t.events))
    inside, subscribed = asyncio.Event(), asyncio.Event()

    async def slow(fn: Any) -> None:
        if fn is feed.fetch:  # another user's password changes while the hub reads
            hub.on_message({"type": "notifications.check", "user": str(changed.pk)})
        if fn is step:
            inside.set()
            async with asyncio.timeout(WAIT):
                await subscribed.wait()
        await asyncio.sleep(SLOW)

    # Committed before ``late`` has a stream: the hub's read does not take it.
    missed = await commit(late, "committed before the subscription")
    slowed(monkeypatch, {fn: (lambda fn=fn: slow(fn)) for fn in (feed.fetch, feed.signed_out)})
    hub._poke()
    async with asyncio.timeout(WAIT):
        await inside.wait()
    tab = Tab(hub, late)  # a new client: everything after the hub's position
    await tab.until(lambda t: bool(t.events))
    subscribed.set()
    await reconnected_has_it_once(hub, tab, late, missed)
    for t in others:
        await t.close()


async def reconnected_has_it_once(hub: Hub, tab: Tab, user: Any, nid: int) -> None:
    """
    ``tab`` got ``nid`` exactly once, and a reconnect from its last cursor does
    not get it again: the cursor claims only what the stream delivered.
    """
    first = await notify(user, "sentinel", hub)
    await tab.until(lambda t: first in t.ids())
    cursor = tab.last_id()
    await tab.close()
    again = Tab(hub, user, cursor)
    second = await notify(user, "after the reconnect", hub)
    await again.until(lambda t: second in t.ids())
    await again.close()
    assert tab.ids().count(nid) == 1, f"the stream got {tab.ids()}, its reconnect {again.ids()}"
    assert again.ids() == [second]
