"""
What the app itself connects to signals (from ``AppConfig.ready``).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from . import api
from .models import Notification

_HQ_KEYS = {"recipient", "verb", "action_object", "target", "level", "description", "url", "data", "timestamp", "kind"}


def on_notify(sender: Any, *, signal: Any = None, **kwargs: Any) -> list[Notification]:
    """
    Handle ``notify.send(actor, recipient=..., verb=..., ...)`` as
    django-notifications-hq does: the sender is the actor, ``public`` is
    accepted and ignored, and any other keyword goes into ``data``.
    """
    kwargs.pop("public", None)
    extra = {key: kwargs.pop(key) for key in list(kwargs) if key not in _HQ_KEYS}
    data = dict(kwargs.pop("data", None) or {})
    data.update(extra)
    actor = sender if isinstance(sender, models.Model) else None
    recipient = kwargs.pop("recipient")
    verb = kwargs.pop("verb")
    if kwargs.get("level") is None:
        kwargs.pop("level", None)
    for key in ("description", "url", "kind"):
        if kwargs.get(key) is None:
            kwargs.pop(key, None)
    return api.notify(recipient, verb, actor=actor, data=data or None, **kwargs)
