from django.db import migrations, models

from ._hq import RequireTableShape


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0001_initial"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AddField(
            model_name="notification",
            name="deleted",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="notification",
            name="emailed",
            field=models.BooleanField(default=False),
        ),
    ]
