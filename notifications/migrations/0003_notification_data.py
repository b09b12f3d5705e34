"""hq stored ``data`` with the jsonfield package: JSON as text. 0011 makes it a JSON column."""

from django.db import migrations, models

from ._hq import RequireTableShape


class Migration(migrations.Migration):

    dependencies = [
        ("notifications", "0002_auto_20150224_1134"),
    ]

    operations = [
        RequireTableShape(),
        migrations.AddField(
            model_name="notification",
            name="data",
            field=models.TextField(blank=True, null=True),
        ),
    ]
