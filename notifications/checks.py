"""
System checks for settings the app depends on. Ids: notifications.E001..., W001...
"""

from __future__ import annotations

import os
import resource
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from .conf import DEFAULTS, conf

IN_MEMORY = "channels.layers.InMemoryChannelLayer"

_POSITIVE = (
    "NOTIFICATIONS_HEARTBEAT",
    "NOTIFICATIONS_MAX_STREAM_LIFE",
    "NOTIFICATIONS_REPLAY_LIMIT",
    "NOTIFICATIONS_POLL_INTERVAL",
    "NOTIFICATIONS_STREAM_QUEUE_SIZE",
    "NOTIFICATIONS_MAX_STREAMS",
    "NOTIFICATIONS_MAX_STREAMS_PER_USER",
    "NOTIFICATIONS_PAGE_SIZE",
    "NOTIFICATIONS_MAX_PAGE_SIZE",
    "NOTIFICATIONS_MAX_DATA_BYTES",
    "NOTIFICATIONS_GROUP_REJOIN",
    "NOTIFICATIONS_RETENTION_DAYS",
    "NOTIFICATIONS_DB_THREADS",
    "NOTIFICATIONS_DB_IDLE_CLOSE",
)


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    for name in _POSITIVE:
        value = getattr(settings, name, DEFAULTS[name])
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            errors.append(
                Error(
                    f"{name} must be a positive number, not {value!r}.",
                    hint=f"Remove it to use the default ({DEFAULTS[name]!r}).",
                    id="notifications.E001",
                )
            )
    layers = getattr(settings, "CHANNEL_LAYERS", {})
    if conf.CHANNEL_LAYER not in layers:
        errors.append(
            Error(
                f"CHANNEL_LAYERS has no {conf.CHANNEL_LAYER!r} layer, which carries "
                "notification pokes between processes.",
                hint='Add CHANNEL_LAYERS = {"default": {"BACKEND": '
                '"channels.layers.InMemoryChannelLayer"}} for one process, or '
                "channels_redis.core.RedisChannelLayer for several.",
                id="notifications.E002",
            )
        )
    if not getattr(settings, "ASGI_APPLICATION", None):
        errors.append(
            Warning(
                "ASGI_APPLICATION is not set: the notification stream is an async "
                "view and needs an ASGI server to stream.",
                hint='Set ASGI_APPLICATION = "yourproject.asgi.application" and serve '
                'with daphne or uvicorn (add "daphne" to INSTALLED_APPS for runserver).',
                id="notifications.W001",
            )
        )
    backend = layers.get(conf.CHANNEL_LAYER, {}).get("BACKEND")
    workers = _int(os.environ.get("WEB_CONCURRENCY"))
    if backend == IN_MEMORY and workers > 1:
        errors.append(
            Warning(
                f"The in-memory channel layer with WEB_CONCURRENCY={workers}: pokes "
                "do not cross processes, so streams only see other processes' "
                f"notifications on their database check (every "
                f"{conf.POLL_INTERVAL:g} s).",
                hint="Use channels_redis.core.RedisChannelLayer with several workers.",
                id="notifications.W002",
            )
        )
    if "django.middleware.gzip.GZipMiddleware" in getattr(settings, "MIDDLEWARE", []):
        errors.append(
            Warning(
                "GZipMiddleware compresses the event stream, which makes browsers and "
                "proxies hold events back.",
                hint="Compress in the proxy instead, excluding text/event-stream.",
                id="notifications.W003",
            )
        )
    if hasattr(settings, "NOTIFICATIONS_GAP_GRACE"):
        errors.append(
            Warning(
                "NOTIFICATIONS_GAP_GRACE is no longer used: what has committed is read "
                "from the database's transaction state, never guessed from time.",
                hint="Remove the setting.",
                id="notifications.W010",
            )
        )
    errors.extend(_check_database_vendor())
    return errors


def _check_database_vendor() -> list[Any]:
    """Exactly-once delivery needs PostgreSQL's snapshots or SQLite's single writer."""
    from django.db import connections, router

    from .models import Notification

    alias = router.db_for_write(Notification)
    vendor = connections[alias].vendor
    if vendor in ("postgresql", "sqlite"):
        return []
    return [
        Error(
            f"The notifications tables are on a {vendor} database ({alias!r}). Streams "
            "decide what has committed from PostgreSQL's transaction snapshots or "
            "SQLite's single writer; on other databases they could miss or repeat "
            "notifications.",
            hint="Route the notifications app to a PostgreSQL (13 or later) or SQLite database.",
            id="notifications.E010",
        )
    ]


@register(Tags.database)
def check_database(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """PostgreSQL 13 or later: xid8 and pg_current_snapshot()."""
    from django.db import connections, router

    from .models import Notification

    alias = router.db_for_write(Notification)
    if databases is None or alias not in databases:
        return []
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return []
    connection.ensure_connection()
    version = connection.pg_version  # type: ignore[attr-defined]
    if version >= 130000:
        return []
    return [
        Error(
            f"PostgreSQL {version // 10000} is too old for the notifications app.",
            hint="Use PostgreSQL 13 or later (xid8 and pg_current_snapshot()).",
            id="notifications.E011",
        )
    ]


@register(Tags.security, deploy=True)
def check_deploy(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    warnings: list[Any] = []
    layers = getattr(settings, "CHANNEL_LAYERS", {})
    backend = layers.get(conf.CHANNEL_LAYER, {}).get("BACKEND")
    if backend == IN_MEMORY:
        warnings.append(
            Warning(
                "The in-memory channel layer only reaches streams in the same process.",
                hint="Deploy with channels_redis.core.RedisChannelLayer (REDIS_URL).",
                id="notifications.W004",
            )
        )
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < conf.MAX_STREAMS + 100:
        warnings.append(
            Warning(
                f"The open-file limit ({soft}) is below NOTIFICATIONS_MAX_STREAMS "
                f"({conf.MAX_STREAMS}) plus room for other sockets: streams past it "
                "fail with 'too many open files' instead of a 503.",
                hint="Raise the limit (ulimit -n, systemd LimitNOFILE=) or lower "
                "NOTIFICATIONS_MAX_STREAMS.",
                id="notifications.W005",
            )
        )
    if getattr(settings, "CONN_MAX_AGE", 0) is None:
        warnings.append(
            Warning(
                "CONN_MAX_AGE=None keeps database connections forever; the stream's "
                "database thread closes its connection when idle, but other threads "
                "of an ASGI server hold theirs.",
                hint="Use CONN_MAX_AGE=0 (or a pool) with an ASGI server.",
                id="notifications.W006",
            )
        )
    return warnings


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0
