"""
The Web Push channel: RFC 8030 messages, RFC 8291 (aes128gcm) encryption and
RFC 8292 (VAPID) authentication, through pywebpush (``pip install
".[push]"``), to every browser the user subscribed.

The payload is JSON the shipped service worker (``static/notifications/sw.js``)
shows: title, body, icon, ``tag`` (the group key, so a newer push replaces an
older one), the URL to open and a signed URL that marks it read on click.

Each device (subscription) of the user is pushed to on its own, all at
once, and its answer is its own: the push is sent when one device took it.
What push services answer is honoured: 201 is sent; 400, 403, 404 and 410
delete the subscription (malformed, made for another VAPID key, or dropped
by the browser), as do keys that are not usable; 413 and other answers are
logged and failed; 429 and 5xx are retried after ``Retry-After`` (or a
growing backoff), at most NOTIFICATIONS_PUSH_ATTEMPTS times, and only to the
subscriptions that did not accept it yet. A device that does not answer
within NOTIFICATIONS_PUSH_TIMEOUT seconds failed (it may have taken it, so it
is not tried again). Endpoints keep to push services: see egress.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext

from . import egress, texts, users
from .conf import conf
from .kinds import Kind, register
from .links import safe_url
from .models import Delivery, Notification, PushSubscription

if TYPE_CHECKING:
    from .worker import Outcome

logger = logging.getLogger(__name__)

CHANNEL = "push"
_SALT = "notifications.push-read"
# Critical kinds wait on the push service as long as services allow (28 days).
_CRITICAL_TTL = 28 * 86400
# PushSubscription.endpoint's max_length.
_LONGEST_ENDPOINT = 1000


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
    them. The endpoint must be at a push service (NOTIFICATIONS_PUSH_SERVICES)
    and the keys usable; past NOTIFICATIONS_PUSH_MAX_DEVICES subscriptions the
    user's oldest is removed. ``ValueError`` says what is wrong with ``info``.
    """
    if not isinstance(info, Mapping):
        raise ValueError(gettext("The body must be a PushSubscription as JSON: {endpoint, keys: {p256dh, auth}}."))
    endpoint, keys = info.get("endpoint"), info.get("keys")
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= _LONGEST_ENDPOINT:
        raise ValueError(
            gettext("endpoint must be the push service's URL (at most %(maximum)s characters).")
            % {"maximum": _LONGEST_ENDPOINT}
        )
    try:
        url = urlsplit(endpoint)
        host = url.hostname
    except ValueError:
        raise ValueError(gettext("endpoint must be a URL.")) from None
    secure = url.scheme == "https" or (settings.DEBUG and url.scheme == "http")
    if not secure or not host:
        raise ValueError(gettext("endpoint must be an https URL (http only while DEBUG is on)."))
    if not isinstance(keys, Mapping):
        raise ValueError(gettext("keys must be an object with p256dh and auth."))
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not (isinstance(p256dh, str) and isinstance(auth, str) and usable_keys(p256dh, auth)):
        raise ValueError(
            gettext(
                "keys.p256dh must be a P-256 public key (an uncompressed point, 65 bytes) "
                "and keys.auth 16 bytes, both base64url."
            )
        )
    if not egress.host_allowed(host):
        raise ValueError(
            gettext(
                "endpoint must be at a browser's push service (%(services)s); "
                "NOTIFICATIONS_PUSH_SERVICES lists the hosts allowed."
            )
            % {"services": ", ".join(conf.PUSH_SERVICES)}
        )
    with transaction.atomic():
        subscription, _ = PushSubscription.objects.update_or_create(
            endpoint=endpoint,
            defaults={"user_id": user.pk, "p256dh": p256dh, "auth": auth, "created": timezone.now()},
        )
        newest_first = PushSubscription.objects.filter(user_id=user.pk).order_by("-created", "-id")
        oldest = list(newest_first.values_list("id", flat=True)[conf.PUSH_MAX_DEVICES :])
        if oldest:
            PushSubscription.objects.filter(id__in=oldest).delete()
    return subscription


def usable_keys(p256dh: Any, auth: Any) -> bool:
    """Whether ``p256dh`` is a point on P-256 and ``auth`` 16 bytes (both base64url text)."""
    if not (isinstance(p256dh, str) and isinstance(auth, str)):
        return False
    try:
        raw, secret = _unb64(p256dh), _unb64(auth)
    except ValueError:  # binascii.Error
        return False
    if len(raw) != 65 or len(secret) != 16:
        return False
    try:
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:  # without the push extra nothing is pushed: the sizes will do
        return True
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:  # not a point on the curve
        return False
    return True


