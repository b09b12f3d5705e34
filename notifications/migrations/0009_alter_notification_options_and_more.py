"""hq 1.8's last migration: names for the admin; nothing changes in the database."""

from django.conf import settings
from django.db import migrations

from ._hq import RequireTableShape


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("notifications", "0008_index_together_recipient_unread"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AlterModelOptions(
            name="notification",
            options={
                "ordering": ("-timestamp",),
                "verbose_name": "Notification",
                "verbose_name_plural": "Notifications",
            },
        ),
    ]
