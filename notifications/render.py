"""
The one JSON shape of a notification, shared by the stream, the API and the templates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .links import safe_data, safe_url

if TYPE_CHECKING:
    from .models import Notification


def prepare(rows: Sequence[Notification]) -> None:
    """
    Read what rendering ``rows`` needs beyond the rows themselves (their groups'
    counts and actors, their recipients' languages) in a query or two for all
    of them, so ``as_dict`` costs no query per row. Optional: without it,
    ``as_dict`` reads the same per row.
    """
    from .grouping import attach_summaries
    from .texts import attach_languages

    attach_summaries(rows)
    attach_languages(rows)


def as_dict(notification: Notification, *, unread: bool | None = None) -> dict[str, Any]:
    """
    Render ``notification`` as a JSON-ready dict. Its links (``url``, and
    ``data``'s, see links.py) are there only if safe, else "", whatever the row holds.

    ``unread`` overrides the row's own flag: broadcasts keep their read state per
    user in receipts, so callers pass what holds for the reader. A queryset from
    ``for_user()`` carries it as ``is_unread`` and is picked up here.
    """
    from .grouping import summary
    from .texts import render_text

    if unread is None:
        unread = getattr(notification, "is_unread", notification.unread)
    group = summary(notification)
    return {
        "id": notification.pk,
        "verb": notification.verb,
        "description": notification.description,
        "level": notification.level,
        "url": safe_url(notification.url),
        "actor": notification.actor_display or None,
        "data": safe_data(notification.data),
        "created": notification.created.isoformat(),
        "unread": bool(unread),
        # Inbox states (inbox.py), where the query carried them (``inbox.with_states``).
        "seen": bool(getattr(notification, "is_seen", False)) or not unread,
        "archived": bool(getattr(notification, "is_archived", False)),
        "broadcast": notification.recipient_id is None,
        "kind": notification.kind or None,
        "text": render_text(notification),
        "group": notification.group or None,
        "count": group.count,
        "actors": list(group.actors),
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
