"""Two worker processes racing over the members of open groups send one email per group."""

from __future__ import annotations

import signal

import pytest
from django.contrib.auth import get_user_model

from notifications import api
from notifications.models import Delivery
from notifications.preferences import set_preferences

from .test_away_worker import sent, start_worker, wait_until, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def test_two_workers_racing_over_a_groups_members_send_it_one_email(tmp_path):
    env = worker_env(tmp_path, NOTIFICATIONS_DELIVERY_BATCH="1", SLOW_EMAIL="0.02")
    workers = [start_worker(env, "--poll", "0.1") for _ in range(2)]
    try:
        for w in workers:  # both are polling before anything is due
            assert w.stdout is not None and "Delivering" in w.stdout.readline()
        users = [User.objects.create_user(f"racer{i}", email=f"racer{i}@example.com") for i in range(15)]
        for user in users:
            # Comments group by target; their email (at once) is off unless chosen.
            set_preferences(user, [{"kind": "comment", "channel": "email", "enabled": True}])
            for _ in range(4):
                api.notify(user, "commented", target=user, kind="comment")
        unfinished = Delivery.objects.exclude(state__in=["sent", "skipped", "failed"])
        wait_until(lambda: not unfinished.exists(), timeout=60)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(20)
            w.stdout.close()
    assert sorted(to for _, to in sent(tmp_path)) == sorted(u.email for u in users)
