"""Digests and worker processes: two racing, one killed between claim and send."""

from __future__ import annotations

import email
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from notifications import api, worker
from notifications.models import Delivery
from notifications.preferences import set_preferences

from .conftest import ROOT
from .test_away_worker import racing_workers, run_once, sent, wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def daily_digests_waiting(monkeypatch, users: list, each: int) -> None:
    """Each user chose a daily mentions digest and has ``each`` mentions folded into it."""
    for user in users:
        set_preferences(user, [{"kind": "mention", "channel": "email", "every": "daily"}])
        for i in range(each):
            api.notify(user, f"mentioned you {i}", kind="mention")
    later = timezone.now() + timedelta(minutes=3)  # the mention's email waits 2 minutes
    with monkeypatch.context() as m:
        m.setattr(timezone, "now", lambda: later)
        assert worker.drain() == {"folded": len(users) * each}


def send_digests_now(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "notifications_send_digests", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def listed(path: Path) -> int:
    body = email.message_from_bytes(path.read_bytes()).get_payload()[0].get_payload(decode=True).decode()
    return sum(1 for line in body.splitlines() if line.startswith("- "))


def test_two_workers_racing_send_each_digest_once_with_each_notification_once(tmp_path, monkeypatch):
    users = [User.objects.create_user(f"racer{i}", email=f"racer{i}@example.com") for i in range(20)]
    daily_digests_waiting(monkeypatch, users, each=3)
    with racing_workers(tmp_path):
        made_due = send_digests_now(worker_env(tmp_path), "--no-send")
        assert made_due.wait(60) == 0
        made_due.stdout.close()
    messages = sent(tmp_path)
    assert sorted(to for _, to in messages) == sorted(u.email for u in users)
    assert [listed(path) for path in sorted(tmp_path.glob("*.eml"))] == [3] * len(users)
    assert set(Delivery.objects.values_list("state", flat=True)) == {"sent"}


def test_a_worker_killed_between_claiming_a_digest_and_sending_it_never_sends_it(tmp_path, monkeypatch):
    alice = User.objects.create_user("alice", email="alice@example.com")
    daily_digests_waiting(monkeypatch, [alice], each=2)
    marker = tmp_path / "sending"
    hung = send_digests_now(
        worker_env(tmp_path, DJANGO_EMAIL_BACKEND="tests.mailbackends.Hang", HANG_MARKER=str(marker))
    )
    try:
        wait_until(marker.exists, timeout=30)  # claimed, and the send has begun
    finally:
        hung.kill()
        hung.wait(10)
        hung.stdout.close()
    assert set(Delivery.objects.values_list("state", flat=True)) == {"sending"}
    run_once(worker_env(tmp_path))
    assert sent(tmp_path) == []
    time.sleep(0.5)
    run_once(worker_env(tmp_path, NOTIFICATIONS_DELIVERY_LEASE="0.2"))
    assert sent(tmp_path) == []
    assert set(Delivery.objects.values_list("state", flat=True)) == {"failed"}
