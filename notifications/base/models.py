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


def __getattr__(name: str) -> object:
    if name == "AbstractNotification":
        raise ImportError(
            "django-notifications-hq's AbstractNotification (a notification model of your "
            "own, through swapper) is not supported: the model is "
            "notifications.models.Notification. Keep extra values in Notification.data, "
            "or in a model of your own with a ForeignKey to notifications.Notification."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