def unsubscribe(user: AbstractBaseUser, endpoint: Any) -> int:
    """Forget ``user``'s subscription with this endpoint; returns how many were removed (0 or 1)."""
    if not isinstance(endpoint, str):
        raise ValueError(gettext("endpoint must be the subscription's endpoint URL."))
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
    return signing.dumps([n.pk, users.to_json(n.recipient_id)], salt=_SALT)


def notification_of(token: str) -> tuple[int, Any]:
    """The (notification id, recipient id) of a read token; ``BadSignature`` if not ours."""
    value = signing.loads(token, salt=_SALT, max_age=timedelta(days=30))
    if not (isinstance(value, list) and len(value) == 2):
        raise signing.BadSignature("Malformed read token.")
    try:
        return int(value[0]), users.from_json(value[1])
    except ValueError:
        raise signing.BadSignature("Malformed read token.") from None


def payload(n: Notification, kind: Kind) -> dict[str, Any]:
    """What the service worker shows for ``n``: title, body, icon, tag, url, read_url."""
    lang = texts.language(n)
    if lang:
        from django.utils import translation

        with translation.override(lang):
            body = texts.render_text(n, CHANNEL)
            title = str(kind.label)
    else:
        body = texts.render_text(n, CHANNEL)
        title = str(kind.label)
    return {
        "id": n.pk,
        "title": title,
        "body": body,
        "icon": conf.PUSH_ICON,
        "tag": n.group_key or f"notification-{n.pk}",
        "url": safe_url(n.url) or "/",
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


def digest_payload(items: list[Notification]) -> dict[str, Any]:
    """A digest's one summary push: "5 new notifications", opening the inbox."""
    from django.utils import translation
    from django.utils.translation import ngettext

    lang = texts.language(items[0])
    with translation.override(lang or translation.get_language()):
        title = ngettext("%(count)d new notification", "%(count)d new notifications", len(items)) % {
            "count": len(items)
        }
        body = texts.render_text(items[0], CHANNEL)
    return {
        "id": None,
        "title": title,
        "body": body,
        "icon": conf.PUSH_ICON,
        "tag": "notifications-digest",
        "url": reverse("notifications:all"),
        "read_url": "",
    }


def deliver_digest(first: Delivery, items: list[Notification]) -> Outcome:
    """Push one summary of a digest's ``items`` to the recipient's devices, as ``deliver``."""
    kind = register[items[0].kind]
    return deliver(first, items[0], kind, digest_payload(items))


def deliver(
    delivery: Delivery, n: Notification, kind: Kind, data: dict[str, Any] | None = None
) -> Outcome:
    """
    Push ``n`` (or the payload ``data`` instead) to every device
    (subscription) of its recipient that did not take it yet, all at once,
    each within NOTIFICATIONS_PUSH_TIMEOUT seconds;
    see the module's doc. Each device's answer is its own and is recorded in
    ``delivery.devices``: the push is sent when one device took it.
    """
    from .worker import Outcome

    if not conf.VAPID_PRIVATE_KEY:
        return Outcome(Delivery.State.SKIPPED, "no VAPID keys (NOTIFICATIONS_VAPID_PRIVATE_KEY)")
    try:
        import pywebpush  # noqa: F401
    except ImportError:
        return Outcome(Delivery.State.SKIPPED, 'pywebpush is not installed (pip install ".[push]")')
    done = list(delivery.done)
    subscriptions = list(
        PushSubscription.objects.filter(user_id=delivery.recipient_id).exclude(id__in=done).order_by("id")
    )
    message = _Message(
        data=json.dumps(data or payload(n, kind), ensure_ascii=False),
        ttl=ttl(kind),
        headers=headers(n, kind),
        attempts=delivery.attempts,
    )
    answers = _send_all(subscriptions, message)
    devices = dict(delivery.devices or {})
    retry: datetime | None = None
    failed = ""
    for subscription in subscriptions:
        answer = answers[subscription.pk]
        devices[str(subscription.pk)] = {
            "host": urlsplit(subscription.endpoint).hostname,
            "result": answer.result,
            "status": answer.status,
            "attempt": delivery.attempts,
            **({"note": answer.note} if answer.note else {}),
        }
        if answer.result == SENT:
            done.append(subscription.pk)
        elif answer.result == REMOVED:
            logger.info("Push subscription %s removed: %s", subscription.pk, answer.note)
            subscription.delete()
        elif answer.result == RETRY:
            retry = max(retry or timezone.now(), answer.retry_at or timezone.now())
        else:
            logger.warning("Push to subscription %s failed: %s", subscription.pk, answer.note)
            failed = failed or answer.note
    Delivery.objects.filter(pk=delivery.pk).update(done=done, devices=devices)
    if retry is not None and delivery.attempts < conf.PUSH_ATTEMPTS:
        return Outcome(retry_at=retry, note="push service asked to retry")
    if done:
        return Outcome(Delivery.State.SENT, f"not every device took it: {failed}" if failed else "")
    if retry is not None:
        return Outcome(Delivery.State.FAILED, "push service kept asking to retry")
    if failed:
        return Outcome(Delivery.State.FAILED, failed)
    return Outcome(Delivery.State.SKIPPED, "no push subscription")


# How one device answered: it took the push; it asked to retry (429, 5xx, or
# could not be reached: nothing was handed over); its subscription is removed
# (400, 403, 404, 410, or unusable keys: it can never take a push); or it
# failed (another answer, no answer in time, an address refused, an error).
SENT, RETRY, REMOVED, FAILED = "sent", "retry", "removed", "failed"
# Answers that end a subscription: malformed for it (400), not for our VAPID
# key (403), gone (404, 410).
_GONE = frozenset({400, 403, 404, 410})


@dataclass(frozen=True)
class _Message:
    data: str
    ttl: int
    headers: dict[str, str]
    attempts: int


@dataclass(frozen=True)
class _Answer:
    result: str
    status: int | None = None
    note: str = ""
    retry_at: datetime | None = None


def _send_all(subscriptions: list[PushSubscription], message: _Message) -> dict[int, _Answer]:
    """
    Each subscription's answer to ``message``, sent to all at once: one
    thread per device, none waited for longer than NOTIFICATIONS_PUSH_TIMEOUT
    (a device still sending then failed: whether it took the push is unknown,
    so it is not tried again). The threads touch no database.
    """
    timeout = conf.PUSH_TIMEOUT
    answers: dict[int, _Answer] = {}
    finished = threading.Condition()

    def send(subscription: PushSubscription) -> None:
        answer = _send_one(subscription, message, timeout)
        with finished:
            answers[subscription.pk] = answer
            finished.notify()

    for subscription in subscriptions:
        threading.Thread(target=send, args=(subscription,), name="notifications-push", daemon=True).start()
    deadline = time.monotonic() + timeout
    with finished:
        while len(answers) < len(subscriptions):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            finished.wait(left)
        late = _Answer(FAILED, note=f"no answer within {timeout:g} s (NOTIFICATIONS_PUSH_TIMEOUT)")
        return {s.pk: answers.get(s.pk, late) for s in subscriptions}


def _send_one(subscription: PushSubscription, message: _Message, timeout: float) -> _Answer:
    """One device's answer to ``message``; never raises."""
    from pywebpush import WebPushException, webpush
    from requests.exceptions import ConnectionError, ConnectTimeout, ReadTimeout

    if not usable_keys(subscription.p256dh, subscription.auth):
        return _Answer(REMOVED, note="its keys are not a usable P-256 key and auth secret")
    session = egress.session()
    try:
        response = webpush(
            subscription.as_info(),
            message.data,
            vapid_private_key=conf.VAPID_PRIVATE_KEY,
            vapid_claims={"sub": conf.VAPID_SUBJECT},
            ttl=message.ttl,
            headers=message.headers,
            timeout=timeout,
            requests_session=session,
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in _GONE:
            return _Answer(REMOVED, status, f"the push service answered {status}")
        if status == 429 or (status is not None and status >= 500):
            return _Answer(RETRY, status, retry_at=_retry_at(exc.response, message.attempts))
        return _Answer(FAILED, status, f"the push service answered {status}")
    except egress.Refused as exc:
        return _Answer(FAILED, note=f"refused: {exc}")
    except ReadTimeout:  # it was sent: whether it was taken is unknown
        return _Answer(FAILED, note=f"no answer within {timeout:g} s (NOTIFICATIONS_PUSH_TIMEOUT)")
    except (ConnectionError, ConnectTimeout, OSError) as exc:  # nothing was handed over
        return _Answer(RETRY, note=f"could not be reached: {exc}"[:200], retry_at=_retry_at(None, message.attempts))
    except Exception as exc:
        logger.exception("Push to subscription %s failed", subscription.pk)
        return _Answer(FAILED, note=f"{type(exc).__name__}: {exc}"[:200])
    finally:
        session.close()
    return _Answer(SENT, getattr(response, "status_code", None))


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
