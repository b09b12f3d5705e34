"""
``manage.py notifications_hq_check [path ...]``: list the usages of
django-notifications-hq in a project that behave differently after the switch,
with file, line and what to write instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.hq_check import scan


class Command(BaseCommand):
    help = (
        "Scan the project's Python files and templates (default: BASE_DIR, else the current "
        "folder) for django-notifications-hq usages that behave differently here: GET mark/"
        "delete links, data__contains with a string, AbstractNotification, swapper, another "
        "NOTIFICATIONS_NOTIFICATION_MODEL. Exits with status 1 when it finds any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", help="Files or folders to scan.")

    def handle(self, *args: Any, paths: list[str], **options: Any) -> None:
        roots = [Path(p) for p in paths] or [Path(getattr(settings, "BASE_DIR", None) or ".")]
        missing = [str(p) for p in roots if not p.exists()]
        if missing:
            raise CommandError(f"No such file or folder: {', '.join(missing)}")
        findings = scan(roots)
        for finding in findings:
            self.stdout.write(str(finding))
        if findings:
            raise CommandError(
                f"{len(findings)} usage(s) of django-notifications-hq to change (see above)."
            )
        self.stdout.write("No django-notifications-hq usages that behave differently here.")
