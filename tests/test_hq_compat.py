"""Code written for django-notifications-hq, run against this app's model, in-process."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models.signals import post_save
from django.test import override_settings
from django.utils import timezone
from django.utils.translation import gettext_lazy

from notifications import api
from notifications.models import Notification
from notifications.receivers import on_notify
from notifications.signals import notifications_read, notify
from notifications.utils import id2slug, slug2id

pytestmark = pytest.mark.django_db

User = get_user_model()
SOFT = override_settings(DJANGO_NOTIFICATIONS_CONFIG={"SOFT_DELETE": True})


@pytest.fixture
def reads():
    calls: list[dict] = []

    def record(**kwargs):
        calls.append(kwargs)

    notifications_read.connect(record, weak=False, dispatch_uid="test-hq-reads")
    yield calls
    notifications_read.disconnect(dispatch_uid="test-hq-reads")


def send(actor, **kwargs):
    ((receiver, rows),) = notify.send(actor, **kwargs)
    assert receiver is on_notify
    return rows


# -- notify.send ----------------------------------------------------------------


def test_notify_send_returns_receiver_and_rows_as_hq(alice, bob):
    result = notify.send(alice, recipient=bob, verb="commented")
    assert isinstance(result, list) and len(result) == 1
    receiver, rows = result[0]
    assert receiver is on_notify
    assert [n.recipient for n in rows] == [bob]


def test_notify_send_to_a_group_returns_one_row_per_member(alice, bob):
    group = Group.objects.create(name="g")
    group.user_set.add(alice, bob)
    rows = send(alice, recipient=group, verb="meets")
    assert sorted(n.recipient_id for n in rows) == sorted([alice.pk, bob.pk])


def test_notify_send_to_nobody_creates_nothing(alice):
    assert send(alice, recipient=[], verb="x") == []
    assert send(alice, recipient=User.objects.none(), verb="x") == []
    assert send(alice, recipient=Group.objects.create(name="empty"), verb="x") == []
    assert not Notification.objects.exists()


def test_notify_send_accepts_a_lazy_verb(alice, bob):
    (row,) = send(alice, recipient=bob, verb=gettext_lazy("liked"))
    row.refresh_from_db()
    assert row.verb == "liked"


def test_notify_send_sets_hq_columns_from_keywords(alice, bob):
    (row,) = send(alice, recipient=bob, verb="x", public=False, emailed=True, url="/p/1/", colour="red")
    row.refresh_from_db()
    assert (row.public, row.emailed, row.url) == (False, True, "/p/1/")
    assert row.data == {"colour": "red", "url": "/p/1/"}


def test_notify_send_encodes_extra_values_as_hq_json_field_did(alice, bob):
    when = timezone.now()
    (row,) = send(alice, recipient=bob, verb="x", description=gettext_lazy("lazy"), at=when)
    row.refresh_from_db()
    assert row.description == "lazy"
    assert row.data == {"at": DjangoJSONEncoder().default(when)}


def test_notify_send_keeps_the_given_timestamp(alice, bob):
    when = timezone.now() - timedelta(days=3)
    (row,) = send(alice, recipient=bob, verb="x", timestamp=when, description=None)
    row.refresh_from_db()
    assert row.timestamp == when and row.description == ""


def test_post_save_fires_once_per_row_created_by_notify_send(alice, bob):
    saved = []

    def receiver(sender, instance, created, **kwargs):
        saved.append((instance.pk, created))

    post_save.connect(receiver, sender=Notification, weak=False, dispatch_uid="test-hq-post-save")
    try:
        rows = send(alice, recipient=User.objects.filter(pk__in=[alice.pk, bob.pk]), verb="x")
        rows += send(alice, recipient=bob, verb="y")
    finally:
        post_save.disconnect(sender=Notification, dispatch_uid="test-hq-post-save")
    assert sorted(saved) == sorted((n.pk, True) for n in rows)


# -- the model --------------------------------------------------------------------


def test_timestamp_is_created(alice, bob):
    when = timezone.now() - timedelta(hours=1)
    row = Notification.objects.create(recipient=bob, verb="x", timestamp=when)
    assert row.created == when == row.timestamp


def test_slug_round_trips_through_hq_utils(alice, bob):
    (row,) = send(alice, recipient=bob, verb="x")
    assert row.slug == id2slug(row.id) == row.id + 110909
    assert slug2id(str(row.slug)) == row.id


def test_levels_read_like_hq(alice):
    assert Notification.LEVELS.info == "info"
    assert ("warning", "warning") in list(Notification.LEVELS)


def test_humanized_times(alice, bob):
    (row,) = send(alice, recipient=bob, verb="x")
    assert row.naturalday() == "today"
    assert row.naturaltime() == "now"
    assert row.timesince(row.created + timedelta(minutes=5)) == "5\xa0minutes"


def test_object_urls_link_to_the_admin_page(alice, bob):
    group = Group.objects.create(name="g")
    (row,) = send(group, recipient=bob, verb="x")
    assert row.actor_object_url() == f"<a href='/admin/auth/group/{group.pk}/change/'>{group.pk}</a>"


def test_object_urls_fall_back_to_the_id_without_an_admin_page(alice, bob):
    permission = Permission.objects.first()
    (row,) = send(alice, recipient=bob, verb="x", action_object=permission)
    assert row.action_object_url() == str(permission.pk)
    assert row.target_object_url() == ""


def test_mark_as_read_and_unread_poke_the_recipient(alice, bob, reads, django_capture_on_commit_callbacks):
    (row,) = send(alice, recipient=bob, verb="x")
    with django_capture_on_commit_callbacks(execute=True):
        row.mark_as_read()
    row.refresh_from_db()
    assert row.unread is False
    assert reads[-1]["user"] == bob and reads[-1]["ids"] == [row.pk] and reads[-1]["unread"] is False
    with django_capture_on_commit_callbacks(execute=True):
        row.mark_as_unread()
    assert Notification.objects.get(pk=row.pk).unread is True
    assert reads[-1]["unread"] is True


def test_mark_as_read_on_a_broadcast_says_what_to_use(alice):
    shared = api.broadcast("b")
    with pytest.raises(ValueError, match="api.mark_read"):
        shared.mark_as_read()


# -- the queryset -------------------------------------------------------------------


def test_unread_and_read_use_the_unread_column(alice, bob):
    first, second = send(alice, recipient=[alice, bob], verb="x")
    first.mark_as_read()
    assert list(Notification.objects.read()) == [first]
    assert list(Notification.objects.unread()) == [second]
    assert list(bob.notifications.unread()) == [second]


def test_unread_on_visible_keeps_per_user_broadcast_state(alice, bob):
    shared = api.broadcast("b")
    api.mark_read(alice, [shared.pk])
    assert list(api.visible(alice).unread()) == []
    assert list(api.visible(bob).unread()) == [shared]
    assert list(api.visible(alice).read()) == [shared]


def test_unread_hides_soft_deleted_rows_only_with_soft_delete(alice, bob):
    (row,) = send(alice, recipient=bob, verb="x", deleted=True)
    assert list(bob.notifications.unread()) == [row]
    with SOFT:
        assert list(bob.notifications.unread()) == []
        assert list(bob.notifications.unread(include_deleted=True)) == [row]


def test_mark_all_as_read_for_one_recipient_pokes_only_them(alice, bob, reads, django_capture_on_commit_callbacks):
    rows = send(alice, recipient=[alice, bob], verb="x")
    with django_capture_on_commit_callbacks(execute=True):
        assert Notification.objects.mark_all_as_read(recipient=bob) == 1
    assert [n.unread for n in Notification.objects.order_by("id")] == [True, False]
    assert [(c["user"], c["ids"]) for c in reads] == [(bob, [rows[1].pk])]


def test_mark_all_as_unread_through_the_related_manager(alice, bob):
    send(alice, recipient=bob, verb="x")
    send(alice, recipient=bob, verb="y")
    assert bob.notifications.mark_all_as_read() == 2
    assert bob.notifications.mark_all_as_unread() == 2
    assert bob.notifications.unread().count() == 2


def test_mark_all_as_read_leaves_broadcasts_to_their_receipts(alice):
    shared = api.broadcast("b")
    assert Notification.objects.mark_all_as_read() == 0
    shared.refresh_from_db()
    assert shared.unread is True


def test_sent_and_unsent(alice, bob):
    first, second = send(alice, recipient=[alice, bob], verb="x")
    assert Notification.objects.mark_as_sent(recipient=alice) == 1
    assert list(Notification.objects.sent()) == [first]
    assert list(Notification.objects.unsent()) == [second]
    assert Notification.objects.mark_as_unsent() == 1
    assert Notification.objects.sent().count() == 0


def test_soft_delete_methods_need_soft_delete(alice):
    with pytest.raises(ImproperlyConfigured, match="SOFT_DELETE"):
        Notification.objects.deleted()
    with pytest.raises(ImproperlyConfigured):
        Notification.objects.mark_all_as_deleted()


def test_soft_delete_and_restore_poke_and_hide_from_the_feed(alice, bob, reads, django_capture_on_commit_callbacks):
    (row,) = send(alice, recipient=bob, verb="x")
    with SOFT:
        with django_capture_on_commit_callbacks(execute=True):
            assert bob.notifications.mark_all_as_deleted() == 1
        assert list(Notification.objects.deleted()) == [row]
        assert list(api.visible(bob)) == []
        assert reads[-1]["ids"] == [row.pk]
        assert Notification.objects.mark_all_as_active(recipient=bob) == 1
        assert list(Notification.objects.active()) == [row]
    assert list(api.visible(bob)) == [row]


def test_config_is_read_at_call_time(alice, bob):
    (row,) = send(alice, recipient=bob, verb="x", deleted=True)
    assert bob.notifications.unread().count() == 1
    with SOFT:
        assert bob.notifications.unread().count() == 0
    assert bob.notifications.unread().count() == 1


def test_hq_import_paths(alice):
    from notifications.base.models import NotificationQuerySet, notify_handler
    from notifications.settings import get_config

    assert notify_handler is on_notify
    assert isinstance(Notification.objects.all(), NotificationQuerySet)
    assert get_config()["PAGINATE_BY"] == 20
