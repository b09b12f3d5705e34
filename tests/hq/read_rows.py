"""
Print every notification row as this app reads it, in the shape
``make_hq_database.py`` prints hq's view of the same rows:

    DATABASE_URL=... python -m tests.hq.read_rows > rows.json
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def describe(obj: Any) -> dict[str, str] | None:
    if obj is None:
        return None
    return {"model": obj._meta.label_lower, "pk": str(obj.pk), "str": str(obj)}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from notifications.models import Notification

    rows = [
        {
            "id": n.id,
            "recipient": n.recipient.get_username(),
            "unread": n.unread,
            "deleted": n.deleted,
            "public": n.public,
            "emailed": n.emailed,
            "level": n.level,
            "verb": n.verb,
            "description": n.description,
            "actor": describe(n.actor),
            "target": describe(n.target),
            "action_object": describe(n.action_object),
            "created": n.created.isoformat(),
            "data": n.data,
        }
        for n in Notification.objects.order_by("id")
    ]
    json.dump(rows, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
