"""notify(..., key=...): a retried call notifies nobody twice, also when two calls race."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.utils import timezone

from notifications import api, worker
from notifications.kinds import Kind
from notifications.models import Delivery, Notification
from notifications.signals import notify

from .conftest import ROOT, database_url

User = get_user_model()


@pytest.fixture
def alice(db):
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.mark.django_db
def test_a_second_call_with_the_same_key_returns_the_first_row_and_writes_nothing(alice):
    (first,) = api.notify(alice, "commented", key="comment:42")
    assert api.notify(alice, "commented", key="comment:42") == [first]
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_a_retried_call_sends_no_second_email(alice, declare):
    declare(Kind("keyed", channels={"in_app": True, "email": True}))
    api.notify(alice, "commented", kind="keyed", key="comment:42")
    api.notify(alice, "commented", kind="keyed", key="comment:42")
    worker.drain()
    assert len(mail.outbox) == 1 and Delivery.objects.count() == 1


@pytest.mark.django_db
def test_a_key_is_per_recipient(alice):
    bob = User.objects.create_user("bob")
    api.notify(alice, "commented", key="comment:42")
    rows = api.notify([alice, bob], "commented", key="comment:42")
    assert sorted(n.recipient_id for n in rows) == [alice.pk, bob.pk]
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_a_key_holds_only_within_its_window(alice, settings):
    settings.NOTIFICATIONS_IDEMPOTENCY_WINDOW = 60
    api.notify(alice, "commented", key="comment:42")
    from notifications.models import PublishKey

    PublishKey.objects.update(created=PublishKey.objects.get().created - timedelta(seconds=61))
    api.notify(alice, "commented", key="comment:42")
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_notify_send_takes_a_key_too(alice):
    notify.send(alice, recipient=alice, verb="commented", key="comment:42")
    ((_, rows),) = notify.send(alice, recipient=alice, verb="commented", key="comment:42")
    assert len(rows) == 1 and Notification.objects.count() == 1
    assert "key" not in rows[0].data


@pytest.mark.django_db
def test_a_key_that_is_not_a_short_string_is_refused(alice):
    with pytest.raises(ValueError, match="key must be"):
        api.notify(alice, "commented", key="x" * 201)
    assert not Notification.objects.exists()


def _script(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DATABASE_URL": database_url()}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.scripts", "notify-key", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _blocked_on_a_lock() -> bool:
    """PostgreSQL: some session waits for a lock (the second call, on the key)."""
    if connection.vendor != "postgresql":
        return True  # SQLite: the second writer waits for the first's write lock anyway
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_processes_racing_with_one_key_write_one_row(tmp_path):
    User.objects.create_user("alice")
    hold, release = tmp_path / "hold", tmp_path / "release"
    first = _script("alice", "comment:42", str(hold), str(release))
    second = None
    try:
        _wait(hold.exists)  # the first has written its row, not committed
        second = _script("alice", "comment:42")
        _wait(_blocked_on_a_lock)
        release.touch()
        out_first, err_first = first.communicate(timeout=60)
        out_second, err_second = second.communicate(timeout=60)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    assert Notification.objects.count() == 1
    assert out_first.split() == out_second.split() == [str(Notification.objects.get().pk)]


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite has one writer: two connections cannot both be inside a write",
)
@pytest.mark.django_db(transaction=True)
def test_two_threads_racing_with_one_key_on_two_connections_write_one_row():
    import threading

    from django.db import connections
    from django.db.models.signals import post_save

    alice = User.objects.create_user("alice")
    inside, release = threading.Event(), threading.Event()
    results: dict[str, list[int]] = {}

    def hold(**kwargs) -> None:
        if threading.current_thread().name == "first":
            inside.set()
            release.wait(60)

    def call(name: str) -> None:
        try:
            results[name] = [n.pk for n in api.notify(alice, "commented", key="comment:42")]
        finally:
            connections.close_all()

    post_save.connect(hold, sender=Notification, weak=False, dispatch_uid="hold-first")
    try:
        first = threading.Thread(target=call, args=("first",), name="first")
        first.start()
        assert inside.wait(30)  # the first has written its row, not committed
        second = threading.Thread(target=call, args=("second",), name="second")
        second.start()
        _wait(_blocked_on_a_lock)
        release.set()
        first.join(60)
        second.join(60)
    finally:
        release.set()
        post_save.disconnect(dispatch_uid="hold-first", sender=Notification)
    assert Notification.objects.count() == 1
    assert results["first"] == results["second"] == [Notification.objects.get().pk]


@pytest.mark.django_db
def test_pruning_deletes_the_keys_that_no_longer_hold(alice, settings):
    from django.core.management import call_command

    from notifications.models import PublishKey

    settings.NOTIFICATIONS_IDEMPOTENCY_WINDOW = 60
    api.notify(alice, "commented", key="comment:41")
    api.notify(alice, "commented", key="comment:42")
    PublishKey.objects.filter(key="comment:41").update(created=timezone.now() - timedelta(seconds=61))
    call_command("prune_notifications", verbosity=0)
    assert list(PublishKey.objects.values_list("key", flat=True)) == ["comment:42"]


@pytest.mark.django_db
def test_notify_on_save_takes_a_key_of_the_instance(alice):
    from notifications.api import notify_on_save
    from tests.testapp.models import Article

    notify_on_save(
        Article,
        recipient=lambda a: a.author,
        verb="was saved",
        on="save",
        key=lambda a: f"article:{a.pk}",
        condition=lambda a: a.title == "keyed on save",  # this test's articles only
    )
    article = Article.objects.create(author=alice, title="keyed on save")
    article.save()
    assert Notification.objects.filter(verb="was saved").count() == 1
