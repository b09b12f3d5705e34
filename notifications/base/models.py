"""
The names code written for django-notifications-hq imports from
``notifications.base.models``. The model itself is ``notifications.models.Notification``;
abstract and swapped notification models are not supported.
"""

from ..compat import assert_soft_delete, is_soft_delete
from ..models import Notification, NotificationQuerySet
from ..receivers import on_notify as notify_handler

__all__ = [
    "Notification",
    "NotificationQuerySet",
    "assert_soft_delete",
    "is_soft_delete",
    "notify_handler",
]
