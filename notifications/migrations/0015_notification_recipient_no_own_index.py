"""
Drop the index of ``Notification.recipient`` alone: ``notif_recipient_id``
(recipient, id) serves every lookup by recipient, and one more index slows
every insert.

Only the index goes. A plain AlterField would, on PostgreSQL, also drop and
re-add the foreign key, re-checking every row under a lock that blocks inserts.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from ._hq import RequireTableShape


def drop_recipient_index(apps, schema_editor):
    """Drop what ``db_index=True`` made, as AlterField finds it (by columns, not Meta.indexes)."""
    model = apps.get_model("notifications", "Notification")
    column = model._meta.get_field("recipient").column
    names = schema_editor._constraint_names(
        model,
        [column],
        index=True,
        type_=models.Index.suffix,
        exclude={index.name for index in model._meta.indexes},
    )
    for name in names:
        schema_editor.execute(schema_editor._delete_index_sql(model, name))


def create_recipient_index(apps, schema_editor):
    """Re-create it under the name ``db_index=True`` gives it."""
    model = apps.get_model("notifications", "Notification")
    field = model._meta.get_field("recipient")
    schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0014_notification_live_feeds'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        RequireTableShape(),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='notification',
                    name='recipient',
                    field=models.ForeignKey(blank=True, db_index=False, help_text='Empty for a broadcast.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                migrations.RunPython(drop_recipient_index, create_recipient_index, elidable=True),
            ],
        ),
    ]
