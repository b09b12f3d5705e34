"""
Web Push security: endpoints keep to push services (no door into the
server's network), a user's devices are capped, slow services are given up,
and one bad device never blocks the others.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.checks import run_checks
from django.test import Client

from notifications import api, worker
from notifications.conf import BROWSER_PUSH_SERVICES
from notifications.kinds import Kind
from notifications.models import Delivery, PushSubscription

from .conftest import CSRF

pytestmark = pytest.mark.django_db

User = get_user_model()
SUBSCRIBE = "/notifications/api/push/subscribe/"


@pytest.fixture
def alice():
    return User.objects.create_user("alice", email="alice@example.com")


@pytest.fixture
def pushed(declare):
    """A kind pushed at once, one delivery per notification."""
    return declare(Kind("ping", label="Pings", channels={"in_app": True, "push": True}))


def post_subscription(user, body: dict[str, Any]):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.cookies["csrftoken"] = CSRF
    return client.post(SUBSCRIBE, json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=CSRF)


def subscribe(user, device) -> PushSubscription:
    response = post_subscription(user, device.as_json())
    assert response.status_code == 201, response.content
    return PushSubscription.objects.get(pk=response.json()["id"])


def with_endpoint(endpoint: str) -> dict[str, Any]:
    """A subscription with good keys at ``endpoint``."""
    from .pushservice import Device

    return Device(endpoint).as_json()


# -- 1. endpoints keep to push services ------------------------------------------------


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "https://10.0.0.7/push/x",
        "https://[::1]/push/x",
        "https://localhost/push/x",
        "https://internal.example/push/x",
        "https://fcm.googleapis.com.evil.example/fcm/send/x",
        "https://evilfcm.googleapis.com/fcm/send/x",
    ],
)
def test_subscribe_refuses_an_endpoint_outside_the_push_services(alice, endpoint):
    response = post_subscription(alice, with_endpoint(endpoint))
    assert response.status_code == 400
    assert "NOTIFICATIONS_PUSH_SERVICES" in response.json()["error"]
    assert not PushSubscription.objects.exists()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91b",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
        "https://web.push.apple.com/QGuQyavXutnMtjU",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
    ],
)
def test_subscribe_accepts_the_browsers_push_services(alice, endpoint):
    assert post_subscription(alice, with_endpoint(endpoint)).status_code == 201


def test_a_private_address_is_allowed_when_the_setting_lists_that_address(alice, settings):
    settings.NOTIFICATIONS_PUSH_SERVICES = [*BROWSER_PUSH_SERVICES, "10.1.2.3"]
    assert post_subscription(alice, with_endpoint("https://10.1.2.3/push/x")).status_code == 201
    assert post_subscription(alice, with_endpoint("https://10.1.2.4/push/x")).status_code == 400


def test_a_listed_name_that_resolves_to_a_private_address_is_not_connected_to(
    alice, service, vapid, pushed, settings
):
    # A name on the list whose DNS answers a private address when the worker
    # sends (DNS rebinding): localhost plays it, resolving to 127.0.0.1.
    settings.NOTIFICATIONS_PUSH_SERVICES = [*BROWSER_PUSH_SERVICES, "localhost"]
    device = service.device("a")
    device.endpoint = device.endpoint.replace("127.0.0.1", "localhost")
    subscription = subscribe(alice, device)
    api.notify(alice, "pinged you", kind="ping")
    assert worker.drain() == {"failed": 1}
    assert service.arrived == []
    record = Delivery.objects.get().devices[str(subscription.pk)]
    assert record["result"] == "failed" and "not a public address" in record["note"]


def test_a_redirect_away_from_the_push_service_is_not_followed(alice, service, vapid, pushed):
    subscribe(alice, service.device("a"))
    elsewhere = service.device("b").endpoint.replace("127.0.0.1", "localhost")
    service.answer("a", (307, {"Location": elsewhere}))
    api.notify(alice, "pinged you", kind="ping")
    assert worker.drain() == {"failed": 1}
    assert [path for path, _ in service.arrived] == ["/push/a"]


def test_a_user_keeps_at_most_ten_devices_by_default_the_oldest_replaced(alice, service):
    endpoints = [subscribe(alice, service.device(f"d{i}")).endpoint for i in range(11)]
    kept = set(PushSubscription.objects.values_list("endpoint", flat=True))
    assert kept == set(endpoints[1:])


def test_the_device_cap_is_a_setting(alice, service, settings):
    settings.NOTIFICATIONS_PUSH_MAX_DEVICES = 2
    endpoints = [subscribe(alice, service.device(f"d{i}")).endpoint for i in range(3)]
    assert set(PushSubscription.objects.values_list("endpoint", flat=True)) == set(endpoints[1:])


def test_a_device_that_does_not_answer_in_time_does_not_hold_up_the_others(
    alice, service, vapid, pushed, settings
):
    settings.NOTIFICATIONS_PUSH_TIMEOUT = 0.5
    slow = subscribe(alice, service.device("slow"))
    subscribe(alice, service.device("fast"))
    service.hold("slow")
    api.notify(alice, "pinged you", kind="ping")
    started = time.monotonic()
    assert worker.drain() == {"sent": 1}
    assert time.monotonic() - started < 5
    assert [r.path for r in service.received] == ["/push/fast"]
    record = Delivery.objects.get().devices[str(slow.pk)]
    assert record["result"] == "failed" and "no answer within 0.5 s" in record["note"]


def test_a_pass_gives_back_the_deliveries_it_has_no_time_for_before_their_lease(
    alice, service, vapid, pushed, settings
):
    settings.NOTIFICATIONS_PUSH_TIMEOUT = 1.0
    settings.NOTIFICATIONS_DELIVERY_LEASE = 3.0
    subscribe(alice, service.device("slow"))
    service.hold("slow")
    for _ in range(3):
        api.notify(alice, "pinged you", kind="ping")
    started = time.monotonic()
    done = worker.deliver_due()
    # Every push left with time to finish before its claim's lease ends.
    assert service.arrived and all(at - started < 3.0 - 1.0 for _, at in service.arrived)
    assert done["released"] == 3 - len(service.arrived)
    given_back = Delivery.objects.filter(state="pending")
    assert given_back.count() == done["released"] and {d.attempts for d in given_back} == {0}


# -- 2. one bad device never blocks the others ----------------------------------------------


def test_subscribe_refuses_a_p256dh_that_is_not_a_point_on_the_curve(alice, service):
    body = service.device("a").as_json()
    body["keys"]["p256dh"] = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()
    response = post_subscription(alice, body)
    assert response.status_code == 400 and "P-256" in response.json()["error"]
    assert not PushSubscription.objects.exists()


def test_a_stored_device_with_an_unusable_key_is_removed_and_the_others_get_the_push(
    alice, service, vapid, pushed
):
    bad = service.device("bad").as_json()
    PushSubscription.objects.create(  # stored before keys were checked
        user=alice, endpoint=bad["endpoint"], p256dh=base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode(),
        auth=bad["keys"]["auth"],
    )
    subscribe(alice, service.device("good"))
    api.notify(alice, "pinged you", kind="ping")
    assert worker.drain() == {"sent": 1}
    assert [r.path for r in service.received] == ["/push/good"]
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [service.device("good").endpoint]


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_a_device_answered_with_a_final_refusal_is_removed_and_the_others_get_the_push(
    alice, service, vapid, pushed, status
):
    subscribe(alice, service.device("broken"))
    fine = subscribe(alice, service.device("fine"))
    service.answer("broken", status)
    api.notify(alice, "pinged you", kind="ping")
    assert worker.drain() == {"sent": 1}
    assert list(PushSubscription.objects.all()) == [fine]


def test_a_push_is_sent_when_one_device_took_it_though_another_failed(alice, service, vapid, pushed):
    subscribe(alice, service.device("big"))
    subscribe(alice, service.device("fine"))
    service.answer("big", 413)
    api.notify(alice, "pinged you", kind="ping")
    assert worker.drain() == {"sent": 1}
    delivery = Delivery.objects.get()
    assert delivery.state == "sent" and "413" in delivery.note


def test_each_devices_answer_is_recorded_on_the_delivery(alice, service, vapid, pushed):
    laptop = subscribe(alice, service.device("laptop"))
    phone = subscribe(alice, service.device("phone"))
    service.answer("phone", 413)
    api.notify(alice, "pinged you", kind="ping")
    worker.drain()
    devices = Delivery.objects.get().devices
    assert devices[str(laptop.pk)] == {"host": "127.0.0.1", "result": "sent", "status": 201, "attempt": 1}
    assert devices[str(phone.pk)]["result"] == "failed" and devices[str(phone.pk)]["status"] == 413


@pytest.mark.parametrize("name", ["NOTIFICATIONS_PUSH_TIMEOUT", "NOTIFICATIONS_PUSH_MAX_DEVICES"])
def test_a_check_refuses_a_push_limit_that_is_not_positive(settings, name):
    setattr(settings, name, 0)
    assert any(m.id == "notifications.E001" and name in m.msg for m in run_checks())
