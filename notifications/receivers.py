"""
What the app itself connects to signals (from ``AppConfig.ready``).
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from . import api
from .kinds import get_kind
from .models import Notification

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
