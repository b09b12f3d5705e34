"""
django-notifications-hq's model and queryset API, on this app's model, so code
written for hq keeps working after the swap: ``Notification.timestamp``,
``slug``, ``LEVELS``, ``mark_as_read()``..., and the queryset methods
``unread()``, ``read()``, ``mark_all_as_read()``... with their ``recipient=``
and ``include_deleted`` arguments. Every change of read or deleted state goes
through ``notifications.api`` (per recipient), so it reads a group as the API
does, cancels what was scheduled, and reaches the recipients' streams.

hq's settings live in ``DJANGO_NOTIFICATIONS_CONFIG`` and are read at call time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .utils import id2slug

if TYPE_CHECKING:
    from .models import NotificationQuerySet

CONFIG_DEFAULTS: dict[str, Any] = {
    "PAGINATE_BY": 20,
    "USE_JSONFIELD": False,
    "SOFT_DELETE": False,
    "NUM_TO_FETCH": 10,
    "CACHE_TIMEOUT": 2,
}


def get_config() -> dict[str, Any]:
    """hq's settings: ``DJANGO_NOTIFICATIONS_CONFIG`` over hq's defaults, read now."""
    return {**CONFIG_DEFAULTS, **getattr(settings, "DJANGO_NOTIFICATIONS_CONFIG", {})}


def is_soft_delete() -> bool:
    return bool(get_config()["SOFT_DELETE"])


def assert_soft_delete() -> None:
    if not is_soft_delete():
        raise ImproperlyConfigured(
            "deleted(), active(), mark_all_as_deleted() and mark_all_as_active() need "
            "DJANGO_NOTIFICATIONS_CONFIG = {'SOFT_DELETE': True}."
        )


class Levels:
    """hq's ``Notification.LEVELS``: ``LEVELS.info == "info"``, iterable as choices."""

    success = "success"
    info = "info"
    warning = "warning"
    error = "error"

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter((name, name) for name in ("success", "info", "warning", "error"))

    def __contains__(self, value: object) -> bool:
        return value in ("success", "info", "warning", "error")


class HqQuerySetMixin:
    """hq's queryset methods. ``unread()``/``read()`` keep this app's meaning on
    a queryset from ``for_audiences()``/``api.visible()`` (per-user read state
    of broadcasts) and hq's meaning (the ``unread`` column) elsewhere."""

    def unread(self: Any, include_deleted: bool = False) -> NotificationQuerySet:
        """Unread rows; without ``include_deleted``, not soft-deleted ones when SOFT_DELETE is on."""
        if "is_unread" in self.query.annotations:
            return self.filter(is_unread=True)
        if is_soft_delete() and not include_deleted:
            return self.filter(unread=True, deleted=False)
        return self.filter(unread=True)

    def read(self: Any, include_deleted: bool = False) -> NotificationQuerySet:
        """Read rows; like ``unread()`` for deleted ones."""
        if "is_unread" in self.query.annotations:
            return self.filter(is_unread=False)
        if is_soft_delete() and not include_deleted:
            return self.filter(unread=False, deleted=False)
        return self.filter(unread=False)

    def sent(self: Any) -> NotificationQuerySet:
        return self.filter(emailed=True)

    def unsent(self: Any) -> NotificationQuerySet:
        return self.filter(emailed=False)

    def deleted(self: Any) -> NotificationQuerySet:
        assert_soft_delete()
        return self.filter(deleted=True)

    def active(self: Any) -> NotificationQuerySet:
        assert_soft_delete()
        return self.filter(deleted=False)

    def mark_all_as_read(self: Any, recipient: Any = None) -> int:
        """Mark the unread rows read (of ``recipient`` only, if given); returns how many."""
        return _change(self.unread(True), recipient, "mark_read")

    def mark_all_as_unread(self: Any, recipient: Any = None) -> int:
        return _change(self.read(True), recipient, "mark_unread")

    def mark_all_as_deleted(self: Any, recipient: Any = None) -> int:
        assert_soft_delete()
        return _change(self.active(), recipient, "delete")

    def mark_all_as_active(self: Any, recipient: Any = None) -> int:
        assert_soft_delete()
        return _change(self.deleted(), recipient, "restore")

    def mark_as_sent(self: Any, recipient: Any = None) -> int:
        return _only(self.unsent(), recipient).update(emailed=True)

    def mark_as_unsent(self: Any, recipient: Any = None) -> int:
        return _only(self.sent(), recipient).update(emailed=False)


