"""Kinds declared in code: stored on rows, rendered per kind and channel, checked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.utils.translation import gettext

from notifications import api
from notifications.kinds import Kind, register
from notifications.models import Notification
from notifications.render import as_dict
from notifications.signals import notify

pytestmark = pytest.mark.django_db

User = get_user_model()


def test_the_demo_declares_its_kinds_in_its_notifications_module():
    # project/notifications.py, imported at startup like admin.py.
    mention, comment, security = register["mention"], register["comment"], register["security"]
    assert mention.channel("email").after == timedelta(minutes=2)
    assert mention.channel("push").after == timedelta(minutes=2)
    assert comment.group_by == "target" and comment.window == timedelta(minutes=10)
    assert not comment.channel("email").enabled and not comment.channel("push").enabled
    assert security.critical and all(c.enabled and c.after is None for c in security.channels.values())


def test_notify_stores_the_kind_and_the_json_carries_it(alice):
    (row,) = api.notify(alice, "mentioned you", kind="mention")
    row.refresh_from_db()
    assert row.kind == "mention"
    assert as_dict(row)["kind"] == "mention"


def test_notify_with_an_unknown_kind_raises_naming_the_declared_ones(alice):
    with pytest.raises(ValueError, match=r"Unknown notification kind 'nope'; declared: .*comment, mention, security"):
        api.notify(alice, "x", kind="nope")
    assert not Notification.objects.exists()


def test_notification_without_a_kind_works_as_before(alice):
    (row,) = api.notify(alice, "says hello", actor=alice)
    data = as_dict(row)
    assert data["kind"] is None and data["group"] is None and data["count"] == 1
    assert data["text"] == "alice says hello"


def test_the_hq_signal_takes_a_kind(alice):
    [(_, rows)] = notify.send(alice, recipient=alice, verb="mentioned you", kind="mention")
    assert [r.kind for r in rows] == ["mention"]
    assert rows[0].data == {}  # the kind is not an extra key for data


def test_the_hq_signal_rejects_an_unknown_kind(alice):
    with pytest.raises(ValueError, match="declared:"):
        notify.send(alice, recipient=alice, verb="x", kind="nope")


def test_text_comes_from_the_kinds_template_for_the_channel(alice):
    # project/templates/notifications/mention/in_app.txt
    (row,) = api.notify(alice, "mentioned you", actor=alice, kind="mention", data={"post": "Post 7 & <b>"})
    assert as_dict(row)["text"] == "alice mentioned you in Post 7 & <b>"  # text: no HTML escaping


def test_text_comes_from_the_kinds_function_before_any_template(alice, declare):
    declare(Kind("shipped", text={"in_app": lambda c: f"Order {c['data']['order']} shipped"}))
    (row,) = api.notify(alice, "order shipped", kind="shipped", data={"order": 12})
    assert as_dict(row)["text"] == "Order 12 shipped"


def test_decorator_declares_a_kind_with_its_text(alice):
    @register.text("reminder", label="Reminders")
    def reminder(context):
        return f"Reminder: {context['verb']}"

    try:
        (row,) = api.notify(alice, "pay the bill", kind="reminder")
        assert as_dict(row)["text"] == "Reminder: pay the bill"
        assert register["reminder"].label == "Reminders"
    finally:
        register.unregister("reminder")


def test_stored_verb_is_the_text_when_the_kind_has_no_template(alice):
    # security has no template in the demo.
    (row,) = api.notify(alice, "signed in from a new device", actor=alice, kind="security")
    assert as_dict(row)["text"] == "alice signed in from a new device"


def test_text_is_rendered_in_the_recipients_language(alice, declare, settings):
    declare(Kind("polite", text={"in_app": lambda c: gettext("Yes")}))
    settings.NOTIFICATIONS_USER_LANGUAGE = "last_name"  # a project's own field, here borrowed
    bob = User.objects.create_user("bob", last_name="fr")
    rows = api.notify([alice, bob], "x", kind="polite")
    texts = {n.recipient_id: as_dict(n)["text"] for n in rows}
    assert texts == {alice.pk: "Yes", bob.pk: "Oui"}


def test_a_kind_must_name_known_channels():
    with pytest.raises(ValueError, match="Unknown channel 'sms'; allowed: in_app, email, push"):
        Kind("x", channels={"in_app": True, "sms": True})


def test_a_kind_cannot_be_declared_twice_differently(declare):
    declare(Kind("twice", label="One"))
    with pytest.raises(ValueError, match="already declared"):
        register(Kind("twice", label="Two"))


def test_check_reports_kinds_stored_on_rows_but_no_longer_declared(alice, declare):
    declare(Kind("retired"))
    api.notify(alice, "x", kind="retired")
    assert [m for m in run_checks(databases=["default"]) if m.id == "notifications.W020"] == []
    register.unregister("retired")
    (message,) = [m for m in run_checks(databases=["default"]) if m.id == "notifications.W020"]
    assert "retired" in message.msg and message.hint
    # Such rows still render, from the stored verb.
    assert as_dict(Notification.objects.get())["text"] == "x"


def test_notify_on_save_takes_a_kind(alice):
    from notifications.api import notify_on_save
    from tests.testapp.models import Article

    notify_on_save(
        Article,
        recipient=lambda a: a.author,
        verb="published",
        kind="mention",
        condition=lambda a: a.title == "kinded on save",  # this test's articles only
    )
    Article.objects.create(author=alice, title="kinded on save")
    (row,) = Notification.objects.filter(verb="published")
    assert row.kind == "mention"
