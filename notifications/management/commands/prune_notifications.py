"""
``manage.py prune_notifications``: delete notifications older than the retention age.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    DjangoHelpFormatter,
)
from django.db import router, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from notifications.conf import DEFAULTS, conf
from notifications.models import BroadcastReceipt, Notification, PublishKey

BATCH_SIZE = 1000

HELP = f"""\
Delete notifications created more than --days ago (default: the
NOTIFICATIONS_RETENTION_DAYS setting, {DEFAULTS["NOTIFICATIONS_RETENTION_DAYS"]}), in batches of --batch-size rows,
each deleted in its own short transaction so the table is never locked for
long. Broadcast receipts are deleted with their broadcast, in batches too,
and so are the notify() keys older than NOTIFICATIONS_IDEMPOTENCY_WINDOW.
Nothing newer than the age is ever deleted.

Read notifications go first: a personal notification its user marked read or
removed, and a broadcast nobody can see any more (expired, or removed by
staff). Then, unless --read-only is given, everything else older than the age:
unread personal notifications and broadcasts without an expiry (whose
per-user read state cannot tell whether everyone saw them).

Open streams and saved cursors stay correct: ids are never reused, and a
cursor only says which ids a client has seen, so a deleted old row is simply
never sent again.

Run it daily, for example from cron:

  17 3 * * *  cd /srv/app && .venv/bin/python manage.py prune_notifications

or with a systemd timer: /etc/systemd/system/prune-notifications.service

  [Service]
  Type=oneshot
  WorkingDirectory=/srv/app
  ExecStart=/srv/app/.venv/bin/python manage.py prune_notifications

and /etc/systemd/system/prune-notifications.timer

  [Timer]
  OnCalendar=daily
  RandomizedDelaySec=1h
  Persistent=true

  [Install]
  WantedBy=timers.target

then: systemctl enable --now prune-notifications.timer
"""


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's formatter, keeping the description's line breaks (the examples)."""


@dataclass
class Tally:
    """What one pass deleted (or would delete, on a dry run)."""

    personal: int = 0
    broadcasts: int = 0
    receipts: int = 0

    @property
    def notifications(self) -> int:
        return self.personal + self.broadcasts

    def add(self, other: Tally) -> None:
        self.personal += other.personal
        self.broadcasts += other.broadcasts
        self.receipts += other.receipts


