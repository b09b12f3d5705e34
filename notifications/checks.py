"""
System checks for settings the app depends on. Ids: notifications.E001..., W001...
"""

from __future__ import annotations

import ipaddress
import os
import re
import resource
import shlex
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

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
    "NOTIFICATIONS_DELIVERY_POLL",
    "NOTIFICATIONS_DELIVERY_BATCH",
    "NOTIFICATIONS_DELIVERY_LEASE",
    "NOTIFICATIONS_PUBLISH_QUEUE_SIZE",
    "NOTIFICATIONS_PUSH_TIMEOUT",
    "NOTIFICATIONS_PUSH_MAX_DEVICES",
    "NOTIFICATIONS_IDEMPOTENCY_WINDOW",
)
# Positive numbers, or None for none.
_POSITIVE_OR_NONE = ("NOTIFICATIONS_EMAIL_HOURLY_CAP", "NOTIFICATIONS_PUSH_HOURLY_CAP")


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    for name in (*_POSITIVE, *_POSITIVE_OR_NONE):
        value = getattr(settings, name, DEFAULTS[name])
        if value is None and name in _POSITIVE_OR_NONE:
            continue
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
    several = several_processes() if backend == IN_MEMORY else None
    if several:
        errors.append(
            Warning(
                f"The in-memory channel layer with several server processes ({several}): "
                "pokes do not cross processes, so streams only see other processes' "
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


@register(Tags.security)
def check_stream_middleware(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """
    W007: NOTIFICATIONS_STREAM_MIDDLEWARE = False, naming each middleware
    skipped; E003 and W008: NOTIFICATIONS_NONBLOCKING_MIDDLEWARE is not a list
    of dotted paths, or names what is not in MIDDLEWARE.
    """
    found = _check_nonblocking_middleware()
    if conf.STREAM_MIDDLEWARE:
        return found
    return found + _check_skipped_middleware()


def _check_nonblocking_middleware() -> list[Any]:
    vouched = getattr(settings, "NOTIFICATIONS_NONBLOCKING_MIDDLEWARE", ())
    if not isinstance(vouched, (list, tuple)) or not all(isinstance(p, str) for p in vouched):
        return [
            Error(
                f"NOTIFICATIONS_NONBLOCKING_MIDDLEWARE must be a list of dotted paths, "
                f"not {vouched!r}.",
                hint='List middleware as in MIDDLEWARE: ["myproject.middleware.Tenant"].',
                id="notifications.E003",
            )
        ]
    missing = [path for path in vouched if path not in getattr(settings, "MIDDLEWARE", [])]
    if not missing:
        return []
    return [
        Warning(
            "NOTIFICATIONS_NONBLOCKING_MIDDLEWARE names middleware that is not in "
            "MIDDLEWARE: " + ", ".join(missing) + ".",
            hint="Use the paths exactly as MIDDLEWARE spells them, or remove these.",
            id="notifications.W008",
        )
    ]


def _check_skipped_middleware() -> list[Any]:
    skipped = list(getattr(settings, "MIDDLEWARE", []))
    if not skipped:
        return []
    return [
        Warning(
            "NOTIFICATIONS_STREAM_MIDDLEWARE = False: the notification stream's requests "
            "skip this middleware: " + ", ".join(skipped) + ". The stream still checks "
            "ALLOWED_HOSTS and reads the user from the session cookie, but nothing "
            "these do (other authentication, IP allow-lists, tenants, security "
            "headers) applies to it.",
            hint="Remove the setting (the stream then passes the middleware and holds "
            "no thread while it streams), unless none of these must see the stream.",
            id="notifications.W007",
        )
    ]


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


@register(Tags.security, deploy=True)
def check_base_url(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """W040: NOTIFICATIONS_BASE_URL (emails' links, List-Unsubscribe) is loopback or plain http."""
    url = conf.BASE_URL
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = urlsplit(""), ""
    problems = []
    if parts.scheme != "https":
        problems.append("is not https" if parts.scheme == "http" else "is not an https:// URL")
    if not host:
        problems.append("names no host")
    elif _is_this_machine(host):
        problems.append("points at this machine")
    if not problems:
        return []
    return [
        Warning(
            f"NOTIFICATIONS_BASE_URL ({url!r}) {' and '.join(problems)}: the links in "
            "notification emails and their List-Unsubscribe header use it, so "
            "recipients get links that do not reach the site or travel unencrypted.",
            hint='Set NOTIFICATIONS_BASE_URL to the address users reach the site at, '
            'e.g. "https://www.example.com".',
            id="notifications.W040",
        )
    ]


def _is_this_machine(host: str) -> bool:
    """localhost, *.localhost, a loopback address or 0.0.0.0 / ::."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


# -- how many server processes? (W002) ------------------------------------------

# Servers whose command line says how many worker processes they start.
SERVERS = ("gunicorn", "uvicorn", "hypercorn", "granian")
# Environment variables that set the number of workers: the common convention
# (gunicorn, uvicorn, Heroku and most platforms) and the servers' own.
WORKER_VARIABLES = ("WEB_CONCURRENCY", "UVICORN_WORKERS", "GRANIAN_WORKERS")


def several_processes(
    argv: list[str] | None = None,
    environ: Mapping[str, str] | None = None,
    parent_argv: list[str] | None = None,
    cwd: str | None = None,
) -> str | None:
    """
    Where this deployment says it runs several server processes, if it does:
    a worker count in the environment (``WEB_CONCURRENCY``, ``UVICORN_WORKERS``,
    ``GRANIAN_WORKERS``, ``-w``/``--workers`` in ``GUNICORN_CMD_ARGS``), in the
    command line of this process or of its parent when that is a gunicorn,
    uvicorn, hypercorn or granian command (``--workers 4``, ``-w 4``,
    ``--workers=4``, ``-w4``), in the ``workers =`` of the gunicorn
    configuration file it reads, or a supervisord program with several
    processes (``numprocs``). Defaults read this process.
    """
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    parent_argv = _parent_argv() if parent_argv is None else parent_argv
    for name in WORKER_VARIABLES:
        if _int(environ.get(name)) > 1:
            return f"{name}={environ[name]}"
    if _workers_in(_split(environ.get("GUNICORN_CMD_ARGS", ""))) > 1:
        return "GUNICORN_CMD_ARGS"
    for args, whose in ((argv, "this process"), (parent_argv, "its parent process")):
        server = _server_of(args)
        if server is None:
            continue
        workers = _workers_in(args)
        if workers > 1:
            return f"{server} --workers {workers} in the command line of {whose}"
        if server == "gunicorn":
            workers = _gunicorn_config_workers(args, cwd or os.getcwd())
            if workers > 1:
                return f"workers = {workers} in the gunicorn configuration"
    group, process = environ.get("SUPERVISOR_GROUP_NAME"), environ.get("SUPERVISOR_PROCESS_NAME")
    if group and process and group != process:
        return f"supervisord program {group!r} runs several processes"
    return None


def _server_of(args: list[str]) -> str | None:
    """The server this command line runs (``gunicorn ...``, ``python -m uvicorn ...``), if any."""
    for arg in args[:3]:
        for server in SERVERS:
            if server in os.path.basename(arg) or arg == server:
                return server
    return None


def _workers_in(args: list[str]) -> int:
    workers = 0
    for i, arg in enumerate(args):
        if arg in ("-w", "--workers") and i + 1 < len(args):
            workers = _int(args[i + 1])
        elif arg.startswith("--workers="):
            workers = _int(arg.partition("=")[2])
        elif arg.startswith("-w") and arg[2:].isdigit():
            workers = int(arg[2:])
    return workers


def _gunicorn_config_workers(args: list[str], cwd: str) -> int:
    """``workers = N`` in the file of ``-c``/``--config``, else ./gunicorn.conf.py."""
    path = "gunicorn.conf.py"
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            path = args[i + 1]
        elif arg.startswith("--config="):
            path = arg.partition("=")[2]
    path = path.removeprefix("python:")
    try:
        with open(os.path.join(cwd, path), encoding="utf-8") as config:
            found = re.search(r"^workers\s*=\s*(\d+)\s*(?:#.*)?$", config.read(), re.MULTILINE)
    except (OSError, ValueError):
        return 0
    return int(found.group(1)) if found else 0


def _parent_argv() -> list[str]:
    """The parent process's command line (Linux), or nothing."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
            return [arg.decode(errors="replace") for arg in cmdline.read().split(b"\0") if arg]
    except OSError:
        return []


def _split(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:
        return command.split()


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


@register(Tags.database)
def check_kinds(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[Any]:
    """Kinds stored on notifications that no code declares any more (``check --database``)."""
    from django.db import DatabaseError

    from .kinds import register as kinds
    from .models import Notification

    errors: list[Any] = []
    for alias in databases or []:
        try:
            used = set(
                Notification.objects.using(alias)
                .exclude(kind="")
                .values_list("kind", flat=True)
                .distinct()
            )
        except DatabaseError:
            continue  # not migrated yet: nothing stored to check
        missing = sorted(key for key in used if key not in kinds)
        if missing:
            errors.append(
                Warning(
                    f"Notifications in database {alias!r} have kinds no code declares: "
                    f"{', '.join(missing)}. They render from their stored verb and "
                    "cannot be muted.",
                    hint="Declare them again (an app's notifications.py), or delete or "
                    "re-kind those notifications.",
                    id="notifications.W020",
                )
            )
    return errors


@register(Tags.database)
def check_group_broadcasts(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[Any]:
    """Group broadcasts stored for a user model without groups (``check --database``)."""
    from django.contrib.auth import get_user_model
    from django.db import DatabaseError

    from .models import Audience, Notification
    from .users import groups_field

    if groups_field() is not None:
        return []
    errors: list[Any] = []
    for alias in databases or []:
        try:
            stored = (
                Notification.objects.using(alias)
                .filter(recipient__isnull=True, audience=Audience.GROUP, deleted=False)
                .exists()
            )
        except DatabaseError:
            continue  # not migrated yet: nothing stored to check
        if stored:
            errors.append(
                Warning(
                    f"Database {alias!r} holds broadcasts to a group, but the user model "
                    f"({get_user_model()._meta.label}) has no groups: they reach nobody.",
                    hint="Delete them, or broadcast to everyone or to staff instead.",
                    id="notifications.W021",
                )
            )
    return errors


DEFAULT_MODEL = "notifications.Notification"


@register(Tags.compatibility)
def check_hq_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """django-notifications-hq settings that change or cannot keep their meaning here."""
    messages: list[Any] = []
    # swapper sets the setting to the default model as soon as code asks for it.
    swapped = getattr(settings, "NOTIFICATIONS_NOTIFICATION_MODEL", DEFAULT_MODEL)
    if str(swapped).lower() != DEFAULT_MODEL.lower():
        messages.append(
            Error(
                f"NOTIFICATIONS_NOTIFICATION_MODEL names {swapped!r}: swapped notification "
                "models (django-notifications-hq's swapper) are not supported.",
                hint="Remove the setting; keep extra per-notification values in "
                "Notification.data or in a model of your own pointing to Notification.",
                id="notifications.E101",
            )
        )
    if conf.HQ_GET_MUTATIONS:
        messages.append(
            Warning(
                "NOTIFICATIONS_HQ_GET_MUTATIONS is on: django-notifications-hq's "
                "mark_as_read, mark_as_unread, mark_all_as_read and delete URLs change "
                "state on GET, without a CSRF check (a link on another site can mark "
                "or delete a user's notifications).",
                hint="Change the templates to POST forms (with {% csrf_token %}) and "
                "remove the setting.",
                id="notifications.W101",
            )
        )
    return messages


@register(Tags.compatibility)
def check_push_settings(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """Web Push needs both VAPID keys, and pywebpush to send with them."""
    public, private = bool(conf.VAPID_PUBLIC_KEY), bool(conf.VAPID_PRIVATE_KEY)
    if not (public or private):
        return []
    if public != private:
        return [
            Warning(
                "Only one of NOTIFICATIONS_VAPID_PUBLIC_KEY and NOTIFICATIONS_VAPID_PRIVATE_KEY "
                "is set: browsers cannot subscribe, or pushes cannot be signed.",
                hint="Set both, from one pair printed by manage.py notifications_vapid_keys.",
                id="notifications.W030",
            )
        ]
    try:
        import pywebpush  # noqa: F401
    except ImportError:
        return [
            Warning(
                "VAPID keys are set but pywebpush is not installed: nothing will be pushed.",
                hint='Install the push extra: pip install "django-live-notifications[push]".',
                id="notifications.W031",
            )
        ]
    return []


@register(Tags.database)
def check_transaction_pooling(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """
    Behind PgBouncer in transaction pooling (NOTIFICATIONS_TRANSACTION_POOLING),
    each transaction may run on another server connection: what a session keeps
    (server-side cursors held across transactions, prepared statements) is lost.
    """
    from django.db import connections, router

    from .conf import conf
    from .models import Notification

    if not conf.TRANSACTION_POOLING:
        return []
    alias = router.db_for_write(Notification)
    settings_dict = connections[alias].settings_dict
    warnings = []
    if not settings_dict.get("DISABLE_SERVER_SIDE_CURSORS"):
        warnings.append(
            Warning(
                f"DATABASES[{alias!r}] uses server-side cursors behind transaction pooling: "
                "QuerySet.iterator() declares a cursor WITH HOLD in one server session and "
                "reads it from another.",
                hint=f"Set DATABASES[{alias!r}]['DISABLE_SERVER_SIDE_CURSORS'] = True.",
                id="notifications.W050",
            )
        )
    if settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None:
        warnings.append(
            Warning(
                f"DATABASES[{alias!r}]['OPTIONS'] turns on prepared statements (prepare_threshold) "
                "behind transaction pooling: a statement prepared in one server session is "
                "missing in the next.",
                hint="Remove prepare_threshold (Django's default is None), or use PgBouncer 1.21 "
                "or later with max_prepared_statements set.",
                id="notifications.W051",
            )
        )
    return warnings
