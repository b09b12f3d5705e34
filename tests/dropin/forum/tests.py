"""
The project's own tests. They run unchanged against django-notifications-community
1.12.3 and against the app that replaces it; every test must give the same result.
"""

from datetime import timedelta

from django.contrib.auth.models import User
from django.core.exceptions import FieldError
from django.db.models import Count, F, Max, Min, Q
from django.db.models.functions import TruncDay
from django.test import TestCase, skipUnlessDBFeature
from django.utils import timezone

from notifications.models import Notification
from notifications.signals import notify

from .models import EmailLog, InboxNotification, Post, PublicNotification, Thread
from .notifying import email_unsent


class Base(TestCase):
    def setUp(self):
        self.alice = User.objects.create_user("alice")
        self.bob = User.objects.create_user("bob")
        self.carol = User.objects.create_user("carol")
        self.thread = Thread.objects.create(title="Welcome")
        self.thread.watchers.add(self.alice, self.bob)
        self.now = timezone.now()

    def send(self, recipient, verb="pinged", ago=timedelta(0), **kwargs):
        """One notification from carol, ``ago`` before now."""
        [(_, [n])] = notify.send(
            self.carol, recipient=recipient, verb=verb, timestamp=self.now - ago, **kwargs
        )
        return n


class TimestampQueries(Base):
    def setUp(self):
        super().setUp()
        self.old = self.send(self.alice, ago=timedelta(hours=2))
        self.mid = self.send(self.alice, ago=timedelta(minutes=30))
        self.new = self.send(self.alice)

    def ids(self, qs):
        return [n.pk for n in qs]

    def test_latest_timestamp(self):
        self.assertEqual(Notification.objects.latest("timestamp"), self.new)

    def test_earliest_timestamp(self):
        self.assertEqual(Notification.objects.earliest("timestamp"), self.old)

    def test_order_by_timestamp(self):
        self.assertEqual(self.ids(Notification.objects.order_by("timestamp")), [self.old.pk, self.mid.pk, self.new.pk])

    def test_order_by_minus_timestamp(self):
        self.assertEqual(self.ids(Notification.objects.order_by("-timestamp")), [self.new.pk, self.mid.pk, self.old.pk])

    def test_filter_timestamp_range(self):
        qs = Notification.objects.filter(
            timestamp__gte=self.now - timedelta(hours=1), timestamp__lt=self.now - timedelta(minutes=1)
        )
        self.assertEqual(self.ids(qs), [self.mid.pk])

    def test_filter_timestamp_equal(self):
        self.assertEqual(self.ids(Notification.objects.filter(timestamp=self.new.timestamp)), [self.new.pk])

    def test_exclude_timestamp(self):
        qs = Notification.objects.exclude(timestamp__lt=self.now - timedelta(hours=1)).order_by("pk")
        self.assertEqual(self.ids(qs), [self.mid.pk, self.new.pk])

    def test_q_timestamp(self):
        qs = Notification.objects.filter(Q(timestamp__lt=self.now - timedelta(hours=1)) | Q(verb="none"))
        self.assertEqual(self.ids(qs), [self.old.pk])

    def test_timestamp_date_lookup(self):
        # __date is the date in the current time zone (TIME_ZONE), not UTC's.
        today = timezone.localdate(self.now)
        self.assertIn(self.new.pk, self.ids(Notification.objects.filter(timestamp__date=today)))
        self.assertEqual(self.ids(Notification.objects.filter(timestamp__date=today - timedelta(days=2))), [])

    def test_update_timestamp(self):
        Notification.objects.filter(pk=self.new.pk).update(timestamp=self.now - timedelta(days=3))
        self.assertEqual(Notification.objects.earliest("timestamp"), self.new)

    def test_update_timestamp_with_f(self):
        Notification.objects.filter(pk=self.old.pk).update(timestamp=F("timestamp") + timedelta(hours=3))
        self.assertEqual(Notification.objects.latest("timestamp"), self.old)

    def test_values_timestamp(self):
        row = Notification.objects.filter(pk=self.mid.pk).values("id", "timestamp").get()
        self.assertEqual(row, {"id": self.mid.pk, "timestamp": self.now - timedelta(minutes=30)})

    def test_values_list_timestamp(self):
        stamps = list(Notification.objects.order_by("timestamp").values_list("timestamp", flat=True))
        self.assertEqual(stamps, [self.now - timedelta(hours=2), self.now - timedelta(minutes=30), self.now])

    def test_aggregate_timestamp(self):
        got = Notification.objects.aggregate(first=Min("timestamp"), last=Max("timestamp"))
        self.assertEqual(got, {"first": self.now - timedelta(hours=2), "last": self.now})

    def test_annotate_with_f_timestamp(self):
        row = Notification.objects.annotate(when=F("timestamp")).get(pk=self.old.pk)
        self.assertEqual(row.when, self.now - timedelta(hours=2))

    def test_group_by_day(self):
        rows = (
            Notification.objects.annotate(day=TruncDay("timestamp"))
            .values("day").annotate(n=Count("id")).order_by("day")
        )
        self.assertEqual(sum(r["n"] for r in rows), 3)

    def test_dates_timestamp(self):
        self.assertGreaterEqual(len(Notification.objects.dates("timestamp", "day")), 1)

    def test_instance_timestamp(self):
        self.new.timestamp = self.now - timedelta(days=9)
        self.new.save()
        self.new.refresh_from_db()
        self.assertEqual(self.new.timestamp, self.now - timedelta(days=9))

    def test_save_update_fields_timestamp(self):
        self.mid.timestamp = self.now + timedelta(hours=1)
        self.mid.save(update_fields=["timestamp"])
        self.assertEqual(Notification.objects.latest("timestamp"), self.mid)

    def test_constructor_timestamp(self):
        n = Notification.objects.create(
            recipient=self.bob, actor=self.carol, verb="made", timestamp=self.now - timedelta(days=1)
        )
        self.assertEqual(Notification.objects.get(pk=n.pk).timestamp, self.now - timedelta(days=1))

    def test_unknown_field_still_raises(self):
        with self.assertRaises(FieldError):
            list(Notification.objects.filter(timestampx=self.now))


