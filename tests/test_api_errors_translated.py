"""
Every error the app's HTTP endpoints answer a user with speaks the request's
language: for each endpoint and bad input, the ``error`` of the answer is the
French or German translation of its message, not the English.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpResponse
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext

from notifications import api
from notifications.conf import conf
from notifications.kinds import register
from notifications.push import generate_vapid_keys

pytestmark = pytest.mark.django_db

API = "/notifications/api/"
PREFERENCES = "/notifications/api/preferences/"
FORM = "/notifications/preferences/"
SUBSCRIBE = "/notifications/api/push/subscribe/"
UNSUBSCRIBE = "/notifications/api/push/unsubscribe/"
FCM = "https://fcm.googleapis.com/fcm/send/device"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def usable_keys() -> dict[str, str]:
    """Keys a browser could send: a point on P-256 and a 16-byte secret."""
    return {"p256dh": generate_vapid_keys()[0], "auth": _b64(os.urandom(16))}


@dataclass
class Refusal:
    """A request that is refused, and the message (msgid and its values) the answer carries."""

    send: Callable[[Client, int], HttpResponse]  # the logged-in client, one of the user's notification ids
    msgid: str
    values: Callable[[int], dict[str, Any]] = field(default=lambda pk: {})
    status: int = 400
    logged_in: bool = True


def get(path: str) -> Callable[[Client, int], HttpResponse]:
    return lambda client, pk: client.get(path.format(pk=pk))


def post(path: str, body: Any = None, *, raw: str | None = None) -> Callable[[Client, int], HttpResponse]:
    """A JSON POST (``raw``: this body as it is)."""
    text = raw if raw is not None else json.dumps(body)
    return lambda client, pk: client.post(path.format(pk=pk), text, content_type="application/json")


def form(data: dict[str, Any]) -> Callable[[Client, int], HttpResponse]:
    """The preferences page's form, posted."""
    return lambda client, pk: client.post(FORM, data)


def change(**fields: Any) -> Callable[[Client, int], HttpResponse]:
    """One preferences change, as the JSON API takes it."""
    return post(PREFERENCES, fields)


def declared() -> str:
    return ", ".join(sorted(kind.key for kind in register))


INTEGER = "%(name)s must be an integer from 1 to %(maximum)s."
FLAG = "%(name)s must be 1, 0, true or false."
NOT_JSON = "The body must be JSON."
NOT_AN_OBJECT = "The body must be a JSON object."
UNTIL = "until %(value)r is not an ISO 8601 time such as 2030-01-31T09:00:00Z."
WRONG_METHOD = "Use %(allowed)s for this endpoint, not %(method)s."

