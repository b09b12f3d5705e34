"""
Rows written by django-notifications-hq: name their actor (``str(actor)``, as
this app stores it when sending) and take their ``url`` from ``data["url"]``.
Not atomic as a whole: one transaction per batch, so a large table is filled
in steps and an interrupted run resumes.
"""

from django.db import migrations

from ._hq import RequireTableShape, fill_actor_display_and_url


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("notifications", "0015_notification_recipient_no_own_index"),
    ]

    operations = [
        RequireTableShape(),
        migrations.RunPython(fill_actor_display_and_url, migrations.RunPython.noop, elidable=True),
    ]
