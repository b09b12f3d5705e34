"""
``manage.py notifications_worker``: send due emails and pushes (see worker.py).
"""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from notifications.worker import Worker, drain


class Command(BaseCommand):
    help = (
        "Send the emails and Web Pushes that are due (only for notifications still unread). "
        "Runs until stopped (SIGINT/SIGTERM), or with --once drains what is due and exits "
        "(for cron). Any number may run at once: each delivery is sent at most once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Deliver what is due now, then exit."
        )
        parser.add_argument(
            "--poll",
            type=float,
            default=None,
            help="Seconds between looks at the schedule (default: NOTIFICATIONS_DELIVERY_POLL).",
        )

    def handle(self, *args: Any, once: bool = False, poll: float | None = None, **options: Any) -> None:
        if poll is not None and poll <= 0:
            raise CommandError("--poll must be a positive number of seconds.")
        if once:
            done = drain()
            summary = ", ".join(f"{count} {state}" for state, count in sorted(done.items()))
            self.stdout.write(f"Deliveries: {summary or 'none due'}.")
            return
        worker = Worker(poll)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: worker.stop())
        self.stdout.write("Delivering due emails and pushes (Ctrl-C stops).")
        worker.run()
