"""The community fork gave hq's (recipient, unread) index the name Meta.indexes would."""

from django.db import migrations

from ._hq import RequireTableShape


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0009_alter_notification_options_and_more"),
    ]

    operations = [
        RequireTableShape(),
        migrations.RenameIndex(
            model_name="notification",
            old_name="notifications_notification_recipient_id_unread_253aadc9_idx",
            new_name="notificatio_recipie_8bedf2_idx",
        ),
    ]
