"""
django-notifications-hq's first schema. The history of this app begins with
hq's migrations (0001-0009) and its community fork's (0010-0013), so a database
that ran them carries on from where it is; 0014 onwards turn that table into
this app's.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from ._hq import RequireTableShape

LEVELS = [("success", "success"), ("info", "info"), ("warning", "warning"), ("error", "error")]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("contenttypes", "0001_initial"),
    ]

    operations = [
        RequireTableShape(),
        migrations.CreateModel(
            name="Notification",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("level", models.CharField(choices=LEVELS, default="info", max_length=20)),
                ("unread", models.BooleanField(default=True)),
                ("actor_object_id", models.CharField(max_length=255)),
                ("verb", models.CharField(max_length=255)),
                ("description", models.TextField(blank=True, null=True)),
                ("target_object_id", models.CharField(blank=True, max_length=255, null=True)),
                ("action_object_object_id", models.CharField(blank=True, max_length=255, null=True)),
                ("timestamp", models.DateTimeField(default=django.utils.timezone.now)),
                ("public", models.BooleanField(default=True)),
                ("action_object_content_type", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="notify_action_object", to="contenttypes.contenttype")),
                ("actor_content_type", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="notify_actor", to="contenttypes.contenttype")),
                ("recipient", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="notifications", to=settings.AUTH_USER_MODEL)),
                ("target_content_type", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="notify_target", to="contenttypes.contenttype")),
            ],
            options={"ordering": ("-timestamp",)},
        ),
    ]
