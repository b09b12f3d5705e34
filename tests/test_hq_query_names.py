"""
django-notifications-hq's query names on this app's model: ``timestamp`` is
the ``created`` column under hq's name wherever Django takes a field name, and
what cannot mean the same here (``data__contains`` with a string, hq's
abstract model) fails with a message saying what to write instead.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib import admin
from django.core import checks
from django.core.exceptions import FieldError
from django.db import connection
from django.db.models import Count, F, Max, Min, Q
from django.db.models.functions import TruncDay
from django.utils import timezone

from notifications.models import Notification
from notifications.signals import notify

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def rows(alice, bob):
    """Three notifications to alice: two hours, thirty minutes and no time ago."""
    made = []
    for ago in (timedelta(hours=2), timedelta(minutes=30), timedelta(0)):
        [(_, [n])] = notify.send(bob, recipient=alice, verb="pinged", timestamp=NOW - ago)
        made.append(n)
    return made


def ids(qs):
    return [n.pk for n in qs]


def test_latest_by_timestamp(rows):
    assert Notification.objects.latest("timestamp") == rows[2]


def test_earliest_by_timestamp(rows):
    assert Notification.objects.earliest("timestamp") == rows[0]


def test_order_by_timestamp(rows):
    assert ids(Notification.objects.order_by("timestamp")) == [r.pk for r in rows]


def test_order_by_minus_timestamp(rows):
    assert ids(Notification.objects.order_by("-timestamp")) == [r.pk for r in reversed(rows)]


def test_filter_timestamp_range(rows):
    qs = Notification.objects.filter(timestamp__gte=NOW - timedelta(hours=1), timestamp__lt=NOW)
    assert ids(qs) == [rows[1].pk]


def test_filter_timestamp_equal(rows):
    assert ids(Notification.objects.filter(timestamp=NOW)) == [rows[2].pk]


def test_exclude_and_q_on_timestamp(rows):
    assert ids(Notification.objects.exclude(Q(timestamp__lt=NOW - timedelta(hours=1))).order_by("id")) == [
        rows[1].pk, rows[2].pk
    ]


def test_update_timestamp(rows):
    Notification.objects.filter(pk=rows[2].pk).update(timestamp=NOW - timedelta(days=1))
    assert Notification.objects.get(pk=rows[2].pk).created == NOW - timedelta(days=1)


def test_update_timestamp_from_f(rows):
    Notification.objects.filter(pk=rows[0].pk).update(timestamp=F("timestamp") + timedelta(hours=3))
    assert Notification.objects.latest("timestamp") == rows[0]


def test_values_and_values_list_of_timestamp(rows):
    assert Notification.objects.filter(pk=rows[1].pk).values("timestamp").get() == {
        "timestamp": NOW - timedelta(minutes=30)
    }
    assert list(Notification.objects.order_by("id").values_list("timestamp", flat=True)) == [
        r.created for r in rows
    ]


def test_aggregates_and_annotations_of_timestamp(rows):
    assert Notification.objects.aggregate(a=Min("timestamp"), b=Max("timestamp")) == {
        "a": NOW - timedelta(hours=2), "b": NOW
    }
    assert Notification.objects.annotate(t=F("timestamp")).get(pk=rows[1].pk).t == rows[1].created
    by_day = Notification.objects.annotate(d=TruncDay("timestamp")).values("d").annotate(n=Count("id"))
    assert sum(r["n"] for r in by_day) == 3


def test_dates_of_timestamp(rows):
    assert len(Notification.objects.dates("timestamp", "day")) >= 1


def test_save_update_fields_timestamp(rows):
    rows[0].timestamp = NOW + timedelta(hours=1)
    rows[0].save(update_fields=["timestamp"])
    assert Notification.objects.latest("created") == rows[0]


def test_timestamp_and_created_are_one_value_on_instances(alice):
    n = Notification(recipient=alice, verb="x", timestamp=NOW - timedelta(days=2))
    assert n.created == NOW - timedelta(days=2)
    n.created = NOW
    assert n.timestamp == NOW
    n.save()
    assert Notification.objects.filter(created=NOW, timestamp=NOW).get() == n


def test_created_keeps_working_in_queries(rows):
    assert Notification.objects.latest("created") == rows[2]
    assert Notification.objects.filter(pk=rows[2].pk).values("created").get() == {"created": NOW}


def test_the_json_keeps_its_created_key(rows):
    assert rows[2].as_dict()["created"] == NOW.isoformat()


def test_admin_takes_timestamp_in_list_filter_and_ordering():
    class HqStyle(admin.ModelAdmin):
        list_filter = ("timestamp",)
        ordering = ("-timestamp",)
        date_hierarchy = "timestamp"

    errors = HqStyle(Notification, admin.AdminSite()).check()
    assert [e for e in errors if e.level >= checks.ERROR] == []


def test_data_contains_a_string_says_what_to_write_instead(rows):
    with pytest.raises(FieldError, match=r"data__<key>=value"):
        list(Notification.objects.filter(data__contains="pinged"))


@pytest.mark.skipif(
    not connection.features.supports_json_field_contains, reason="no JSON containment on SQLite"
)
def test_data_contains_a_dict_is_not_refused(alice, bob):
    notify.send(bob, recipient=alice, verb="x", colour="red")
    assert Notification.objects.filter(data__contains={"colour": "red"}).count() == 1


@pytest.mark.skipif(
    not connection.features.supports_json_field_contains, reason="no JSON containment on SQLite"
)
def test_data_key_contains_a_string_is_not_refused(alice, bob):
    notify.send(bob, recipient=alice, verb="x", tags=["red", "blue"])
    assert Notification.objects.filter(data__tags__contains="red").count() == 1


def test_hq_abstract_model_import_says_what_to_do():
    with pytest.raises(ImportError, match="Notification.data|model of your own"):
        from notifications.base.models import AbstractNotification  # noqa: F401


def test_refresh_from_db_takes_either_name(rows):
    Notification.objects.filter(pk=rows[0].pk).update(created=NOW + timedelta(days=1))
    rows[0].refresh_from_db(fields=["timestamp"])
    assert rows[0].created == NOW + timedelta(days=1)
    Notification.objects.filter(pk=rows[0].pk).update(timestamp=NOW + timedelta(days=2))
    rows[0].refresh_from_db(fields=["created"])
    assert rows[0].timestamp == NOW + timedelta(days=2)


def test_deferred_timestamp_loads_on_access(rows):
    n = Notification.objects.only("id").get(pk=rows[1].pk)
    assert n.timestamp == n.created == NOW - timedelta(minutes=30)


def test_get_next_and_previous_by_timestamp_as_hq(rows):
    assert rows[1].get_next_by_timestamp() == rows[2]
    assert rows[1].get_previous_by_timestamp() == rows[0]
