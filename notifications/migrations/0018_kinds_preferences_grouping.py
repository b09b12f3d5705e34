"""
Kinds, preferences and grouping: the ``kind``, ``group_key`` and ``group``
columns of a notification (empty for existing rows, which keep working as
verb-only notifications), the two partial indexes that grouped rows need (only
grouped rows are indexed, so other inserts pay nothing), and the sparse
``Preference`` table. On PostgreSQL, columns with a constant default are added
without rewriting the table.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('notifications', '0017_transaction_ids'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Preference',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(blank=True, default='', max_length=64)),
                ('channel', models.CharField(max_length=16)),
                ('enabled', models.BooleanField()),
            ],
        ),
        migrations.AddField(
            model_name='notification',
            name='group',
            field=models.CharField(blank=True, default='', max_length=32),
        ),
        migrations.AddField(
            model_name='notification',
            name='group_key',
            field=models.CharField(blank=True, default='', max_length=200),
        ),
        migrations.AddField(
            model_name='notification',
            name='kind',
            field=models.CharField(blank=True, default='', help_text="The declared kind's key; empty for a notification with only a verb.", max_length=64),
        ),
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(condition=models.Q(('group_key', ''), _negated=True), fields=['recipient', 'group_key', 'id'], name='notif_group_key'),
        ),
        migrations.AddIndex(
            model_name='notification',
            index=models.Index(condition=models.Q(('group', ''), _negated=True), fields=['recipient', 'group', 'id'], name='notif_group'),
        ),
        migrations.AddField(
            model_name='preference',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='preference',
            constraint=models.UniqueConstraint(fields=('user', 'kind', 'channel'), name='notif_preference_unique'),
        ),
    ]
