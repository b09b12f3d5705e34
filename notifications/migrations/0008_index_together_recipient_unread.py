"""
hq declared ``index_together = ("recipient", "unread")``, which Django 5.1
removed. The same index, under the name Django gave it, as a plain index.
"""

from django.conf import settings
from django.db import migrations, models

from ._hq import RequireTableShape

INDEX_TOGETHER_NAME = "notifications_notification_recipient_id_unread_253aadc9_idx"


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("notifications", "0007_add_timestamp_index"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(fields=["recipient", "unread"], name=INDEX_TOGETHER_NAME),
        ),
    ]
