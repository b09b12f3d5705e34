from django.db import migrations, models

from ._hq import RequireTableShape

LEVELS = [("success", "Success"), ("info", "Info"), ("warning", "Warning"), ("error", "Error")]


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0012_gfk_indexes"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AlterField(
            model_name="notification",
            name="level",
            field=models.CharField(choices=LEVELS, default="info", max_length=20),
        ),
    ]
