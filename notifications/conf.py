"""
Settings of the notifications app, with their defaults.

Every setting is read lazily from ``django.conf.settings`` through a property of
``conf``, so tests can override them and nothing is read at import time.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

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
    def RETENTION_DAYS(self) -> float:
        return float(self._get("NOTIFICATIONS_RETENTION_DAYS"))

    @property
    def USER_LANGUAGE(self) -> str | None:
        value = self._get("NOTIFICATIONS_USER_LANGUAGE")
        return str(value) if value else None

    @property
    def HQ_GET_MUTATIONS(self) -> bool:
        return bool(self._get("NOTIFICATIONS_HQ_GET_MUTATIONS"))


conf = Settings()
