"""
Record which transaction wrote each row (PostgreSQL), and keep read-state
changes as rows.

On PostgreSQL each notification and read event stores the id of the
transaction that inserted it (``xact xid8 DEFAULT pg_current_xact_id()``), so
the hub and replay decide what is final from the database's own snapshots,
never from clocks (see ``notifications.finality``). Rows written before this
migration get transaction id 1: final in every snapshot. The column is not a
model field: the database fills it on every insert, whoever writes the row.

SQLite has one writer at a time, so ids commit in order there: no column.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

TABLES = ("notifications_notification", "notifications_readevent")


def add_xact(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        # A constant default first (no table rewrite), then the real one.
        schema_editor.execute(f"ALTER TABLE {table} ADD COLUMN xact xid8 NOT NULL DEFAULT '1'")
        schema_editor.execute(
            f"ALTER TABLE {table} ALTER COLUMN xact SET DEFAULT pg_current_xact_id()"
        )
    # The hub reads what committed after a snapshot; replay, one user's share of it.
    schema_editor.execute("CREATE INDEX notif_xact ON notifications_notification (xact)")
    schema_editor.execute(
        "CREATE INDEX notif_recipient_xact ON notifications_notification (recipient_id, xact)"
    )
    schema_editor.execute("CREATE INDEX notif_readevent_xact ON notifications_readevent (xact)")


def drop_xact(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP INDEX IF EXISTS notif_xact")
    schema_editor.execute("DROP INDEX IF EXISTS notif_recipient_xact")
    schema_editor.execute("ALTER TABLE notifications_notification DROP COLUMN xact")
    # (notifications_readevent is dropped whole by the reverse of CreateModel.)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0016_fill_actor_display_and_url"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ReadEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("payload", models.TextField()),
                ("created", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "user",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["user", "id"], name="notif_readevent_user"),
                    models.Index(fields=["created"], name="notif_readevent_created"),
                ],
            },
        ),
        migrations.RunPython(add_xact, drop_xact),
    ]
