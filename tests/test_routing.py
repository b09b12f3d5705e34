"""
A project whose database router sends the app's models (and the users they
point at) to another database: notifications are written, committed and
announced on that database's transactions, not on the default one's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from notifications import api
from notifications.models import Notification
from notifications.signals import notifications_created, notifications_read

ELSEWHERE = "elsewhere"

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", ELSEWHERE])


class AppElsewhereRouter:
    """Notifications and users live in ELSEWHERE; everything else in default."""

    apps = {"notifications", "auth"}

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return ELSEWHERE if model._meta.app_label in self.apps else None

    db_for_write = db_for_read

    def allow_relation(self, a: Any, b: Any, **hints: Any) -> bool:
        return True


class Rollback(Exception):
    pass


@pytest.fixture(autouse=True)
def routed(settings: Any) -> None:
    settings.DATABASE_ROUTERS = ["tests.test_routing.AppElsewhereRouter"]


@pytest.fixture
def announced() -> Iterator[list[str]]:
    """What the app announced (created / read signals), in order."""
    seen: list[str] = []

    def created(notifications: list[Notification], **kwargs: Any) -> None:
        seen.extend(f"created {n.verb}" for n in notifications)

    def read(ids: Any, **kwargs: Any) -> None:
        seen.append(f"read {ids}")

    notifications_created.connect(created)
    notifications_read.connect(read)
    yield seen
    notifications_created.disconnect(created)
    notifications_read.disconnect(read)


def user(name: str) -> Any:
    return get_user_model().objects.create_user(name)


def test_notify_writes_to_the_apps_database():
    alice = user("alice")
    api.notify(alice, "routed")
    assert Notification.objects.using(ELSEWHERE).filter(verb="routed").count() == 1
    assert Notification.objects.using("default").count() == 0


def test_notify_in_a_transaction_of_the_apps_database_is_announced_after_it_commits(announced):
    alice = user("alice")
    with transaction.atomic(using=ELSEWHERE):
        api.notify(alice, "one user")
        api.notify([alice, user("bob")], "two users")
        api.notify(get_user_model().objects.filter(username="alice"), "a queryset")
        api.broadcast("everyone")
        assert announced == []
    assert announced == ["created one user", "created two users", "created two users", "created a queryset", "created everyone"]


def test_notify_rolled_back_on_the_apps_database_is_never_announced(announced):
    alice = user("alice")
    with pytest.raises(Rollback), transaction.atomic(using=ELSEWHERE):
        api.notify(alice, "rolled back")
        api.broadcast("rolled back too")
        raise Rollback
    assert announced == []
    assert not Notification.objects.filter(verb__startswith="rolled back").exists()


def test_mark_read_in_a_transaction_of_the_apps_database_is_announced_after_it_commits(announced):
    alice = user("alice")
    nid = api.notify(alice, "to read")[0].pk
    announced.clear()
    with transaction.atomic(using=ELSEWHERE):
        api.mark_read(alice, [nid])
        api.delete(alice, [nid])
        assert announced == []
    assert announced == [f"read {[nid]}", f"read {[nid]}"]


def test_a_transaction_of_the_default_database_does_not_hold_the_announcement(announced):
    alice = user("alice")
    with transaction.atomic(using="default"):
        api.notify(alice, "not held")
        assert announced == ["created not held"]
