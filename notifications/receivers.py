"""
What the app itself connects to signals (from ``AppConfig.ready``).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, router, transaction
from django.utils import timezone

from . import api, delivery
from .kinds import get_kind
from .models import Notification
from .users import groups_field

_HQ_KEYS = {
    "recipient",
    "verb",
    "action_object",
    "target",
    "level",
    "description",
    "data",
    "timestamp",
}
# Extra keywords django-notifications-hq stores in the row's own column.
_HQ_COLUMNS = {"public", "emailed", "unread", "deleted", "url"}


def on_notify(sender: Any, *, signal: Any = None, **kwargs: Any) -> list[Notification]:
    """
    Handle ``notify.send(actor, recipient=..., verb=..., ...)`` as
    django-notifications-hq does and return the rows created (so ``send()``
    returns ``[(receiver, [notifications])]``): the sender is the actor; the
    verb may be lazy; any level of up to 20 characters; an empty recipient
    creates nothing; ``public``, ``emailed``, ``unread``, ``deleted`` and
    ``url`` set the row's columns; ``kind`` is the notification's kind and ``key``
    its idempotency key (as for ``notify()``); any other keyword goes into ``data``.
    """
    recipient = kwargs.pop("recipient")
    verb = str(kwargs.pop("verb"))
    kind = kwargs.pop("kind", None)
    key = kwargs.pop("key", None)
    api._check_key(key)
    declared = None if kind is None else get_kind(kind)
    concrete = {
        name: kwargs.pop(f"{name}_for_concrete_model", True)
        for name in ("actor", "target", "action_object")
    }
    columns = {key: kwargs.pop(key) for key in list(kwargs) if key in _HQ_COLUMNS}
    extra = {key: kwargs.pop(key) for key in list(kwargs) if key not in _HQ_KEYS}
    data = dict(kwargs.pop("data", None) or {})
    data.update(extra)
    if columns.get("url") is not None:
        data.setdefault("url", columns["url"])
    # Dates, decimals, UUIDs... as hq's JSON field encoded them.
    data = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    url = columns.pop("url", None) or ""
    actor = sender if isinstance(sender, models.Model) else None
    objects = {
        "actor": actor,
        "target": kwargs.get("target"),
        "action_object": kwargs.get("action_object"),
    }
    try:
        users = api._recipients(recipient)
    except api.NoRecipients:
        return []
    fields = api._fields(
        verb,
        actor,
        kwargs.get("action_object"),
        kwargs.get("target"),
        "" if kwargs.get("description") is None else str(kwargs["description"]),
        str(kwargs.get("level") or "info"),
        url,
        data or None,
        any_level=True,
    )
    for name, obj in objects.items():
        if obj is not None and not concrete[name]:
            fields[f"{name}_content_type"] = ContentType.objects.get_for_model(
                obj, for_concrete_model=False
            )
    fields.update({key: bool(value) for key, value in columns.items()})
    created = kwargs.get("timestamp") or timezone.now()
    try:
        if key is not None:
            return api._write_once(users, fields, created, declared, key)
        return api._write_kind(users, fields, created, declared)
    except api.NoRecipients:
        return []


# -- logins that change end their streams at once ----------------------------------


def on_user_save(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """
    A password set with ``set_password`` (forms, admin, ``changepassword``):
    once it commits, the user's hubs check their streams' logins before they
    hand out anything more.
    """
    if getattr(instance, "_password", None) is None or instance.pk is None:
        return
    _check_after_commit([instance.pk])


def on_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """A user joined or left groups: their streams' audiences are checked at once."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        users = [instance.pk]
    elif pk_set:
        users = list(pk_set)
    else:  # group.user_set.clear(): the members are gone from the table already
        return
    _check_after_commit(users)


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """
    A logout: the streams of that session end at once (the session is being
    flushed), before anything more is handed out to them.
    """
    if user is None or getattr(user, "pk", None) is None:
        return
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    delivery.end_login(user.pk, key)


def _check_after_commit(user_ids: list[Any]) -> None:
    using = router.db_for_write(get_user_model())  # the users' database: its commit is the change
    transaction.on_commit(lambda: delivery.check_users(user_ids), using=using)


def connect_login_checks() -> None:
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import m2m_changed, pre_save

    User = get_user_model()
    pre_save.connect(on_user_save, sender=User, dispatch_uid="notifications.user_save")
    user_logged_out.connect(on_logged_out, dispatch_uid="notifications.logged_out")
    groups = groups_field()
    if groups is not None:  # (a custom user model may have no groups)
        m2m_changed.connect(
            on_groups_changed, sender=groups.remote_field.through, dispatch_uid="notifications.groups"
        )