def _only(rows: Any, recipient: Any) -> Any:
    return rows.filter(recipient=recipient) if recipient else rows


def _change(rows: Any, recipient: Any, change: str) -> int:
    """
    Apply ``change`` (the name of a function of ``notifications.api`` taking a
    user and ids: ``mark_read``, ``mark_unread``, ``delete``, ``restore``) to
    these personal rows, per recipient (a broadcast's read state is per user:
    see ``api.mark_read``). Returns how many of these rows changed.
    """
    from django.contrib.auth import get_user_model

    from . import api

    by_user: dict[int, list[int]] = {}
    for pk, user_id in _only(rows, recipient).filter(recipient__isnull=False).values_list(
        "id", "recipient_id"
    ):
        by_user.setdefault(user_id, []).append(pk)
    if not by_user:
        return 0
    users = get_user_model()._default_manager.in_bulk(list(by_user))
    count = 0
    with transaction.atomic(using=router.db_for_write(rows.model)):
        for user_id, ids in by_user.items():
            if user_id in users:
                options = {"include_deleted": True} if change.startswith("mark_") else {}
                changed = set(getattr(api, change)(users[user_id], ids, **options))
                count += sum(1 for pk in ids if pk in changed)
    return count


class HqNotificationMixin:
    """hq's instance API on ``Notification``."""

    LEVELS = Levels()

    # hq's name for ``created``, on instances and in queries (see fields.py).
    timestamp: datetime

    @property
    def slug(self: Any) -> int:
        """hq's id in its URLs: see ``notifications.utils.id2slug``."""
        return id2slug(self.id)

    def mark_as_read(self: Any) -> None:
        """Mark read through ``api.mark_read`` (a group's head reads its group)."""
        if self.unread:
            self._set_hq_state("mark_read")
            self.unread = False

    def mark_as_unread(self: Any) -> None:
        if not self.unread:
            self._set_hq_state("mark_unread")
            self.unread = True

    def _set_hq_state(self: Any, change: str) -> None:
        from . import api

        if self.recipient_id is None:
            raise ValueError(
                "A broadcast's read state is per user: use "
                "notifications.api.mark_read(user, [id]) or mark_unread()."
            )
        getattr(api, change)(self.recipient, [self.pk], include_deleted=True)

    def timesince(self: Any, now: datetime | None = None) -> str:
        from django.utils.timesince import timesince

        return timesince(self.created, now)

    def naturalday(self: Any) -> str:
        from django.contrib.humanize.templatetags.humanize import naturalday

        return str(naturalday(self.created))

    def naturaltime(self: Any) -> str:
        from django.contrib.humanize.templatetags.humanize import naturaltime

        return str(naturaltime(self.created))

    def actor_object_url(self: Any) -> SafeString | str:
        return _admin_link(self.actor_content_type, self.actor_object_id)

    def target_object_url(self: Any) -> SafeString | str:
        return _admin_link(self.target_content_type, self.target_object_id)

    def action_object_url(self: Any) -> SafeString | str:
        return _admin_link(self.action_object_content_type, self.action_object_object_id)


def _admin_link(content_type: Any, object_id: str) -> SafeString | str:
    """A link to the object's admin page, or its id when there is none."""
    if content_type is None:
        return object_id
    try:
        url = reverse(
            f"admin:{content_type.app_label}_{content_type.model}_change", args=(object_id,)
        )
    except NoReverseMatch:
        return object_id
    return format_html("<a href='{}'>{}</a>", url, object_id)
