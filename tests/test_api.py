"""notifications.api, the signals and declarative publishing, in-process."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from notifications import api
from notifications.models import BroadcastReceipt, Notification
from notifications.signals import notifications_created, notifications_read, notify

pytestmark = pytest.mark.django_db

User = get_user_model()


@pytest.fixture
def alice():
    return User.objects.create_user("alice")


@pytest.fixture
def bob():
    return User.objects.create_user("bob")


@pytest.fixture
def team(alice, bob):
    group = Group.objects.create(name="team")
    group.user_set.add(alice, bob)
    return group


class Recorder:
    def __init__(self, signal):
        self.calls = []
        signal.connect(self, weak=False)
        self.signal = signal

    def __call__(self, **kwargs):
        self.calls.append(kwargs)


@pytest.fixture
def created_signal():
    recorder = Recorder(notifications_created)
    yield recorder
    notifications_created.disconnect(recorder)


@pytest.fixture
def read_signal():
    recorder = Recorder(notifications_read)
    yield recorder
    notifications_read.disconnect(recorder)


def test_notify_one_user_returns_the_saved_row(alice, bob):
    (row,) = api.notify(alice, "mentioned you", actor=bob, description="in #general", level="warning", url="/c/1", data={"k": [1, 2]})
    row.refresh_from_db()
    assert (row.recipient, row.verb, row.level, row.url, row.data) == (alice, "mentioned you", "warning", "/c/1", {"k": [1, 2]})
    assert row.actor == bob and row.actor_display == "bob"
    assert row.unread and not row.deleted and not row.is_broadcast


def test_notify_a_group_writes_one_row_per_member_in_one_query(team, alice, bob, django_assert_num_queries):
    with django_assert_num_queries(4):  # members, savepoint, bulk insert, release
        rows = api.notify(team, "standup in 5")
    assert sorted(r.recipient_id for r in rows) == sorted([alice.pk, bob.pk])
    assert all(r.pk for r in rows)


def test_notify_queryset_and_iterable_and_dedupes(alice, bob):
    assert len(api.notify(User.objects.all(), "qs")) == 2
    assert len(api.notify([alice, bob, alice], "list")) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": "critical"}, "allowed: success, info, warning, error"),
        ({"data": {"when": timezone.now()}}, "JSON values"),
        ({"data": {"nan": float("nan")}}, "JSON values"),
        ({"data": ["not", "a", "dict"]}, "dict"),
        ({"data": {"big": "x" * 9000}}, "NOTIFICATIONS_MAX_DATA_BYTES"),
        ({"verb": ""}, "non-empty"),
        ({"verb": "v" * 256}, "255"),
    ],
)
def test_notify_rejects_bad_input_and_writes_nothing(alice, kwargs, message):
    kwargs = {"verb": "ok", **kwargs}
    verb = kwargs.pop("verb")
    with pytest.raises(ValueError, match=message):
        api.notify(alice, verb, **kwargs)
    assert not Notification.objects.exists()


@pytest.mark.parametrize("recipient", [None, "alice", 42, {"user": 1}, []])
def test_notify_rejects_recipients_it_does_not_understand(recipient):
    with pytest.raises(ValueError, match="recipient"):
        api.notify(recipient, "hello")
    assert not Notification.objects.exists()


def test_notify_rejects_a_queryset_of_something_else(alice):
    with pytest.raises(ValueError, match="must be of"):
        api.notify(Group.objects.all(), "hello")


def test_notify_rejects_an_empty_group():
    with pytest.raises(ValueError, match="at least one recipient"):
        api.notify(Group.objects.create(name="empty"), "hello")


def test_data_limit_is_a_setting(alice, settings):
    settings.NOTIFICATIONS_MAX_DATA_BYTES = 20
    with pytest.raises(ValueError, match="limit is 20"):
        api.notify(alice, "v", data={"text": "x" * 30})


def test_created_signal_and_poke_wait_for_commit(alice, created_signal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        api.notify(alice, "later")
    assert created_signal.calls == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert [n.verb for n in created_signal.calls[0]["notifications"]] == ["later"]


def test_rolled_back_notify_sends_nothing(alice, created_signal, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                api.notify(alice, "never")
                raise RuntimeError
    assert callbacks == []
    assert created_signal.calls == []
    assert not Notification.objects.exists()


def test_broadcast_audiences(team):
    assert api.broadcast("all").audience == "all"
    assert api.broadcast("all", audience="all").audience == "all"
    assert api.broadcast("staff", audience="staff").audience == "staff"
    row = api.broadcast("team", audience=team)
    assert (row.audience, row.audience_group, row.recipient) == ("group", team, None)


@pytest.mark.parametrize("audience", ["everyone", 3, "user"])
def test_broadcast_rejects_unknown_audience(audience):
    with pytest.raises(ValueError, match="'staff', or a django.contrib.auth Group"):
        api.broadcast("x", audience=audience)


def test_visible_covers_own_rows_and_audience_broadcasts(alice, bob, team):
    staff = User.objects.create_user("root", is_staff=True)
    mine = api.notify(alice, "mine")[0]
    api.notify(bob, "bobs")
    everyone = api.broadcast("everyone")
    for_team = api.broadcast("team", audience=team)
    api.broadcast("staff", audience="staff")
    api.broadcast("expired", expires_at=timezone.now() - timedelta(minutes=1))
    later = api.broadcast("expires later", expires_at=timezone.now() + timedelta(hours=1))
    assert set(api.visible(alice)) == {mine, everyone, for_team, later}
    assert {n.verb for n in api.visible(staff)} == {"everyone", "staff", "expires later"}


def test_broadcast_read_state_is_per_user(alice, bob, read_signal, django_capture_on_commit_callbacks):
    row = api.broadcast("hello")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.mark_read(alice, [row.pk]) == [row.pk]
    assert api.unread_count(alice) == 0 and api.unread_count(bob) == 1
    assert BroadcastReceipt.objects.filter(user=alice, notification=row).exists()
    assert read_signal.calls[0]["ids"] == [row.pk] and read_signal.calls[0]["user"] == alice
    api.mark_unread(alice, [row.pk])
    assert api.unread_count(alice) == 1


def test_mark_all_read_and_counts(alice, bob):
    api.notify(alice, "a")
    api.notify(alice, "b")
    api.notify(bob, "c")
    api.broadcast("d")
    assert api.unread_count(alice) == 3
    assert api.mark_all_read(alice) == 3
    assert api.unread_count(alice) == 0
    assert api.unread_count(bob) == 2


def test_mark_read_ignores_other_users_ids(alice, bob):
    theirs = api.notify(bob, "b")[0]
    assert api.mark_read(alice, [theirs.pk]) == []
    theirs.refresh_from_db()
    assert theirs.unread


def test_delete_soft_deletes_personal_and_hides_broadcast_for_one_user(alice, bob):
    mine = api.notify(alice, "a")[0]
    shared = api.broadcast("b")
    assert sorted(api.delete(alice, [mine.pk, shared.pk])) == sorted([mine.pk, shared.pk])
    assert list(api.visible(alice)) == []
    assert list(api.visible(bob)) == [shared]
    mine.refresh_from_db()
    assert mine.deleted


def test_hq_signal_puts_extra_keys_in_data_and_accepts_public(alice, bob):
    result = notify.send(bob, recipient=alice, verb="liked", public=True, emoji="+1", level="success")
    (row,) = result[0][1]
    row.refresh_from_db()
    assert (row.verb, row.level, row.data, row.actor) == ("liked", "success", {"emoji": "+1"}, bob)


def test_hq_signal_with_a_group_recipient(team):
    (_, rows), = notify.send(None, recipient=team, verb="meeting")
    assert len(rows) == 2 and all(r.actor_display == "" for r in rows)


def test_hq_signal_rejects_unknown_level(alice):
    with pytest.raises(ValueError, match="allowed"):
        notify.send(alice, recipient=alice, verb="x", level="fatal")


def test_as_dict_shape_and_escaping(alice):
    from notifications.render import dumps

    row = api.notify(alice, "<script>alert(1)</script>", description="a & b")[0]
    text = dumps(row.as_dict())
    assert "<" not in text and "&" not in text
    decoded = json.loads(text)
    assert decoded["verb"] == "<script>alert(1)</script>"
    assert set(decoded) >= {"id", "verb", "description", "level", "url", "actor", "data", "created", "unread"}
