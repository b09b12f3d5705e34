"""Where the delivery worker thread runs: in a server process, never in a test client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.asgi import get_asgi_application
from django.test import Client

from notifications import api, worker
from notifications.asgi import serve_streams
from notifications.models import Delivery

from .test_away_worker import FILES, sent, wait_until

User = get_user_model()


def worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "notifications-worker" and t.is_alive()}


def lifespan_of(app: Any) -> Callable[[str], dict[str, Any]]:
    """
    A function that sends ``app`` one lifespan event ("startup", "shutdown")
    and returns its answer, as a server does: all in one event loop.
    """
    loop = asyncio.new_event_loop()
    communicators: list[ApplicationCommunicator] = []

    async def event(kind: str) -> dict[str, Any]:
        if not communicators:
            communicators.append(ApplicationCommunicator(app, {"type": "lifespan", "asgi": {"version": "3.0"}}))
        await communicators[0].send_input({"type": f"lifespan.{kind}"})
        return await communicators[0].receive_output(15)

    def send(kind: str) -> dict[str, Any]:
        answer = loop.run_until_complete(event(kind))
        if kind == "shutdown":
            loop.close()
        return answer

    return send


@pytest.mark.django_db
def test_a_test_client_request_starts_no_worker_thread(settings):
    settings.NOTIFICATIONS_DELIVERY_THREAD = True
    before = worker_threads()
    assert Client().get("/login/").status_code == 200
    assert worker_threads() - before == set()


@pytest.mark.django_db(transaction=True)
def test_serve_streams_runs_the_worker_from_lifespan_startup_to_shutdown(settings):
    settings.NOTIFICATIONS_DELIVERY_THREAD = True
    settings.NOTIFICATIONS_DELIVERY_POLL = 0.05
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "signed in from a new device", kind="security")  # critical: email at once
    before = worker_threads()
    event = lifespan_of(serve_streams(get_asgi_application()))
    assert event("startup") == {"type": "lifespan.startup.complete"}
    started = worker_threads() - before
    try:
        assert len(started) == 1
        wait_until(lambda: Delivery.objects.get().state == "sent", timeout=15)
        assert [m.to for m in mail.outbox] == [["alice@example.com"]]
        assert event("shutdown") == {"type": "lifespan.shutdown.complete"}
        assert not any(t.is_alive() for t in started)
    finally:
        worker.stop_in_server()  # (already stopped, unless the test failed)


@pytest.mark.django_db(transaction=True)
def test_lifespan_startup_starts_no_worker_when_the_setting_is_off(settings):
    settings.NOTIFICATIONS_DELIVERY_THREAD = False
    before = worker_threads()
    event = lifespan_of(serve_streams(get_asgi_application()))
    assert event("startup") == {"type": "lifespan.startup.complete"}
    assert worker_threads() - before == set()
    assert event("shutdown") == {"type": "lifespan.shutdown.complete"}


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_uvicorn_server_sends_due_emails_from_its_lifespan_started_thread(tmp_path, make_server):
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
