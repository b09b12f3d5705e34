"""
The Web Push channel: RFC 8030 messages, RFC 8291 (aes128gcm) encryption and
RFC 8292 (VAPID) authentication, through pywebpush (``pip install
".[push]"``), to every browser the user subscribed.

The payload is JSON the shipped service worker (``static/notifications/sw.js``)
shows: title, body, icon, ``tag`` (the group key, so a newer push replaces an
older one), the URL to open and a signed URL that marks it read on click.

What push services answer is honoured: 201 is sent; 404 and 410 delete the
subscription (the browser dropped it); 413 is logged and failed; 429 and 5xx
are retried after ``Retry-After`` (or a growing backoff), at most
NOTIFICATIONS_PUSH_ATTEMPTS times, and only to the subscriptions that did not
accept it yet.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from . import texts
from .conf import conf
from .kinds import Kind
from .models import Delivery, Notification, PushSubscription

if TYPE_CHECKING:
    from .worker import Outcome

logger = logging.getLogger(__name__)

CHANNEL = "push"
_SALT = "notifications.push-read"
# Critical kinds wait on the push service as long as services allow (28 days).
_CRITICAL_TTL = 28 * 86400


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair (P-256) as (public, private), base64url without padding."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64(public), _b64(private)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- subscriptions -------------------------------------------------------------------


def subscribe(user: AbstractBaseUser, info: Any) -> PushSubscription:
    """
    Store a browser's subscription (``PushSubscription.toJSON()``: endpoint
    and keys p256dh, auth) for ``user``; an endpoint seen before moves to
    them. ``ValueError`` says what is wrong with ``info``.
    """
    if not isinstance(info, Mapping):
        raise ValueError("The body must be a PushSubscription as JSON: {endpoint, keys: {p256dh, auth}}.")
    endpoint, keys = info.get("endpoint"), info.get("keys")
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= 1000:
        raise ValueError("endpoint must be the push service's URL (at most 1000 characters).")
    url = urlsplit(endpoint)
    secure = url.scheme == "https" or (settings.DEBUG and url.scheme == "http")
    if not secure or not url.hostname:
        raise ValueError("endpoint must be an https URL (http only while DEBUG is on).")
    if not isinstance(keys, Mapping):
        raise ValueError("keys must be an object with p256dh and auth.")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not (isinstance(p256dh, str) and isinstance(auth, str) and _sizes(p256dh, auth) == (65, 16)):
        raise ValueError("keys.p256dh must be a P-256 public key and keys.auth 16 bytes, base64url.")
    subscription, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint, defaults={"user_id": user.pk, "p256dh": p256dh, "auth": auth}
    )
    return subscription


def _sizes(p256dh: str, auth: str) -> tuple[int, int] | None:
    try:
        return len(_unb64(p256dh)), len(_unb64(auth))
    except ValueError:  # binascii.Error
        return None


def unsubscribe(user: AbstractBaseUser, endpoint: Any) -> int:
    """Forget ``user``'s subscription with this endpoint; returns how many were removed (0 or 1)."""
    if not isinstance(endpoint, str):
        raise ValueError("endpoint must be the subscription's endpoint URL.")
    deleted, _ = PushSubscription.objects.filter(user_id=user.pk, endpoint=endpoint).delete()
    return deleted


def subscribed(user_ids: list[int]) -> set[int]:
    """Which of these users have at least one push subscription (one query)."""
    return set(
        PushSubscription.objects.filter(user_id__in=user_ids).values_list("user_id", flat=True)
    )


# -- the message -----------------------------------------------------------------------


def read_token(n: Notification) -> str:
    """A signed token that lets the service worker mark ``n`` read for its recipient."""
    return signing.dumps([n.pk, n.recipient_id], salt=_SALT)


def notification_of(token: str) -> tuple[int, int]:
    """The (notification id, recipient id) of a read token; ``BadSignature`` if not ours."""
    value = signing.loads(token, salt=_SALT, max_age=timedelta(days=30))
    if not (isinstance(value, list) and len(value) == 2):
        raise signing.BadSignature("Malformed read token.")
    return int(value[0]), int(value[1])