REFUSALS = {
    # GET api/
    "list-page": Refusal(get(API + "?page=x"), INTEGER, lambda pk: {"name": "page", "maximum": 1_000_000}),
    "list-page-size": Refusal(
        get(API + "?page_size=0"), INTEGER, lambda pk: {"name": "page_size", "maximum": conf.MAX_PAGE_SIZE}
    ),
    "list-before": Refusal(get(API + "?before=-1"), INTEGER, lambda pk: {"name": "before", "maximum": 2**63 - 1}),
    "list-unread": Refusal(get(API + "?unread=maybe"), FLAG, lambda pk: {"name": "unread"}),
    "list-archived": Refusal(get(API + "?archived=2"), FLAG, lambda pk: {"name": "archived"}),
    # POST api/seen/
    "seen-not-json": Refusal(post(API + "seen/", raw="{"), NOT_JSON),
    "seen-not-an-object": Refusal(post(API + "seen/", []), NOT_AN_OBJECT),
    "seen-ids": Refusal(post(API + "seen/", {"ids": "some"}), 'ids must be a list of notification ids, or "all".'),
    "seen-through": Refusal(
        post(API + "seen/", {"ids": "all", "through": "x"}), "through must be a notification id."
    ),
    # POST api/<pk>/snooze/, archive/, unarchive/, read/, unread/, delete/
    "snooze-no-until": Refusal(
        post(API + "{pk}/snooze/", {}), "until is required: an ISO 8601 time such as 2030-01-31T09:00:00Z."
    ),
    "snooze-bad-until": Refusal(post(API + "{pk}/snooze/", {"until": "tomorrow"}), UNTIL, lambda pk: {"value": "tomorrow"}),
    "snooze-past": Refusal(post(API + "{pk}/snooze/", {"until": "2000-01-01T00:00:00Z"}), "until must be in the future."),
    "snooze-not-an-object": Refusal(post(API + "{pk}/snooze/", ["x"]), NOT_AN_OBJECT),
    "archive-not-mine": Refusal(post(API + "999999999/archive/"), "No such notification.", status=404),
    "unarchive-not-mine": Refusal(post(API + "999999999/unarchive/"), "No such notification.", status=404),
    "read-not-mine": Refusal(post(API + "999999999/read/"), "No such notification.", status=404),
    "archive-read-by-get": Refusal(
        get(API + "archive-read/"), WRONG_METHOD, lambda pk: {"allowed": "POST", "method": "GET"}, status=405
    ),
    "list-anonymous": Refusal(
        get(API), "Authentication required: log in to see notifications.", status=403, logged_in=False
    ),
    "hub-not-staff": Refusal(get(API + "hub/"), "Staff only.", status=403),
    # POST api/preferences/ (JSON)
    "preferences-not-json": Refusal(post(PREFERENCES, raw="{"), NOT_JSON),
    "preferences-no-changes": Refusal(
        post(PREFERENCES, {"changes": []}), "changes must be a non-empty list of {kind, channel, enabled}."
    ),
    "preferences-change-not-an-object": Refusal(
        post(PREFERENCES, {"changes": [1]}), "Each change must be an object with kind, channel and enabled."
    ),
    "preferences-unknown-field": Refusal(
        change(kind="comment", channel="in_app", enabled=True, colour="red"),
        "Unknown field(s) %(fields)s; use kind, channel, and enabled or every (with at, weekday, time_zone).",
        lambda pk: {"fields": "'colour'"},
    ),
    "preferences-enabled": Refusal(
        change(kind="comment", channel="in_app", enabled=3),
        "enabled must be true, false, or null (back to the default).",
    ),
    "preferences-unknown-channel": Refusal(
        change(kind="comment", channel="fax", enabled=False),
        "Unknown channel %(channel)r; allowed: %(allowed)s.",
        lambda pk: {"channel": "fax", "allowed": "in_app, email, push"},
    ),
    "preferences-kind-not-a-key": Refusal(
        change(kind=5, channel="in_app", enabled=False),
        "kind must be a declared kind's key, or null for the whole channel.",
    ),
    "preferences-unknown-kind": Refusal(
        change(kind="nope", channel="in_app", enabled=False),
        "Unknown notification kind %(kind)r; declared: %(declared)s.",
        lambda pk: {"kind": "nope", "declared": declared()},
    ),
    "preferences-critical": Refusal(
        change(kind="security", channel="in_app", enabled=False),
        "%(label)s (%(kind)r) is critical: it cannot be switched off.",
        lambda pk: {"label": register["security"].label, "kind": "security"},
    ),
    "preferences-follows-in-app": Refusal(
        post(
            PREFERENCES,
            {
                "changes": [
                    {"kind": "mention", "channel": "in_app", "enabled": False},
                    {"kind": "mention", "channel": "email", "enabled": True},
                ]
            },
        ),
        "%(label)s (%(kind)r) is off in the app, and %(channel)s only reaches "
        "notifications that are in the app: turn its in_app channel on first.",
        lambda pk: {"label": register["mention"].label, "kind": "mention", "channel": "email"},
    ),
    "preferences-every-and-enabled": Refusal(
        change(kind="mention", channel="email", every="daily", enabled=True), "Give enabled or every, not both."
    ),
    "preferences-every-without-kind": Refusal(
        change(kind=None, channel="email", every="daily"),
        "every is chosen per kind: kind must be a declared kind's key.",
    ),
    "preferences-every-in-app": Refusal(
        change(kind="mention", channel="in_app", every="daily"),
        "every is for the email and push channels, not %(channel)r.",
        lambda pk: {"channel": "in_app"},
    ),
    "preferences-every-critical": Refusal(
        change(kind="security", channel="email", every="daily"),
        "%(label)s (%(kind)r) is critical: it is always sent at once.",
        lambda pk: {"label": register["security"].label, "kind": "security"},
    ),
    "preferences-unknown-every": Refusal(
        change(kind="mention", channel="email", every="fortnightly"),
        "Unknown every %(every)r; allowed: %(allowed)s.",
        lambda pk: {"every": "fortnightly", "allowed": "default, now, hourly, daily, weekly, off"},
    ),
    "preferences-at": Refusal(
        change(kind="mention", channel="email", every="daily", at="25:00"),
        "at must be a local time such as '08:00', not %(at)r.",
        lambda pk: {"at": "25:00"},
    ),
    "preferences-weekday": Refusal(
        change(kind="mention", channel="email", every="weekly", weekday=7),
        "weekday must be 0 (Monday) to 6 (Sunday).",
    ),
    "preferences-time-zone": Refusal(
        change(kind="mention", channel="email", every="daily", time_zone="Mars/Olympus"),
        "Unknown time zone %(zone)r; use an IANA name such as 'Europe/Paris'.",
        lambda pk: {"zone": "Mars/Olympus"},
    ),
    "preferences-by-put": Refusal(
        lambda client, pk: client.put(PREFERENCES),
        WRONG_METHOD,
        lambda pk: {"allowed": "GET or POST", "method": "PUT"},
        status=405,
    ),
    # POST preferences/ (the page's form)
    "form-unknown-every": Refusal(
        form({"cell": "mention:email", "on": ["mention:in_app", "mention:email"], "every": "mention:email:fortnightly"}),
        "Unknown every %(every)r; allowed: %(allowed)s.",
        lambda pk: {"every": "fortnightly", "allowed": "default, now, hourly, daily, weekly, off"},
    ),
    "form-time-zone": Refusal(
        form({"cell": "mention:email", "on": "mention:email", "every": "mention:email:daily", "time_zone": "Mars/Olympus"}),
        "Unknown time zone %(zone)r; use an IANA name such as 'Europe/Paris'.",
        lambda pk: {"zone": "Mars/Olympus"},
    ),
    "form-at": Refusal(
        form({"cell": "mention:email", "on": "mention:email", "every": "mention:email:weekly", "at:mention:email": "noon"}),
        "at must be a local time such as '08:00', not %(at)r.",
        lambda pk: {"at": "noon"},
    ),
    # POST api/push/subscribe/ and unsubscribe/
    "subscribe-not-json": Refusal(post(SUBSCRIBE, raw="{"), NOT_JSON),
    "subscribe-not-an-object": Refusal(
        post(SUBSCRIBE, []), "The body must be a PushSubscription as JSON: {endpoint, keys: {p256dh, auth}}."
    ),
    "subscribe-no-endpoint": Refusal(
        post(SUBSCRIBE, {"keys": {}}), "endpoint must be the push service's URL (at most %(maximum)s characters).",
        lambda pk: {"maximum": 1000},
    ),
    "subscribe-endpoint-too-long": Refusal(
        post(SUBSCRIBE, {"endpoint": FCM + "x" * 1000, "keys": {}}),
        "endpoint must be the push service's URL (at most %(maximum)s characters).",
        lambda pk: {"maximum": 1000},
    ),
    "subscribe-endpoint-not-a-url": Refusal(
        post(SUBSCRIBE, {"endpoint": "https://[fcm.googleapis.com/x", "keys": {}}), "endpoint must be a URL."
    ),
    "subscribe-endpoint-not-https": Refusal(
        post(SUBSCRIBE, {"endpoint": "http://fcm.googleapis.com/x", "keys": {}}),
        "endpoint must be an https URL (http only while DEBUG is on).",
    ),
    "subscribe-no-keys": Refusal(
        post(SUBSCRIBE, {"endpoint": FCM}), "keys must be an object with p256dh and auth."
    ),
    "subscribe-bad-keys": Refusal(
        post(SUBSCRIBE, {"endpoint": FCM, "keys": {"p256dh": "AAAA", "auth": "AAAA"}}),
        "keys.p256dh must be a P-256 public key (an uncompressed point, 65 bytes) "
        "and keys.auth 16 bytes, both base64url.",
    ),
    "subscribe-not-a-push-service": Refusal(
        lambda client, pk: post(SUBSCRIBE, {"endpoint": "https://push.example/x", "keys": usable_keys()})(client, pk),
        "endpoint must be at a browser's push service (%(services)s); "
        "NOTIFICATIONS_PUSH_SERVICES lists the hosts allowed.",
        lambda pk: {"services": ", ".join(conf.PUSH_SERVICES)},
    ),
    "unsubscribe-no-endpoint": Refusal(
        post(UNSUBSCRIBE, {}), "endpoint must be the subscription's endpoint URL."
    ),
    "unsubscribe-not-json": Refusal(post(UNSUBSCRIBE, raw="{"), NOT_JSON),
    "push-read-bad-token": Refusal(
        lambda client, pk: client.post("/notifications/api/push/read/nope/"), "This read link is not valid."
    ),
    # GET stream/
    "stream-by-post": Refusal(
        lambda client, pk: client.post("/notifications/stream/"),
        WRONG_METHOD,
        lambda pk: {"allowed": "GET", "method": "POST"},
        status=405,
    ),
    "stream-anonymous": Refusal(
        get("/notifications/stream/"), "Authentication required: log in to see notifications.", status=403, logged_in=False
    ),
    # django-notifications-hq's endpoints
    "hq-mark-as-read-by-get": Refusal(
        get("/notifications/api/all_list/?mark_as_read=1"),
        "mark_as_read changes state on GET; set NOTIFICATIONS_HQ_GET_MUTATIONS "
        "= True to allow it, or POST to mark_all_as_read.",
    ),
    "hq-mutation-by-get": Refusal(
        get("/notifications/mark-all-as-read/"),
        "Use POST for this endpoint, not %(method)s; set "
        "NOTIFICATIONS_HQ_GET_MUTATIONS = True to accept django-notifications-hq's GET links.",
        lambda pk: {"method": "GET"},
        status=405,
    ),
}


def message(code: str, refusal: Refusal, pk: int) -> tuple[str, str]:
    """The refusal's message as ``code`` says it: the translation of its msgid, and that with its values."""
    with translation.override(code):
        template = gettext(refusal.msgid)
        return template, template % refusal.values(pk)


@pytest.mark.parametrize("code", ["fr", "de"])
@pytest.mark.parametrize("case", list(REFUSALS))
def test_an_error_answers_in_the_requests_language(alice: AbstractBaseUser, case: str, code: str) -> None:
    refusal = REFUSALS[case]
    (row,) = api.notify(alice, "hello")
    client = Client(HTTP_ACCEPT_LANGUAGE=code)
    if refusal.logged_in:
        client.force_login(alice)
    response = refusal.send(client, row.pk)
    template, translated = message(code, refusal, row.pk)
    assert response.status_code == refusal.status, response.content
    assert template != refusal.msgid, f"{refusal.msgid!r} has no {code} translation"
    assert response.json()["error"] == translated
    assert translated != message("en", refusal, row.pk)[1]
