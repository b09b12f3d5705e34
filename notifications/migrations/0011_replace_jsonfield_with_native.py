"""
``data`` becomes a JSON column (the community fork's step). Text that is not
JSON the database accepts is kept first, as ``{"unparsed_data": "<the text>"}``.
"""

from django.db import migrations, models

from ._hq import RequireTableShape, repair_json_text


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0010_rename_notification_recipient_unread_notificatio_recipie_8bedf2_idx"),
    ]

    operations = [
        RequireTableShape(),
        migrations.RunPython(repair_json_text, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="notification",
            name="data",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