def payload(n: Notification, kind: Kind) -> dict[str, Any]:
    """What the service worker shows for ``n``: title, body, icon, tag, url, read_url."""
    lang = texts.language(n)
    if lang:
        from django.utils import translation

        with translation.override(lang):
            body = texts.render_text(n, CHANNEL)
    else:
        body = texts.render_text(n, CHANNEL)
    return {
        "id": n.pk,
        "title": str(kind.label),
        "body": body,
        "icon": conf.PUSH_ICON,
        "tag": n.group_key or f"notification-{n.pk}",
        "url": n.url or "/",
        "read_url": reverse("notifications:push-read", args=[read_token(n)]),
    }


def topic(n: Notification) -> str | None:
    """The ``Topic`` header (RFC 8030 5.4: at most 32 base64url characters) from the group key."""
    if not n.group_key:
        return None
    return _b64(hashlib.sha256(n.group_key.encode()).digest())[:32]


def headers(n: Notification, kind: Kind) -> dict[str, str]:
    """``Urgency`` (critical: high) and ``Topic`` for a push of ``n``."""
    found = {"Urgency": "high" if kind.critical else "normal"}
    name = topic(n)
    if name:
        found["Topic"] = name
    return found


def ttl(kind: Kind) -> int:
    return _CRITICAL_TTL if kind.critical else conf.PUSH_TTL


# -- sending -----------------------------------------------------------------------------


def deliver(delivery: Delivery, n: Notification, kind: Kind) -> Outcome:
    """Push ``n`` to every subscription of its recipient not done yet; see the module's doc."""
    from .worker import Outcome

    if not conf.VAPID_PRIVATE_KEY:
        return Outcome(Delivery.State.SKIPPED, "no VAPID keys (NOTIFICATIONS_VAPID_PRIVATE_KEY)")
    try:
        from pywebpush import WebPushException, webpush
    except ImportError:
        return Outcome(Delivery.State.SKIPPED, 'pywebpush is not installed (pip install ".[push]")')
    data = json.dumps(payload(n, kind), ensure_ascii=False)
    done = list(delivery.done)
    retry: datetime | None = None
    failed = ""
    subscriptions = PushSubscription.objects.filter(user_id=delivery.recipient_id).exclude(id__in=done)
    for subscription in subscriptions:
        try:
            webpush(
                subscription.as_info(),
                data,
                vapid_private_key=conf.VAPID_PRIVATE_KEY,
                vapid_claims={"sub": conf.VAPID_SUBJECT},
                ttl=ttl(kind),
                headers=headers(n, kind),
                timeout=10,
            )
        except WebPushException as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (404, 410):
                logger.info("Push subscription %s is gone (%s): deleted", subscription.pk, status)
                subscription.delete()
            elif status == 429 or (status is not None and status >= 500):
                retry = max(retry or timezone.now(), _retry_at(exc.response, delivery.attempts))
            else:
                logger.warning("Push to subscription %s refused (%s): %s", subscription.pk, status, exc)
                failed = f"push service answered {status}"
            continue
        except OSError as exc:  # the service could not be reached: it has nothing
            logger.warning("Push to subscription %s could not be sent: %s", subscription.pk, exc)
            retry = max(retry or timezone.now(), _retry_at(None, delivery.attempts))
            continue
        done.append(subscription.pk)
    Delivery.objects.filter(pk=delivery.pk).update(done=done)
    if retry is not None and delivery.attempts < conf.PUSH_ATTEMPTS:
        return Outcome(retry_at=retry, note="push service asked to retry")
    if retry is not None:
        return Outcome(Delivery.State.FAILED, "push service kept asking to retry")
    if failed:
        return Outcome(Delivery.State.FAILED, failed)
    if not done:
        return Outcome(Delivery.State.SKIPPED, "no push subscription")
    return Outcome()


def _retry_at(response: Any, attempts: int) -> datetime:
    """When to try again: the response's ``Retry-After`` (seconds or a date), else 10 s × 2^attempts."""
    now = timezone.now()
    value = response.headers.get("Retry-After") if response is not None else None
    if value:
        value = value.strip()
        if value.isdigit():
            return now + timedelta(seconds=int(value))
        try:
            return max(now, parsedate_to_datetime(value))
        except (TypeError, ValueError):
            pass
    return now + timedelta(seconds=min(3600, 10 * 2 ** max(0, attempts - 1)))
