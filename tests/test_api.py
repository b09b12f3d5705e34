"""notifications.api, the signals and declarative publishing, in-process."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import api, delivery
from notifications.models import BroadcastReceipt, Notification
from notifications.signals import notifications_created, notifications_read, notify

pytestmark = pytest.mark.django_db

User = get_user_model()


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
    with django_assert_num_queries(3):  # savepoint, INSERT ... SELECT of the members, release
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


def test_hq_signal_accepts_custom_levels_as_hq_does(alice):
    ((_, (row,)),) = notify.send(alice, recipient=alice, verb="x", level="fatal")
    row.refresh_from_db()
    assert row.level == "fatal"


def test_hq_signal_rejects_a_level_longer_than_hq_stores(alice):
    with pytest.raises(ValueError, match="1 to 20 characters"):
        notify.send(alice, recipient=alice, verb="x", level="x" * 21)


def test_api_notify_still_rejects_unknown_level(alice):
    with pytest.raises(ValueError, match="allowed"):
        api.notify(alice, "x", level="fatal")


def test_as_dict_shape_and_escaping(alice):
    from notifications.render import dumps

    row = api.notify(alice, "<script>alert(1)</script>", description="a & b")[0]
    text = dumps(row.as_dict())
    assert "<" not in text and "&" not in text
    decoded = json.loads(text)
    assert decoded["verb"] == "<script>alert(1)</script>"
    assert set(decoded) >= {"id", "verb", "description", "level", "url", "actor", "data", "created", "unread"}


# -- fan-out to a group or a queryset in the database ----------------------------

CROWD = 300


@pytest.fixture
def crowd():
    """A group of CROWD users, and two users outside it."""
    users = User.objects.bulk_create([User(username=f"member{i}") for i in range(CROWD)])
    group = Group.objects.create(name="crowd")
    group.user_set.add(*users)
    User.objects.create_user("outsider1")
    User.objects.create_user("outsider2")
    return group


@pytest.fixture
def pokes(monkeypatch):
    """The user ids of every poke_users() call."""
    calls = []
    monkeypatch.setattr(delivery, "poke_users", lambda ids: calls.append(sorted(ids)))
    return calls


def stored(ids):
    """The rows as stored, every column but id and recipient_id, read with SQL."""
    table = Notification._meta.db_table
    columns = [f.column for f in Notification._meta.concrete_fields if f.name not in ("id", "recipient")]
    qn = connection.ops.quote_name
    placeholders = ", ".join(["%s"] * len(ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(map(qn, columns))} FROM {qn(table)} WHERE {qn('id')} IN ({placeholders})",
            list(ids),
        )
        return [tuple(json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in row) for row in cursor.fetchall()]


RICH = {
    "description": "in #general, with ünïcode ✓ and 'quotes' \"both\"",
    "level": "warning",
    "url": "/c/1?x=%s&y=1",
    "data": {"k": [1, 2.5, None, True], "nested": {"é": "\\n%s"}, "empty": {}, "n": -3},
}


@pytest.mark.parametrize("kind", ["group", "queryset"])
@pytest.mark.parametrize("fan_out", [True, False], ids=["insert-select", "bulk_create"])
def test_fan_out_writes_each_member_exactly_what_one_user_gets(crowd, alice, bob, kind, fan_out, monkeypatch):
    if not fan_out:
        monkeypatch.setattr(api, "_can_fan_out", lambda connection: False)
    post = Group.objects.create(name="a post")
    when = timezone.now() - timedelta(days=1, microseconds=1)
    options = {"actor": bob, "action_object": crowd, "target": post, "timestamp": when, **RICH}
    (single,) = api.notify(alice, "said", **options)
    recipient = crowd if kind == "group" else User.objects.filter(groups=crowd)
    rows = api.notify(recipient, "said", **options)

    members = set(crowd.user_set.values_list("pk", flat=True))
    assert len(rows) == CROWD and {r.recipient_id for r in rows} == members
    in_db = Notification.objects.filter(verb="said").exclude(pk=single.pk)
    assert sorted(in_db.values_list("recipient_id", flat=True)) == sorted(members)  # one each
    # Stored byte for byte as the single user's row (data, created, content types...).
    assert set(stored([r.pk for r in rows])) == set(stored([single.pk]))

    def shown(row):
        return {k: v for k, v in row.as_dict().items() if k not in ("id", "created")}

    single.refresh_from_db()
    for row in Notification.objects.filter(pk__in=[r.pk for r in rows]):
        assert shown(row) == shown(single) and row.created == single.created == when
        assert (row.actor, row.action_object, row.target) == (bob, crowd, post)
    assert shown(rows[0]) == shown(single)


@pytest.mark.parametrize("kind", ["group", "queryset"])
def test_fan_out_returns_saved_rows_with_their_ids(crowd, bob, kind):
    recipient = crowd if kind == "group" else User.objects.filter(groups=crowd).order_by("-username")
    rows = api.notify(recipient, "hello", actor=bob, data={"n": 1})
    assert [r.pk for r in rows] == sorted(r.pk for r in rows)
    assert {(r.pk, r.recipient_id) for r in rows} == set(Notification.objects.values_list("pk", "recipient_id"))
    assert all(not r._state.adding and r._state.db == "default" for r in rows)
    in_db = {n.pk: n for n in Notification.objects.all()}
    for row in rows:
        assert row.as_dict() == in_db[row.pk].as_dict()
        assert (row.audience, row.unread, row.deleted, row.is_broadcast) == ("user", True, False, False)
    assert rows[0].recipient == User.objects.get(pk=rows[0].recipient_id)
    assert rows[0].actor == bob and rows[0].actor_content_type == ContentType.objects.get_for_model(User)


def test_fan_out_pokes_and_signals_after_commit(crowd, created_signal, pokes, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        rows = api.notify(crowd, "later")
    assert pokes == [] and created_signal.calls == []
    assert len(callbacks) == 1
    callbacks[0]()
    assert pokes == [sorted(crowd.user_set.values_list("pk", flat=True))]
    (call,) = created_signal.calls
    assert call["notifications"] == rows and call["sender"] is Notification


@pytest.mark.parametrize("kind", ["group", "queryset"])
def test_rolled_back_fan_out_writes_and_pokes_nothing(crowd, kind, created_signal, pokes, django_capture_on_commit_callbacks):
    recipient = crowd if kind == "group" else User.objects.all()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                assert len(api.notify(recipient, "never")) >= CROWD
                assert Notification.objects.count() >= CROWD
                raise RuntimeError
    assert callbacks == [] and pokes == [] and created_signal.calls == []
    assert not Notification.objects.exists()


def test_fan_out_collapses_duplicates(crowd, alice, bob):
    other = Group.objects.create(name="other")
    other.user_set.add(alice, *User.objects.filter(groups=crowd)[:10])
    both = User.objects.filter(groups__in=[crowd, other])
    assert both.count() == CROWD + 11  # ten members twice
    rows = api.notify(both, "once each")
    assert len(rows) == CROWD + 1
    assert len({r.recipient_id for r in rows}) == CROWD + 1
    assert Notification.objects.count() == CROWD + 1


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: User.objects.order_by("-pk")[:5], id="sliced"),
        pytest.param(lambda: User.objects.filter(username__startswith="member1").distinct(), id="distinct"),
        pytest.param(lambda: User.objects.annotate(n=Count("groups")).filter(n__gte=1), id="aggregate"),
        pytest.param(lambda: User.objects.filter(username="alice").union(User.objects.filter(username="bob")), id="union"),
        pytest.param(lambda: User.objects.values_list("username", flat=True).filter(is_staff=False), id="values_list"),
        pytest.param(lambda: User.objects.filter(pk__in=Group.objects.filter(name="crowd").values("user")), id="subquery"),
    ],
)
def test_fan_out_to_querysets_of_every_shape(crowd, alice, bob, make):
    expected = set(make().values_list("pk", flat=True))
    rows = api.notify(make(), "shaped")
    assert sorted(r.recipient_id for r in rows) == sorted(expected)
    assert set(Notification.objects.values_list("recipient_id", flat=True)) == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda group: group,
        lambda group: User.objects.filter(groups=group),
        lambda group: User.objects.none(),
        lambda group: User.objects.filter(pk__in=[]),
    ],
    ids=["group", "queryset", "none", "pk__in=[]"],
)
def test_fan_out_to_nobody_raises_before_the_other_errors(make, created_signal, pokes):
    empty = Group.objects.create(name="empty")
    with pytest.raises(ValueError, match="at least one recipient"):
        api.notify(make(empty), "hello")
    with pytest.raises(ValueError, match="at least one recipient"):  # as when ids were read first
        api.notify(make(empty), "", level="fatal")
    assert not Notification.objects.exists() and pokes == [] and created_signal.calls == []


def test_fan_out_checks_the_rest_as_before(crowd):
    with pytest.raises(ValueError, match="allowed: success"):
        api.notify(crowd, "ok", level="fatal")
    with pytest.raises(ValueError, match="NUL"):
        api.notify(User.objects.all(), "ok", data={"x": "a\x00b"})
    with pytest.raises(ValueError, match="must be saved first"):
        api.notify(Group(name="unsaved"), "ok")
    assert not Notification.objects.exists()


def test_fan_out_queries_do_not_grow_with_the_group(alice, bob, team, crowd, django_assert_max_num_queries):
    ContentType.objects.get_for_model(User)  # warm the cache both calls use
    counts = []
    for recipient in (team, crowd, User.objects.filter(groups=team), User.objects.filter(groups=crowd)):
        with CaptureQueriesContext(connection) as queries:
            api.notify(recipient, "count", actor=alice)
        counts.append(len(queries))
    assert counts == [counts[0]] * 4
    with django_assert_max_num_queries(3):  # savepoint, INSERT ... SELECT ... RETURNING, release
        assert len(api.notify(crowd, "count", actor=alice, data={"big": list(range(100))})) == CROWD


def test_recipient_has_no_index_of_its_own():
    """notif_recipient_id (recipient, id) serves lookups by recipient; one more index only slows inserts."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Notification._meta.db_table)
    indexes = {name: c["columns"] for name, c in constraints.items() if c["index"] and not c["primary_key"]}
    assert indexes["notif_recipient_id"] == ["recipient_id", "id"]
    assert ["recipient_id"] not in indexes.values()
    assert any(c["foreign_key"] and c["columns"] == ["recipient_id"] for c in constraints.values())