class ProjectCode(Base):
    def test_a_reply_notifies_the_other_watchers_with_extra_data(self):
        post = Post.objects.create(thread=self.thread, author=self.alice, body="Hello there")
        [n] = self.bob.notifications.all()
        self.assertEqual((n.verb, n.actor, n.target, n.action_object), ("replied", self.alice, self.thread, post))
        self.assertEqual(n.data["thread_title"], "Welcome")
        self.assertEqual(n.data["post_id"], post.pk)
        self.assertEqual(n.description, "Hello there")

    def test_the_duplicate_window_holds_back_a_second_reply(self):
        Post.objects.create(thread=self.thread, author=self.alice, body="one")
        Post.objects.create(thread=self.thread, author=self.alice, body="two")
        self.assertEqual(self.bob.notifications.count(), 1)

    def test_the_duplicate_window_ends(self):
        Post.objects.create(thread=self.thread, author=self.alice, body="one")
        Notification.objects.update(timestamp=self.now - timedelta(hours=1))
        Post.objects.create(thread=self.thread, author=self.alice, body="two")
        self.assertEqual(self.bob.notifications.count(), 2)

    def test_hourly_email_cap(self):
        for _ in range(5):
            self.send(self.bob)
        self.assertEqual(email_unsent(self.bob), 3)
        self.assertEqual(email_unsent(self.bob), 0)
        self.assertEqual(EmailLog.objects.count(), 3)
        Notification.objects.filter(emailed=True).update(timestamp=self.now - timedelta(hours=2))
        self.assertEqual(email_unsent(self.bob), 2)


class UserQuerysets(Base):
    def test_unread_count(self):
        self.send(self.alice)
        self.send(self.alice)
        self.send(self.bob)
        self.assertEqual(self.alice.notifications.unread().count(), 2)

    def test_filter_recipient_unread(self):
        self.send(self.alice)
        self.send(self.alice).mark_as_read()
        self.assertEqual(Notification.objects.filter(recipient=self.alice, unread=True).count(), 1)

    def test_mark_all_as_read(self):
        self.send(self.alice)
        self.send(self.alice)
        self.send(self.bob)
        self.assertEqual(self.alice.notifications.mark_all_as_read(), 2)
        self.assertEqual(Notification.objects.unread().count(), 1)

    def test_mark_all_as_read_with_recipient(self):
        self.send(self.alice)
        self.send(self.bob)
        Notification.objects.mark_all_as_read(recipient=self.bob)
        self.assertEqual(list(Notification.objects.unread().values_list("recipient__username", flat=True)), ["alice"])

    def test_read_and_unread(self):
        n = self.send(self.alice)
        n.mark_as_read()
        self.assertEqual((self.alice.notifications.read().count(), self.alice.notifications.unread().count()), (1, 0))
        n.mark_as_unread()
        self.assertEqual(self.alice.notifications.unread().count(), 1)

    def test_soft_delete(self):
        self.send(self.alice)
        self.send(self.alice)
        self.alice.notifications.mark_all_as_deleted()
        self.assertEqual((self.alice.notifications.deleted().count(), self.alice.notifications.active().count()), (2, 0))


