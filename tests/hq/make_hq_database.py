"""
Build a database the way a site running django-notifications-hq does.

Runs in a virtualenv of its own with Django 4.2 and the hq package (never in
this project's), so the rows and the schema are what hq itself writes:

    python make_hq_database.py DATABASE_URL > rows.json
    python make_hq_database.py DATABASE_URL --schema-only

It migrates hq's apps, sends notifications through hq's ``notify`` signal
(several actor, target and action object models, read and soft-deleted rows,
custom levels, NULLs, unicode, ``data`` payloads) and prints each row as hq
sees it, for the tests to compare with what this app shows after the swap.
"""

import json
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

import django
from django.conf import settings


def configure(url):
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path}
    else:
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "",
            "PORT": parts.port or "",
        }
    settings.configure(
        DEBUG=False,
        SECRET_KEY="hq-fixture",
        USE_TZ=True,
        DATABASES={"default": database},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "notifications",
        ],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        DJANGO_NOTIFICATIONS_CONFIG={"USE_JSONFIELD": True, "SOFT_DELETE": True},
    )
    django.setup()


def describe(obj):
    if obj is None:
        return None
    return {"model": obj._meta.label_lower, "pk": str(obj.pk), "str": str(obj)}


def populate():
    from django.contrib.auth.models import Group, Permission, User
    from django.db import DatabaseError, connection, transaction

    from notifications.models import Notification
    from notifications.signals import notify

    alice = User.objects.create_user("alice", password="pw")
    bob = User.objects.create_user("bob", password="pw")
    zofia = User.objects.create_user("zofia", password="pw", first_name="Zofia Żółć")
    editors = Group.objects.create(name="Redakcja ✎")
    editors.user_set.add(bob, zofia)
    permission = Permission.objects.order_by("pk").first()
    old = datetime(2019, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)

    notify.send(alice, recipient=bob, verb="commented on", target=editors,
                action_object=permission, description="Zażółć gęślą jaźń ✓",
                level="success", url="/posts/1/", extra={"n": [1, 2, {"ü": None}]})
    notify.send(editors, recipient=editors, verb="welcomes you", level="warning")
    notify.send(permission, recipient=[alice, bob], verb="was granted", target=zofia,
                timestamp=old, level="urgent-custom")
    notify.send(alice, recipient=zofia, verb="mentioned you in 🧵", description=None)
    notify.send(bob, recipient=alice, verb="liked", action_object=editors, public=False)
    notify.send(zofia, recipient=alice, verb="replied", data_extra="kept", url=None)
    notify.send(alice, recipient=bob, verb="will be deleted")
    notify.send(alice, recipient=bob, verb="invalid data")

    Notification.objects.filter(verb="liked").mark_all_as_read()
    Notification.objects.filter(recipient=bob, verb="welcomes you").mark_all_as_read()
    Notification.objects.filter(verb="will be deleted").mark_all_as_deleted()
    Notification.objects.filter(verb="was granted", recipient=alice).mark_as_sent()
    # What a site's raw SQL or an old jsonfield may have left: not JSON at all
    # (a text column takes it; the fork's JSON column refuses it).
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE notifications_notification SET data = %s WHERE verb = %s",
                ["{not json: ", "invalid data"],
            )
    except DatabaseError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, data FROM notifications_notification ORDER BY id")
        raw_data = {
            pk: text if text is None or isinstance(text, str) else json.dumps(text)
            for pk, text in cursor.fetchall()
        }

    rows = []
    for n in Notification.objects.order_by("id"):
        rows.append({
            "id": n.id,
            "recipient": n.recipient.username,
            "unread": n.unread,
            "deleted": n.deleted,
            "public": n.public,
            "emailed": n.emailed,
            "level": n.level,
            "verb": n.verb,
            "description": n.description,
            "actor": describe(n.actor),
            "target": describe(n.target),
            "action_object": describe(n.action_object),
            "timestamp": n.timestamp.isoformat(),
            "raw_data": raw_data[n.id],
            "slug": n.slug,
        })
    return rows


def main():
    configure(sys.argv[1])
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if "--schema-only" not in sys.argv:
        json.dump(populate(), sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
