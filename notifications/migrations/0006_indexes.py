from django.db import migrations, models

from ._hq import RequireTableShape


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0005_auto_20160504_1520"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AlterField(
            model_name="notification",
            name="deleted",
            field=models.BooleanField(db_index=True, default=False),
        ),
        migrations.AlterField(
            model_name="notification",
            name="emailed",
            field=models.BooleanField(db_index=True, default=False),
        ),
        migrations.AlterField(
            model_name="notification",
            name="public",
            field=models.BooleanField(db_index=True, default=True),
        ),
        migrations.AlterField(
            model_name="notification",
            name="unread",
            field=models.BooleanField(db_index=True, default=True),
        ),
    ]
