"""
``manage.py notifications_send_digests``: send the pending digests now (see digests.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications import digests
from notifications.worker import drain


class Command(BaseCommand):
    help = (
        "Make the pending email and push digests due now and send them (one drain of the "
        "worker), to try digests out. --user narrows it to some users; --no-send only makes "
        "them due, for the running workers to send."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", action="append", default=None, help="A username (repeatable).")
        parser.add_argument("--no-send", action="store_true", help="Only make them due.")

    def handle(self, *args: Any, user: list[str] | None = None, no_send: bool = False, **options: Any) -> None:
        ids = None
        if user:
            User = get_user_model()
            found = dict(
                User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": user}).values_list(
                    User.USERNAME_FIELD, "pk"
                )
            )
            missing = sorted(set(user) - set(found))
            if missing:
                raise CommandError(f"No user named {', '.join(missing)}.")
            ids = list(found.values())
        count = digests.make_due(ids)
        self.stdout.write(f"{count} notifications in pending digests made due.")
        if not no_send:
            done = drain()
            summary = ", ".join(f"{n} {state}" for state, n in sorted(done.items()))
            self.stdout.write(f"Deliveries: {summary or 'none due'}.")
