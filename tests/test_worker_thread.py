"""Where the delivery worker thread runs: in a server process, never in a test client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.asgi import get_asgi_application
from django.test import AsyncClient, Client

from notifications import api, worker
from notifications.asgi import serve_streams
from notifications.models import Delivery

from .test_away_worker import FILES, sent, wait_until

User = get_user_model()


def worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "notifications-worker" and t.is_alive()}


@pytest.fixture
def new_worker_threads(settings) -> Iterator[Any]:
    """With NOTIFICATIONS_DELIVERY_THREAD on: a function that returns the worker threads started since."""
    settings.NOTIFICATIONS_DELIVERY_THREAD = True
    settings.NOTIFICATIONS_DELIVERY_POLL = 0.05
    before = worker_threads()
    yield lambda: worker_threads() - before
    worker.stop_in_server()


@pytest.mark.django_db
def test_a_test_client_request_starts_no_worker_thread(new_worker_threads):
    assert Client().get("/login/").status_code == 200
    assert new_worker_threads() == set()


@pytest.mark.django_db
def test_an_async_test_client_request_starts_no_worker_thread(new_worker_threads):
    async def get() -> int:
        return (await AsyncClient().get("/login/")).status_code

    assert asyncio.run(get()) == 200
    assert new_worker_threads() == set()


@pytest.mark.django_db(transaction=True)
def test_the_first_request_through_serve_streams_starts_the_worker_which_sends(new_worker_threads):
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "signed in from a new device", kind="security")  # critical: email at once
    scope = {"type": "http", "method": "GET", "path": "/login/", "headers": [(b"host", b"testserver")]}

    async def get() -> int:
        communicator = ApplicationCommunicator(serve_streams(get_asgi_application()), scope)
        await communicator.send_input({"type": "http.request"})
        start = await communicator.receive_output(15)
        while (await communicator.receive_output(15)).get("more_body"):
            pass
        await communicator.wait(15)
        return int(start["status"])

    assert asyncio.run(get()) == 200
    assert len(new_worker_threads()) == 1
    wait_until(lambda: Delivery.objects.get().state == "sent", timeout=15)
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]


@pytest.mark.django_db(transaction=True)
def test_a_lifespan_scope_starts_the_worker_and_goes_on_to_the_application(new_worker_threads):
    seen: list[str] = []

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    asyncio.run(serve_streams(application)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
    assert len(new_worker_threads()) == 1


@pytest.mark.django_db
def test_the_worker_does_not_start_when_the_setting_is_off(new_worker_threads, settings):
    settings.NOTIFICATIONS_DELIVERY_THREAD = False

    async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
        pass

    asyncio.run(serve_streams(application)({"type": "lifespan"}, None, None))
    assert new_worker_threads() == set()


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_uvicorn_server_sends_due_emails_from_its_own_thread(tmp_path, make_server):
    make_server(
        "uvicorn",
        NOTIFICATIONS_DELIVERY_THREAD="1",
        NOTIFICATIONS_DELIVERY_POLL="0.2",
        DJANGO_EMAIL_BACKEND=FILES,
        DEMO_EMAIL_DIR=str(tmp_path),
    )
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "signed in from a new device", kind="security")
    wait_until(lambda: sent(tmp_path), timeout=15)
    assert [to for _, to in sent(tmp_path)] == ["alice@example.com"]
