"""
Turn django-notifications-hq's table (as its community fork's 0013 leaves it)
into this app's, keeping every row and its id:

- ``timestamp`` is renamed ``created`` (never dropped and re-added);
- ``id`` widens to bigint;
- NULL ``data`` becomes ``{}``; NULL ``description`` and object ids become "";
- ``recipient`` and the actor may be NULL (broadcasts); every existing row is a
  personal one (``audience`` "user");
- ``level`` keeps its 20 characters, and whatever hq accepted in it;
- ``public``, ``emailed``, ``unread`` and ``deleted`` stay, without their
  single-column indexes; the feed's indexes replace hq's;
- broadcasts get their receipts table.

Written by hand: ``makemigrations`` would drop ``timestamp`` and add ``created``.
0016 fills the actor's name and the url of the rows hq wrote.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from ._hq import RequireTableShape, rewrite_once_on_postgresql

LEVELS = [("success", "success"), ("info", "info"), ("warning", "warning"), ("error", "error")]
AUDIENCES = [("user", "one user"), ("all", "everyone"), ("staff", "staff only"), ("group", "members of a group")]


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("notifications", "0013_alter_notification_level"),
    ]

    operations = [
        RequireTableShape(),
        # hq's and the fork's indexes: the feed's indexes below replace them.
        migrations.RemoveIndex(model_name="notification", name="notificatio_recipie_8bedf2_idx"),
        migrations.RemoveIndex(model_name="notification", name="notificatio_actor_c_4f870b_idx"),
        migrations.RemoveIndex(model_name="notification", name="notificatio_target__dfbaf5_idx"),
        migrations.RemoveIndex(model_name="notification", name="notificatio_action__6e12f7_idx"),
        migrations.AlterField(model_name="notification", name="unread", field=models.BooleanField(default=True)),
        migrations.AlterField(model_name="notification", name="deleted", field=models.BooleanField(default=False)),
        migrations.AlterField(model_name="notification", name="public", field=models.BooleanField(default=True)),
        migrations.AlterField(model_name="notification", name="emailed", field=models.BooleanField(default=False)),
        # PostgreSQL: one table rewrite for the id and the NULLs below.
        migrations.RunPython(rewrite_once_on_postgresql, migrations.RunPython.noop),
        # The creation time: renamed, so its values (and index) stay.
        migrations.RenameField(model_name="notification", old_name="timestamp", new_name="created"),
        migrations.AlterField(
            model_name="notification",
            name="id",
            field=models.BigAutoField(primary_key=True, serialize=False),
        ),
        migrations.AlterField(
            model_name="notification",
            name="recipient",
            field=models.ForeignKey(blank=True, help_text="Empty for a broadcast.", null=True, on_delete=django.db.models.deletion.CASCADE, related_name="notifications", to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name="notification",
            name="actor_content_type",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="contenttypes.contenttype"),
        ),
        migrations.AlterField(
            model_name="notification",
            name="actor_object_id",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AlterField(
            model_name="notification",
            name="target_content_type",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="contenttypes.contenttype"),
        ),
        migrations.AlterField(
            model_name="notification",
            name="action_object_content_type",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="contenttypes.contenttype"),
        ),
        # NULL becomes the field's default in the same statement sequence
        # (default for new rows, UPDATE ... WHERE NULL, NOT NULL).
        migrations.AlterField(
            model_name="notification",
            name="target_object_id",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AlterField(
            model_name="notification",
            name="action_object_object_id",
            field=models.CharField(blank=True, default="", max_length=255),
        ),
        migrations.AlterField(
            model_name="notification",
            name="description",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AlterField(
            model_name="notification",
            name="data",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="notification",
            name="level",
            field=models.CharField(choices=LEVELS, default="info", max_length=20),
        ),
        migrations.AlterField(
            model_name="notification",
            name="created",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
        migrations.AddField(
            model_name="notification",
            name="audience",
            field=models.CharField(choices=AUDIENCES, default="user", max_length=8),
        ),
        migrations.AddField(
            model_name="notification",
            name="audience_group",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="auth.group"),
        ),
        migrations.AddField(
            model_name="notification",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="actor_display",
            field=models.CharField(blank=True, default="", help_text="How the actor was named when the notification was sent.", max_length=255),
        ),
        migrations.AddField(
            model_name="notification",
            name="url",
            field=models.CharField(blank=True, default="", max_length=2000),
        ),
        migrations.AlterModelOptions(name="notification", options={"ordering": ["-id"]}),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(fields=["recipient", "id"], name="notif_recipient_id"),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(condition=models.Q(("unread", True)), fields=["recipient", "unread"], name="notif_recipient_unread"),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(condition=models.Q(("recipient__isnull", True)), fields=["audience", "id"], name="notif_broadcast"),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.CheckConstraint(condition=models.Q(models.Q(("audience", "user"), ("recipient__isnull", False)), models.Q(models.Q(("audience", "user"), _negated=True), ("recipient__isnull", True)), _connector="OR"), name="notif_recipient_matches_audience"),
        ),
        migrations.AddConstraint(
            model_name="notification",
            constraint=models.CheckConstraint(condition=models.Q(models.Q(("audience", "group"), ("audience_group__isnull", False)), models.Q(models.Q(("audience", "group"), _negated=True), ("audience_group__isnull", True)), _connector="OR"), name="notif_group_audience_has_group"),
        ),
        migrations.CreateModel(
            name="BroadcastReceipt",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("read_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("hidden", models.BooleanField(default=False)),
                ("notification", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="receipts", to="notifications.notification")),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "indexes": [models.Index(fields=["user", "notification"], name="notif_receipt_user")],
                "constraints": [models.UniqueConstraint(fields=("notification", "user"), name="notif_receipt_unique")],
            },
        ),
        migrations.CreateModel(
            name="Broadcast",
            fields=[],
            options={
                "verbose_name": "broadcast",
                "verbose_name_plural": "broadcasts",
                "proxy": True,
                "indexes": [],
                "constraints": [],
            },
            bases=("notifications.notification",),
        ),
    ]
