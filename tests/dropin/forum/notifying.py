"""The project's notification code, written for django-notifications-hq."""

import logging
from datetime import timedelta

from django.utils import timezone

from notifications.models import Notification
from notifications.signals import notify

from .models import EmailLog

log = logging.getLogger(__name__)

DUPLICATE_WINDOW = timedelta(minutes=10)
EMAILS_PER_HOUR = 3


def notify_reply(post):
    """Tell the thread's watchers about a reply, at most once per window; returns how many were told."""
    told = 0
    for user in post.thread.watchers.exclude(pk=post.author_id):
        try:
            if is_duplicate(user, post):
                continue
            notify.send(
                post.author,
                recipient=user,
                verb="replied",
                action_object=post,
                target=post.thread,
                description=post.body[:50],
                thread_title=post.thread.title,
                post_id=post.pk,
            )
            told += 1
        except Exception:
            log.exception("Could not notify %s", user)
    return told


def is_duplicate(user, post):
    since = timezone.now() - DUPLICATE_WINDOW
    return Notification.objects.filter(
        recipient=user,
        verb="replied",
        target_object_id=post.thread_id,
        timestamp__gte=since,
        timestamp__lt=timezone.now() + timedelta(seconds=1),
    ).exists()


def email_unsent(user):
    """Email the user's unsent notifications, at most EMAILS_PER_HOUR an hour; returns how many."""
    try:
        hour_ago = timezone.now() - timedelta(hours=1)
        already = user.notifications.sent().filter(timestamp__gte=hour_ago).count()
        room = max(EMAILS_PER_HOUR - already, 0)
        batch = list(user.notifications.unsent().filter(public=True).order_by("timestamp")[:room])
        for n in batch:
            EmailLog.objects.create(notification=n)
        Notification.objects.filter(pk__in=[n.pk for n in batch]).mark_as_sent()
        return len(batch)
    except Exception:
        log.exception("Could not email %s", user)
        return 0