class DataAndFlags(Base):
    def test_public_filter(self):
        self.send(self.alice, public=False)
        self.send(self.alice)
        self.assertEqual(Notification.objects.filter(public=False).count(), 1)

    def test_emailed_filter_and_sent(self):
        first = self.send(self.alice)
        self.send(self.alice)
        Notification.objects.filter(pk=first.pk).mark_as_sent()
        self.assertEqual((Notification.objects.filter(emailed=True).count(), Notification.objects.unsent().count()), (1, 1))

    def test_data_key_lookup(self):
        self.send(self.alice, colour="red")
        self.send(self.alice, colour="blue")
        self.assertEqual(Notification.objects.filter(data__colour="red").count(), 1)

    @skipUnlessDBFeature("supports_json_field_contains")
    def test_data_contains_dict(self):
        self.send(self.alice, colour="red", size=3)
        self.assertEqual(Notification.objects.filter(data__contains={"colour": "red"}).count(), 1)

    def test_data_has_key(self):
        self.send(self.alice, colour="red")
        self.send(self.alice)
        self.assertEqual(Notification.objects.filter(data__has_key="colour").count(), 1)

    def test_actor_object_id_as_string(self):
        self.send(self.alice)
        self.assertEqual(Notification.objects.filter(actor_object_id=str(self.carol.pk)).count(), 1)

    def test_actor_object_id_as_int(self):
        self.send(self.alice)
        self.assertEqual(Notification.objects.filter(actor_object_id=self.carol.pk).count(), 1)

    def test_target_object_id_in(self):
        self.send(self.alice, target=self.thread)
        qs = Notification.objects.filter(target_object_id__in=[str(self.thread.pk), "999"])
        self.assertEqual(qs.count(), 1)

    def test_level_filter(self):
        self.send(self.alice, level="warning")
        self.send(self.alice)
        self.assertEqual(Notification.objects.filter(level=Notification.LEVELS.warning).count(), 1)

    def test_verb_and_description_icontains(self):
        self.send(self.alice, description="The Big Launch")
        self.assertEqual(Notification.objects.filter(description__icontains="big").count(), 1)


class Relations(Base):
    def test_foreign_key_to_notification(self):
        n = self.send(self.alice)
        EmailLog.objects.create(notification=n)
        self.assertEqual(Notification.objects.filter(emails__isnull=False).get(), n)
        self.assertEqual(n.emails.count(), 1)

    def test_deleting_a_notification_deletes_what_points_to_it(self):
        n = self.send(self.alice)
        EmailLog.objects.create(notification=n)
        n.delete()
        self.assertEqual(EmailLog.objects.count(), 0)

    def test_proxy_with_a_custom_manager(self):
        self.send(self.alice, public=False)
        kept = self.send(self.alice)
        self.assertEqual([n.pk for n in PublicNotification.objects.all()], [kept.pk])
        self.assertEqual(PublicNotification.objects.latest("timestamp").pk, kept.pk)

    def test_filter_through_the_recipient(self):
        self.send(self.alice)
        self.send(self.bob)
        self.assertEqual(Notification.objects.filter(recipient__username="bob").count(), 1)

    def test_a_manager_built_on_hqs_queryset(self):
        self.send(self.alice, ago=timedelta(days=3))
        self.send(self.alice).mark_as_read()
        self.send(self.alice)
        self.assertEqual(InboxNotification.objects.recent().unread().count(), 1)


class NotifySendKeywords(Base):
    def test_field_keywords_set_the_fields(self):
        n = self.send(self.alice, emailed=True, unread=False, colour="red")
        n = Notification.objects.get(pk=n.pk)
        self.assertEqual((n.emailed, n.unread, n.data["colour"]), (True, False, "red"))

    def test_target_and_action_object(self):
        post = Post.objects.create(thread=Thread.objects.create(title="quiet"), author=self.bob, body="x")
        self.send(self.alice, target=self.thread, action_object=post)
        n = Notification.objects.get(target_object_id=self.thread.pk, action_object_object_id=post.pk)
        self.assertEqual((n.target, n.action_object), (self.thread, post))


class Admin(Base):
    def setUp(self):
        super().setUp()
        self.admin = User.objects.create_superuser("admin", "a@example.com", "pw")
        self.client.force_login(self.admin)
        self.old = self.send(self.alice, verb="old news", ago=timedelta(days=5))
        self.new = self.send(self.alice, verb="fresh news")

    def test_changelist_ordered_by_timestamp(self):
        response = self.client.get("/admin/forum/publicnotification/")
        self.assertEqual(response.status_code, 200)
        self.assertEqual([n.pk for n in response.context["cl"].result_list], [self.new.pk, self.old.pk])

    def test_changelist_filtered_by_timestamp(self):
        since = (self.now - timedelta(days=1)).isoformat()
        response = self.client.get("/admin/forum/publicnotification/", {"timestamp__gte": since})
        self.assertEqual(response.status_code, 200)
        self.assertEqual([n.pk for n in response.context["cl"].result_list], [self.new.pk])