class Command(BaseCommand):
    help = HELP

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=float,
            help="Delete notifications older than this many days "
            "(default: NOTIFICATIONS_RETENTION_DAYS).",
        )
        parser.add_argument(
            "--read-only",
            action="store_true",
            help="Delete only read notifications (and expired or removed broadcasts).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Most rows deleted per transaction (default: {BATCH_SIZE}).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would be deleted; delete nothing.",
        )

    def handle(
        self,
        *args: Any,
        days: float | None,
        read_only: bool,
        batch_size: int,
        dry_run: bool,
        **options: Any,
    ) -> None:
        if days is None:
            days = conf.RETENTION_DAYS
        if not days > 0:
            raise CommandError(
                f"The retention age must be a positive number of days, not {days:g} "
                "(--days or NOTIFICATIONS_RETENTION_DAYS)."
            )
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        now = timezone.now()
        try:
            cutoff = now - timedelta(days=days)
        except OverflowError:
            raise CommandError(f"--days {days:g} reaches before the year 1.") from None
        old = Q(created__lt=cutoff)
        read = _read(now)
        # The second pass deletes whatever is still old; a dry run counts it apart
        # from the first pass's rows.
        passes = [("read", old & read)]
        if not read_only:
            passes.append(("unread", old & ~read if dry_run else old))

        self.verbosity = options["verbosity"]
        self.batches = 0
        self._say(
            f"{'Dry run: counting' if dry_run else 'Deleting'} notifications created before "
            f"{cutoff:%Y-%m-%d %H:%M:%S %Z} (older than {days:g} days)"
            f"{', read ones only' if read_only else ''}."
        )
        total = Tally()
        for label, condition in passes:
            tally = _count(condition) if dry_run else self._delete(condition, batch_size)
            verb = "Would delete" if dry_run else "Deleted"
            self._say(
                f"{verb} {tally.notifications} {label} notification(s) "
                f"({tally.broadcasts} broadcast(s)) and {tally.receipts} broadcast receipt(s)."
            )
            total.add(tally)
        if not dry_run:
            keys = self._delete_keys(now - timedelta(seconds=conf.IDEMPOTENCY_WINDOW), batch_size)
            if keys:
                self._say(f"Deleted {keys} expired notify() key(s).")
            self._say(
                f"Done in {self.batches} batch(es): {total.notifications} notification(s) "
                f"and {total.receipts} broadcast receipt(s) deleted."
            )

    def _delete_keys(self, before: datetime, batch_size: int) -> int:
        """Delete the ``notify(key=...)`` keys that no longer hold, ``batch_size`` at a time."""
        deleted = 0
        while True:
            ids = list(
                PublishKey.objects.filter(created__lt=before).order_by("id").values_list("id", flat=True)[:batch_size]
            )
            if not ids:
                return deleted
            deleted += PublishKey.objects.filter(id__in=ids, created__lt=before).delete()[0]
            self.batches += 1

    def _delete(self, condition: Q, batch_size: int) -> Tally:
        """
        Delete the rows matching ``condition`` in batches of at most
        ``batch_size``, oldest id first, each batch in its own transaction.
        """
        tally = Tally()
        after = 0
        while True:
            batch = list(
                Notification.objects.filter(condition, id__gt=after)
                .order_by("id")
                .values_list("id", "recipient_id")[:batch_size]
            )
            if not batch:
                return tally
            after = batch[-1][0]
            personal = [nid for nid, rid in batch if rid is not None]
            shared = [nid for nid, rid in batch if rid is None]
            if shared:
                tally.receipts += self._delete_receipts(shared, batch_size)
            with transaction.atomic(using=router.db_for_write(Notification)):
                # The condition again: a row marked unread since it was picked stays.
                rows = Notification.objects.filter(condition).only("id")
                if personal:
                    tally.personal += _delete_rows(rows.filter(id__in=personal), tally)
                if shared:
                    tally.broadcasts += _delete_rows(rows.filter(id__in=shared), tally)
            self.batches += 1
            self._say(f"  batch {self.batches}: up to id {after}", level=2)

    def _delete_receipts(self, notification_ids: list[int], batch_size: int) -> int:
        """Delete the receipts of these broadcasts, ``batch_size`` per transaction."""
        deleted = 0
        receipts = BroadcastReceipt.objects.filter(notification_id__in=notification_ids)
        while True:
            with transaction.atomic(using=router.db_for_write(BroadcastReceipt)):
                ids = list(receipts.order_by("id").values_list("id", flat=True)[:batch_size])
                if not ids:
                    return deleted
                deleted += BroadcastReceipt.objects.filter(id__in=ids).delete()[0]
            self.batches += 1

    def _say(self, message: str, level: int = 1) -> None:
        if self.verbosity >= level:
            self.stdout.write(message)


def _read(now: datetime) -> Q:
    """Rows that count as read: personal ones read or removed, broadcasts nobody sees."""
    return (
        Q(recipient__isnull=False, unread=False)
        | Q(deleted=True)
        | Q(recipient__isnull=True, expires_at__lte=now)
    )


def _delete_rows(rows: QuerySet[Notification], tally: Tally) -> int:
    """
    Delete ``rows`` and return how many; receipts a user wrote since their
    broadcast's receipts were deleted go with the cascade, counted in ``tally``.
    """
    _, per_model = rows.delete()
    tally.receipts += per_model.get(BroadcastReceipt._meta.label, 0)
    return per_model.get(Notification._meta.label, 0)


def _count(condition: Q) -> Tally:
    rows = Notification.objects.filter(condition)
    counts = rows.aggregate(
        personal=Count("id", filter=Q(recipient__isnull=False)),
        broadcasts=Count("id", filter=Q(recipient__isnull=True)),
    )
    receipts = BroadcastReceipt.objects.filter(notification__in=rows.values("id")).count()
    return Tally(counts["personal"], counts["broadcasts"], receipts)
