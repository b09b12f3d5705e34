"""The delivery worker as its own processes: racing, killed mid-send, and inside the server."""

from __future__ import annotations

import email
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from notifications import api
from notifications.models import Delivery

from .conftest import ROOT, database_url

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()
FILES = "tests.mailbackends.Files"


def worker_env(folder: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_EMAIL_BACKEND": FILES,
        "DEMO_EMAIL_DIR": str(folder),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "notifications_worker", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def run_once(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", "notifications_worker", "--once"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout


def sent(folder: Path) -> list[tuple[str, str]]:
    """(sending pid, To address) of each message written."""
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        found.append((path.name.split("-")[0], str(message["To"])))
    return found


def wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@contextmanager
def racing_workers(folder: Path) -> Iterator[None]:
    """Two worker processes taking one delivery at a time, both polling before the block
    runs; on leaving, every delivery is finished and the workers are stopped."""
    env = worker_env(folder, NOTIFICATIONS_DELIVERY_BATCH="1", SLOW_EMAIL="0.02")
    workers = [start_worker(env, "--poll", "0.1") for _ in range(2)]
    try:
        for w in workers:  # both are polling before anything is due
            assert w.stdout is not None and "Delivering" in w.stdout.readline()
        yield
        unfinished = Delivery.objects.exclude(state__in=["sent", "skipped", "failed"])
        wait_until(lambda: not unfinished.exists(), timeout=60)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(20)
            assert w.stdout is not None
            w.stdout.close()


def test_two_workers_racing_send_every_email_exactly_once(tmp_path):
    with racing_workers(tmp_path):
        users = [User.objects.create_user(f"racer{i}", email=f"racer{i}@example.com") for i in range(60)]
        for user in users:
            api.notify(user, "signed in from a new device", kind="security")  # critical: at once
    messages = sent(tmp_path)
    assert sorted(to for _, to in messages) == sorted(u.email for u in users)
    assert len({pid for pid, _ in messages}) == 2, "both workers should have sent some"
    assert set(Delivery.objects.filter(channel="email").values_list("state", flat=True)) == {"sent"}


def test_a_worker_killed_between_claim_and_send_never_sends_it_again(tmp_path):
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "signed in from a new device", kind="security")
    marker = tmp_path / "sending"
    hung = start_worker(
        worker_env(tmp_path, DJANGO_EMAIL_BACKEND="tests.mailbackends.Hang", HANG_MARKER=str(marker)),
        "--once",
    )
    try:
        wait_until(marker.exists, timeout=30)  # claimed, and the send has begun
    finally:
        hung.kill()
        hung.wait(10)
        hung.stdout.close()
    assert Delivery.objects.get(channel="email").state == "sending"
    run_once(worker_env(tmp_path))
    assert sent(tmp_path) == [] and Delivery.objects.get(channel="email").state == "sending"
    # Once the lease is over the claim is given up: failed, still never sent.
    time.sleep(0.5)
    run_once(worker_env(tmp_path, NOTIFICATIONS_DELIVERY_LEASE="0.2"))
    assert sent(tmp_path) == []
    assert Delivery.objects.get(channel="email").state == "failed"


def test_worker_once_drains_what_is_due_and_exits(tmp_path):
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "signed in from a new device", kind="security")
    api.notify(alice, "mentioned you", kind="mention")  # email in 2 minutes: not due
    assert "1 sent" in run_once(worker_env(tmp_path))
    assert [to for _, to in sent(tmp_path)] == ["alice@example.com"]
    assert sorted(Delivery.objects.filter(channel="email").values_list("state", flat=True)) == ["pending", "sent"]


@pytest.mark.server
def test_the_server_process_sends_due_emails_itself(tmp_path, make_server, make_user):
    server = make_server(
        NOTIFICATIONS_DELIVERY_THREAD="1",
        NOTIFICATIONS_DELIVERY_POLL="0.2",
        DJANGO_EMAIL_BACKEND=FILES,
        DEMO_EMAIL_DIR=str(tmp_path),
    )
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "signed in from a new device", kind="security")
    wait_until(lambda: sent(tmp_path), timeout=10)
    assert [to for _, to in sent(tmp_path)] == ["alice@example.com"]
    assert server.proc is not None and server.proc.poll() is None


@pytest.mark.server
def test_a_server_with_the_worker_thread_off_sends_nothing(tmp_path, make_server):
    make_server(
        NOTIFICATIONS_DELIVERY_THREAD="0",
        NOTIFICATIONS_DELIVERY_POLL="0.2",
        DJANGO_EMAIL_BACKEND=FILES,
        DEMO_EMAIL_DIR=str(tmp_path),
    )
    alice = User.objects.create_user("alice", email="alice@example.com")
    api.notify(alice, "signed in from a new device", kind="security")
    time.sleep(2)
    assert sent(tmp_path) == [] and Delivery.objects.get(channel="email").state == "pending"
