"""Web Push: subscriptions, VAPID, aes128gcm, and what push services answer; offline."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from notifications import api, push, worker
from notifications.kinds import Kind
from notifications.models import Delivery, Notification, PushSubscription

from .conftest import CSRF

pytestmark = pytest.mark.django_db

User = get_user_model()
SUBSCRIBE = "/notifications/api/push/subscribe/"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.fixture
def pushed(declare):
    """A kind pushed at once, grouped by target."""
    return declare(Kind("ping", label="Pings", channels={"in_app": True, "push": True}, group_by="target"))


def logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies["csrftoken"] = CSRF
    return client


def subscribe(user, device) -> None:
    response = logged_in(user).post(
        SUBSCRIBE, json.dumps(device.as_json()), content_type="application/json", HTTP_X_CSRFTOKEN=CSRF
    )
    assert response.status_code == 201, response.content


def test_push_is_vapid_signed_and_decrypts_to_exactly_the_rendered_payload(alice, service, vapid, pushed):
    subscribe(alice, service.device("a"))
    (row,) = api.notify(alice, "pinged you", actor=alice, target=alice, kind="ping", url="/posts/1/")
    assert worker.drain() == {"sent": 1}
    (got,) = service.received
    assert got.vapid_key == vapid and got.claims["sub"] == "mailto:ops@example.com"
    # The read link is signed with a timestamp, so it is compared by what it names, not byte for byte.
    got_token = got.payload["read_url"].rstrip("/").rsplit("/", 1)[1]
    assert push.notification_of(got_token) == (row.pk, alice.pk)
    rendered = push.payload(Notification.objects.get(pk=row.pk), pushed)
    assert got.payload.keys() == rendered.keys()
    assert {k: v for k, v in got.payload.items() if k != "read_url"} == {
        k: v for k, v in rendered.items() if k != "read_url"
    }
    assert got.payload["title"] == "Pings" and got.payload["body"] == "alice pinged you"
    assert got.payload["tag"] == row.group_key and got.payload["url"] == "/posts/1/"


def test_push_headers_carry_ttl_urgency_and_a_topic_from_the_group_key(alice, service, vapid, pushed):
    subscribe(alice, service.device("a"))
    (row,) = api.notify(alice, "pinged you", target=alice, kind="ping")
    api.notify(alice, "signed in", kind="security")
    worker.drain()
    ping, security = sorted(service.received, key=lambda r: r.payload["title"] != "Pings")
    assert ping.headers["ttl"] == "86400" and ping.headers["urgency"] == "normal"
    assert ping.headers["topic"] == push.topic(row) and len(ping.headers["topic"]) <= 32
    assert security.headers["urgency"] == "high" and int(security.headers["ttl"]) == 28 * 86400
    assert "topic" not in security.headers


def test_every_subscribed_browser_of_the_user_gets_the_push(alice, service, vapid, pushed):
    subscribe(alice, service.device("laptop"))
    subscribe(alice, service.device("phone"))
    api.notify(alice, "pinged you", target=alice, kind="ping")
    worker.drain()
    assert sorted(r.path for r in service.received) == ["/push/laptop", "/push/phone"]


def test_a_user_without_a_subscription_gets_no_push_scheduled(alice, vapid, pushed):
    api.notify(alice, "pinged you", target=alice, kind="ping")
    assert not Delivery.objects.filter(channel="push").exists()


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_deleted(alice, service, vapid, pushed, status):
    subscribe(alice, service.device("old"))
    service.answer("old", status)
    api.notify(alice, "pinged you", target=alice, kind="ping")
    worker.drain()
    assert not PushSubscription.objects.exists()
    assert Delivery.objects.get().state == "skipped"


def test_413_is_logged_and_the_push_failed(alice, service, vapid, pushed, caplog):
    subscribe(alice, service.device("a"))
    service.answer("a", 413)
    api.notify(alice, "pinged you", target=alice, kind="ping")
    assert worker.drain() == {"failed": 1}
    assert "413" in caplog.text and PushSubscription.objects.count() == 1


def test_429_with_retry_after_is_retried_after_it(alice, service, vapid, pushed):
    subscribe(alice, service.device("a"))
    service.answer("a", (429, {"Retry-After": "1"}))
    api.notify(alice, "pinged you", target=alice, kind="ping")
    assert worker.drain() == {"retry": 1}
    delivery = Delivery.objects.get()
    assert delivery.state == "pending"
    assert timedelta(seconds=0.5) < delivery.due - timezone.now() <= timedelta(seconds=1)
    assert worker.drain() == {}  # not before
    time.sleep(1.05)
    assert worker.drain() == {"sent": 1}
    assert len(service.received) == 2


def test_a_5xx_without_retry_after_backs_off(alice, service, vapid, pushed):
    subscribe(alice, service.device("a"))
    service.answer("a", 503)
    api.notify(alice, "pinged you", target=alice, kind="ping")
    assert worker.drain() == {"retry": 1}
    assert Delivery.objects.get().due - timezone.now() > timedelta(seconds=8)


def test_a_retry_goes_only_to_the_browsers_that_did_not_take_it(alice, service, vapid, pushed):
    subscribe(alice, service.device("busy"))
    subscribe(alice, service.device("fine"))
    service.answer("busy", (429, {"Retry-After": "0"}))
    api.notify(alice, "pinged you", target=alice, kind="ping")
    assert worker.drain() == {"retry": 1, "sent": 1}  # due again at once: the same drain
    paths = [r.path for r in service.received]
    assert paths.count("/push/fine") == 1 and paths.count("/push/busy") == 2
    assert Delivery.objects.get().state == "sent"


def test_a_push_read_before_it_is_due_is_not_sent(alice, service, vapid, declare):
    declare(Kind("ping", channels={"in_app": True, "push": timedelta(seconds=0.2)}))
    subscribe(alice, service.device("a"))
    (row,) = api.notify(alice, "pinged you", kind="ping")
    api.mark_read(alice, [row.pk])
    time.sleep(0.25)
    worker.drain()
    assert service.received == []


def test_the_pushs_read_url_marks_it_read_without_a_session(alice, service, vapid, pushed):
    subscribe(alice, service.device("a"))
    (row,) = api.notify(alice, "pinged you", target=alice, kind="ping")
    worker.drain()
    response = Client(enforce_csrf_checks=True).post(service.received[0].payload["read_url"])
    assert response.status_code == 200 and response.json() == {"marked": [row.pk]}
    assert not Notification.objects.get(pk=row.pk).unread


def test_a_forged_read_url_is_refused(alice):
    response = Client().post("/notifications/api/push/read/forged/")
    assert response.status_code == 400


def test_subscribe_needs_the_csrf_token(alice, service, vapid):
    client = logged_in(alice)
    response = client.post(SUBSCRIBE, json.dumps(service.device("a").as_json()), content_type="application/json")
    assert response.status_code == 403 and not PushSubscription.objects.exists()


def test_subscribe_needs_a_login(service, vapid):
    response = Client().post(SUBSCRIBE, json.dumps(service.device("a").as_json()), content_type="application/json")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "body, message",
    [
        ({"keys": {}}, "endpoint must be"),
        ({"endpoint": "ftp://x/y", "keys": {}}, "https URL"),
        ({"endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "AAAA"}}, "P-256"),
    ],
)
def test_subscribe_refuses_a_malformed_subscription(alice, vapid, body, message):
    response = logged_in(alice).post(SUBSCRIBE, json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == 400 and message in response.json()["error"]


def test_unsubscribe_removes_only_that_browser(alice, service, vapid):
    laptop, phone = service.device("laptop"), service.device("phone")
    subscribe(alice, laptop)
    subscribe(alice, phone)
    response = logged_in(alice).post(
        "/notifications/api/push/unsubscribe/", json.dumps({"endpoint": laptop.endpoint}),
        content_type="application/json", HTTP_X_CSRFTOKEN=CSRF,
    )
    assert response.json() == {"removed": 1}
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [phone.endpoint]


def test_the_public_key_is_served_for_pages_to_subscribe_with(vapid):
    assert Client().get("/notifications/api/push/key/").json() == {"public_key": vapid}


def test_vapid_keys_command_prints_a_matching_pair(capsys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from .pushservice import b64, unb64

    call_command("notifications_vapid_keys")
    lines = dict(line.split(" = ") for line in capsys.readouterr().out.splitlines())
    public = lines["NOTIFICATIONS_VAPID_PUBLIC_KEY"].strip('"')
    private = lines["NOTIFICATIONS_VAPID_PRIVATE_KEY"].strip('"')
    key = ec.derive_private_key(int.from_bytes(unb64(private), "big"), ec.SECP256R1())
    derived = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert b64(derived) == public and len(unb64(public)) == 65


def test_without_vapid_keys_nothing_is_pushed(alice, service, settings, pushed):
    settings.DEBUG = True
    subscribe(alice, service.device("a"))
    api.notify(alice, "pinged you", target=alice, kind="ping")
    worker.drain()
    assert service.received == []
    assert Delivery.objects.get().note.startswith("no VAPID keys")


def test_a_check_warns_when_only_one_vapid_key_is_set(settings):
    from django.core.checks import run_checks

    settings.NOTIFICATIONS_VAPID_PUBLIC_KEY = ""
    settings.NOTIFICATIONS_VAPID_PRIVATE_KEY = "x"
    assert "notifications.W030" in {m.id for m in run_checks()}
    settings.NOTIFICATIONS_VAPID_PUBLIC_KEY = "y"
    assert "notifications.W030" not in {m.id for m in run_checks()}
