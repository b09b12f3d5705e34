import django.utils.timezone
from django.db import migrations, models

from ._hq import RequireTableShape


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0006_indexes"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AlterField(
            model_name="notification",
            name="timestamp",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now),
        ),
    ]
