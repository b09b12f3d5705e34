import django.utils.timezone
from django.db import migrations, models

from ._hq import RequireTableShape


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0003_notification_data"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AlterField(
            model_name="notification",
            name="timestamp",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
    ]
