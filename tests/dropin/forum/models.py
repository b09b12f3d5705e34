from django.conf import settings
from django.db import models

from notifications.base.models import NotificationQuerySet
from notifications.models import Notification


class Thread(models.Model):
    title = models.CharField(max_length=100)
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="watched")

    def __str__(self):
        return self.title


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    body = models.TextField()


class EmailLog(models.Model):
    """What the project emailed, pointing to the notification it was about."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="emails")
    sent_at = models.DateTimeField(auto_now_add=True)


class PublicManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(public=True, deleted=False)


class PublicNotification(Notification):
    """A proxy with a custom manager on top, as projects add."""

    objects = PublicManager()

    class Meta:
        proxy = True


class RecentQuerySet(NotificationQuerySet):
    def recent(self, hours=24):
        from datetime import timedelta

        from django.utils import timezone

        return self.filter(timestamp__gte=timezone.now() - timedelta(hours=hours))


class InboxNotification(Notification):
    """A proxy whose manager builds on hq's queryset."""

    objects = RecentQuerySet.as_manager()

    class Meta:
        proxy = True
