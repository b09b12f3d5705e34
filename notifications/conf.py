"""
Settings of the notifications app, with their defaults.

Every setting is read lazily from ``django.conf.settings`` through a property of
``conf``, so tests can override them and nothing is read at import time.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

# The hosts of the browsers' push services (with their subdomains): Chrome,
# Edge on Android, Opera, Samsung Internet (Firebase Cloud Messaging); Firefox
# (Mozilla autopush); Safari (Apple); Edge on Windows (Windows Push
# Notification Services). NOTIFICATIONS_PUSH_SERVICES defaults to these.
BROWSER_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "push.services.mozilla.com",
    "push.apple.com",
    "notify.windows.com",
)

DEFAULTS: dict[str, Any] = {
    # Name of the channel layer (in CHANNEL_LAYERS) that carries pokes.
    "NOTIFICATIONS_CHANNEL_LAYER": "default",
    # Seconds between heartbeat comments on an idle stream.
    "NOTIFICATIONS_HEARTBEAT": 15.0,
    # Seconds a stream lives before it ends itself (the client reconnects seamlessly).
    "NOTIFICATIONS_MAX_STREAM_LIFE": 1800.0,
    # Milliseconds the browser waits before reconnecting (the SSE ``retry:`` field).
    "NOTIFICATIONS_RETRY_MS": 3000,
    # Most notifications replayed on reconnect; further behind gets a ``reset`` event.
    "NOTIFICATIONS_REPLAY_LIMIT": 500,
    # Seconds between the hub's cheap check of the database for rows pokes missed.
    "NOTIFICATIONS_POLL_INTERVAL": 2.0,
    # Most notifications waiting for one stream before it is cut off (it resumes from its cursor).
    "NOTIFICATIONS_STREAM_QUEUE_SIZE": 2000,
    # Database connections (worker threads) a process uses for all its streams,
    # and the seconds of idleness after which each is closed.
    "NOTIFICATIONS_DB_THREADS": 4,
    "NOTIFICATIONS_DB_IDLE_CLOSE": 1.0,
    # Whether the stream's requests pass the project's middleware (see notifications.asgi).
    "NOTIFICATIONS_STREAM_MIDDLEWARE": True,
    # Middleware of the project (dotted paths, as in MIDDLEWARE) that never
    # blocks for the stream's GET (no database, cache or network), so the
    # stream's openings may run the middleware on the event loop (see
    # notifications.asgi.StreamHandler); Django's own are known.
    "NOTIFICATIONS_NONBLOCKING_MIDDLEWARE": (),
    # Most open streams per server process, and per user in a process.
    "NOTIFICATIONS_MAX_STREAMS": 10_000,
    "NOTIFICATIONS_MAX_STREAMS_PER_USER": 20,
    # Seconds a client is told to wait (Retry-After) when the server is full.
    "NOTIFICATIONS_RETRY_AFTER": 10,
    # Seconds between the hub's re-joins of its channel-layer groups (below the layer's group expiry).
    "NOTIFICATIONS_GROUP_REJOIN": 3600.0,
    # Above this many recipients a notify() pokes every process once instead of each user.
    "NOTIFICATIONS_POKE_FANOUT_LIMIT": 100,
    # Most channel-layer messages a process queues while the layer is slow or
    # down; pokes past it are dropped (the hubs' database check delivers).
    "NOTIFICATIONS_PUBLISH_QUEUE_SIZE": 1000,
    # JSON API page size, and the largest page a client may ask for.
    "NOTIFICATIONS_PAGE_SIZE": 20,
    "NOTIFICATIONS_MAX_PAGE_SIZE": 100,
    # Largest ``data`` payload of a notification, in bytes of JSON.
    "NOTIFICATIONS_MAX_DATA_BYTES": 8192,
    # Badge shows "99+" above this count.
    "NOTIFICATIONS_BADGE_MAX": 99,
    # Days a notification is kept; ``manage.py prune_notifications`` deletes older ones.
    "NOTIFICATIONS_RETENTION_DAYS": 90,
    # Lookup from the user model to the user's language code ("language",
    # "profile__language"), to render kinds' texts in it; None: the active language.
    "NOTIFICATIONS_USER_LANGUAGE": None,
    # Away delivery (email, Web Push): seconds between the worker's looks for
    # due deliveries, and how many it claims at a time.
    "NOTIFICATIONS_DELIVERY_POLL": 1.0,
    "NOTIFICATIONS_DELIVERY_BATCH": 100,
    # Seconds after which a claimed delivery that never finished (its worker
    # died) is marked failed; it is never sent again.
    "NOTIFICATIONS_DELIVERY_LEASE": 300.0,
    # Run the delivery worker as a thread inside each server process. None:
    # only on SQLite (the embedded default); run ``manage.py
    # notifications_worker`` otherwise.
    "NOTIFICATIONS_DELIVERY_THREAD": None,
    # Scheme and host that links in emails start with ("https://example.com").
    "NOTIFICATIONS_BASE_URL": "http://127.0.0.1:8000",
    # The From address of emails; None: DEFAULT_FROM_EMAIL.
    "NOTIFICATIONS_EMAIL_FROM": None,
    # Web Push (VAPID, RFC 8292): the key pair (base64url, as ``manage.py
    # notifications_vapid_keys`` prints it) and a contact ("mailto:..." or an
    # https URL) push services may use. Without keys nothing is pushed.
    "NOTIFICATIONS_VAPID_PUBLIC_KEY": "",
    "NOTIFICATIONS_VAPID_PRIVATE_KEY": "",
    "NOTIFICATIONS_VAPID_SUBJECT": "mailto:admin@example.com",
    # The icon URL pushes show ("" for the browser's default).
    "NOTIFICATIONS_PUSH_ICON": "",
    # Seconds a push service keeps a push for an offline device (critical kinds: 28 days).
    "NOTIFICATIONS_PUSH_TTL": 86400,
    # Attempts of a push the service asks to retry (429, 5xx) before it is failed.
    "NOTIFICATIONS_PUSH_ATTEMPTS": 5,
    # Hosts push endpoints may point at, each with its subdomains; an IP
    # address entry allows that address even when private (a local service).
    "NOTIFICATIONS_PUSH_SERVICES": BROWSER_PUSH_SERVICES,
    # Seconds a push service has to answer one push (connect and answer).
    "NOTIFICATIONS_PUSH_TIMEOUT": 5.0,
    # Push subscriptions (devices) kept per user; a new one replaces the oldest.
    "NOTIFICATIONS_PUSH_MAX_DEVICES": 10,
    # Seconds a ``notify(..., key=...)`` key holds: a second call with the same
    # key for the same recipient within it writes and sends nothing.
    "NOTIFICATIONS_IDEMPOTENCY_WINDOW": 86400.0,
    # The database is reached through PgBouncer in transaction pooling mode: the
    # system checks warn about settings that need a session of their own.
    "NOTIFICATIONS_TRANSACTION_POOLING": False,
    # Most emails / pushes per user and hour (None: no cap); what goes past
    # folds into the user's next digest. Critical kinds are never capped.
    "NOTIFICATIONS_EMAIL_HOURLY_CAP": None,
    "NOTIFICATIONS_PUSH_HOURLY_CAP": None,
    # Let django-notifications-hq's mark/delete URLs change state on GET, as hq did.
    "NOTIFICATIONS_HQ_GET_MUTATIONS": False,
}


class Settings:
    """Typed, lazy access to the app's settings with their defaults."""

    def _get(self, name: str) -> Any:
        return getattr(settings, name, DEFAULTS[name])

    @property
    def CHANNEL_LAYER(self) -> str:
        return str(self._get("NOTIFICATIONS_CHANNEL_LAYER"))

    @property
    def HEARTBEAT(self) -> float:
        return float(self._get("NOTIFICATIONS_HEARTBEAT"))

    @property
    def MAX_STREAM_LIFE(self) -> float:
        return float(self._get("NOTIFICATIONS_MAX_STREAM_LIFE"))

    @property
    def RETRY_MS(self) -> int:
        return int(self._get("NOTIFICATIONS_RETRY_MS"))

    @property
    def REPLAY_LIMIT(self) -> int:
        return int(self._get("NOTIFICATIONS_REPLAY_LIMIT"))

    @property
    def POLL_INTERVAL(self) -> float:
        return float(self._get("NOTIFICATIONS_POLL_INTERVAL"))

    @property
    def STREAM_QUEUE_SIZE(self) -> int:
        return int(self._get("NOTIFICATIONS_STREAM_QUEUE_SIZE"))

    @property
    def DB_THREADS(self) -> int:
        return int(self._get("NOTIFICATIONS_DB_THREADS"))

    @property
    def DB_IDLE_CLOSE(self) -> float:
        return float(self._get("NOTIFICATIONS_DB_IDLE_CLOSE"))

    @property
    def MAX_STREAMS(self) -> int:
        return int(self._get("NOTIFICATIONS_MAX_STREAMS"))

    @property
    def MAX_STREAMS_PER_USER(self) -> int:
        return int(self._get("NOTIFICATIONS_MAX_STREAMS_PER_USER"))

    @property
    def RETRY_AFTER(self) -> int:
        return int(self._get("NOTIFICATIONS_RETRY_AFTER"))

    @property
    def GROUP_REJOIN(self) -> float:
        return float(self._get("NOTIFICATIONS_GROUP_REJOIN"))

    @property
    def POKE_FANOUT_LIMIT(self) -> int:
        return int(self._get("NOTIFICATIONS_POKE_FANOUT_LIMIT"))

    @property
    def PUBLISH_QUEUE_SIZE(self) -> int:
        return int(self._get("NOTIFICATIONS_PUBLISH_QUEUE_SIZE"))

    @property
    def PAGE_SIZE(self) -> int:
        return int(self._get("NOTIFICATIONS_PAGE_SIZE"))

    @property
    def MAX_PAGE_SIZE(self) -> int:
        return int(self._get("NOTIFICATIONS_MAX_PAGE_SIZE"))

    @property
    def MAX_DATA_BYTES(self) -> int:
        return int(self._get("NOTIFICATIONS_MAX_DATA_BYTES"))

    @property
    def BADGE_MAX(self) -> int:
        return int(self._get("NOTIFICATIONS_BADGE_MAX"))

    @property
    def STREAM_MIDDLEWARE(self) -> bool:
        return bool(self._get("NOTIFICATIONS_STREAM_MIDDLEWARE"))

    @property
    def NONBLOCKING_MIDDLEWARE(self) -> tuple[str, ...]:
        return tuple(self._get("NOTIFICATIONS_NONBLOCKING_MIDDLEWARE"))

    @property
    def RETENTION_DAYS(self) -> float:
        return float(self._get("NOTIFICATIONS_RETENTION_DAYS"))

    @property
    def USER_LANGUAGE(self) -> str | None:
        value = self._get("NOTIFICATIONS_USER_LANGUAGE")
        return str(value) if value else None

    @property
    def DELIVERY_POLL(self) -> float:
        return float(self._get("NOTIFICATIONS_DELIVERY_POLL"))

    @property
    def DELIVERY_BATCH(self) -> int:
        return int(self._get("NOTIFICATIONS_DELIVERY_BATCH"))

    @property
    def DELIVERY_LEASE(self) -> float:
        return float(self._get("NOTIFICATIONS_DELIVERY_LEASE"))

    @property
    def DELIVERY_THREAD(self) -> bool:
        value = self._get("NOTIFICATIONS_DELIVERY_THREAD")
        if value is None:
            from django.db import connection

            return connection.vendor == "sqlite"
        return bool(value)

    @property
    def BASE_URL(self) -> str:
        return str(self._get("NOTIFICATIONS_BASE_URL")).rstrip("/")

    @property
    def EMAIL_FROM(self) -> str | None:
        value = self._get("NOTIFICATIONS_EMAIL_FROM")
        return str(value) if value else None

    @property
    def VAPID_PUBLIC_KEY(self) -> str:
        return str(self._get("NOTIFICATIONS_VAPID_PUBLIC_KEY") or "")

    @property
    def VAPID_PRIVATE_KEY(self) -> str:
        return str(self._get("NOTIFICATIONS_VAPID_PRIVATE_KEY") or "")

    @property
    def VAPID_SUBJECT(self) -> str:
        return str(self._get("NOTIFICATIONS_VAPID_SUBJECT"))

    @property
    def PUSH_ICON(self) -> str:
        return str(self._get("NOTIFICATIONS_PUSH_ICON") or "")

    @property
    def PUSH_TTL(self) -> int:
        return int(self._get("NOTIFICATIONS_PUSH_TTL"))

    @property
    def PUSH_ATTEMPTS(self) -> int:
        return int(self._get("NOTIFICATIONS_PUSH_ATTEMPTS"))

    @property
    def PUSH_SERVICES(self) -> tuple[str, ...]:
        value = self._get("NOTIFICATIONS_PUSH_SERVICES")
        if isinstance(value, str):
            value = [value]
        return tuple(str(host).strip().strip(".").lower() for host in value if str(host).strip(" ."))

    @property
    def PUSH_TIMEOUT(self) -> float:
        return float(self._get("NOTIFICATIONS_PUSH_TIMEOUT"))

    @property
    def PUSH_MAX_DEVICES(self) -> int:
        return int(self._get("NOTIFICATIONS_PUSH_MAX_DEVICES"))

    @property
    def HQ_GET_MUTATIONS(self) -> bool:
        return bool(self._get("NOTIFICATIONS_HQ_GET_MUTATIONS"))

    @property
    def IDEMPOTENCY_WINDOW(self) -> float:
        return float(self._get("NOTIFICATIONS_IDEMPOTENCY_WINDOW"))

    @property
    def TRANSACTION_POOLING(self) -> bool:
        return bool(self._get("NOTIFICATIONS_TRANSACTION_POOLING"))

    def hourly_cap(self, channel: str) -> int | None:
        """NOTIFICATIONS_EMAIL_HOURLY_CAP or NOTIFICATIONS_PUSH_HOURLY_CAP."""
        value = self._get(f"NOTIFICATIONS_{channel.upper()}_HOURLY_CAP")
        return None if value is None else int(value)


conf = Settings()
