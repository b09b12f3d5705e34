"""
The one JSON shape of a notification, shared by the stream, the API and the templates.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Notification


def as_dict(notification: Notification, *, unread: bool | None = None) -> dict[str, Any]:
    """
    Render ``notification`` as a JSON-ready dict.

    ``unread`` overrides the row's own flag: broadcasts keep their read state per
    user in receipts, so callers pass what holds for the reader. A queryset from
    ``for_user()`` carries it as ``is_unread`` and is picked up here.
    """
    if unread is None:
        unread = getattr(notification, "is_unread", notification.unread)
    return {
        "id": notification.pk,
        "verb": notification.verb,
        "description": notification.description,
        "level": notification.level,
        "url": notification.url,
        "actor": notification.actor_display or None,
        "data": notification.data,
        "created": notification.created.isoformat(),
        "unread": bool(unread),
        "broadcast": notification.recipient_id is None,
    }


def dumps(value: Any) -> str:
    """Compact JSON with ``<``, ``>`` and ``&`` escaped, safe inside HTML and SSE."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
