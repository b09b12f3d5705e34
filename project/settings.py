"""
Settings of the demo and test project.

Runs with no services: SQLite and the in-memory channel layer. Set
DATABASE_URL (e.g. postgres://localhost/test) and REDIS_URL
(e.g. redis://127.0.0.1:6379/0) to use PostgreSQL and Redis; see below for
PgBouncer (DATABASE_TRANSACTION_POOLING) and Sentinel (REDIS_SENTINELS).
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret-5b1c0e7a8f")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "notifications",
    "project",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The demo's language switch: the session's choice, else the browser's.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

SQLITE_OPTIONS = {
    # Several processes (server, shell, tests) write the same file: wait for
    # the lock instead of failing, and let readers go on while one writes.
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    # One test database per test run, so that two runs never drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
else:
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
    # Tests share their database with a server process, so it must be a file.
    # One file per test run, so two runs (say, two Django versions) never share one.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get(
            "TEST_DATABASE_PATH",
            os.path.join(tempfile.gettempdir(), f"notifications-test-{os.getpid()}.sqlite3"),
        )
    }

# DATABASE_URL names PgBouncer in transaction pooling mode (README, Deploying):
# no server-side cursors, no prepared statements (Django's default).
NOTIFICATIONS_TRANSACTION_POOLING = os.environ.get("DATABASE_TRANSACTION_POOLING") == "1"
if NOTIFICATIONS_TRANSACTION_POOLING:
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True

REDIS_URL = os.environ.get("REDIS_URL")
# Redis behind Sentinel (README, Deploying): REDIS_SENTINELS lists the
# sentinels ("127.0.0.1:26379,127.0.0.1:26380,..."), REDIS_MASTER_NAME the
# master they watch; it takes the place of REDIS_URL.
REDIS_SENTINELS = os.environ.get("REDIS_SENTINELS")
REDIS_CONNECTION = {
    # receive() blocks in BZPOPMIN for up to 5 s: the socket
    # timeout must be longer, or an idle hub's receive fails.
    "socket_timeout": 30,
    "socket_connect_timeout": 5,
    "socket_keepalive": True,
    "health_check_interval": 15,
    # One hub per process shares these, however many streams
    # it serves; publishers borrow one per send.
    "max_connections": 200,
}
if REDIS_SENTINELS:
    REDIS_HOST = {
        "sentinels": [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in REDIS_SENTINELS.split(","))],
        "master_name": os.environ.get("REDIS_MASTER_NAME", "mymaster"),
        # A dead sentinel must not hold up finding the master.
        "sentinel_kwargs": {"socket_timeout": 1, "socket_connect_timeout": 1},
        **REDIS_CONNECTION,
    }
elif REDIS_URL:
    REDIS_HOST = {"address": REDIS_URL, **REDIS_CONNECTION}
if REDIS_SENTINELS or REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_HOST],
                # A full channel drops messages silently. Pokes are only
                # wake-ups (the hub reads the database), so an overflow costs
                # latency, never a notification; 1000 absorbs large bursts.
                "capacity": 1000,
                "expiry": 30,
                # The hub re-joins its groups every NOTIFICATIONS_GROUP_REJOIN
                # seconds (1 h), well inside this.
                "group_expiry": 86400,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LANGUAGE_CODE = "en-us"
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch")]
# The demo's own words (templates/ and project/); the app brings its own catalog.
LOCALE_PATHS = [BASE_DIR / "project" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"notifications": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# Emails of the demo go to the console, or to files in DEMO_EMAIL_DIR when set
# (DJANGO_EMAIL_BACKEND picks any other backend).
_email_dir = os.environ.get("DEMO_EMAIL_DIR")
_email_backend = os.environ.get("DJANGO_EMAIL_BACKEND") or (
    "django.core.mail.backends.filebased.EmailBackend"
    if _email_dir
    else "django.core.mail.backends.console.EmailBackend"
)
_email_files = _email_dir if _email_backend.endswith(".filebased.EmailBackend") else None
if django.VERSION >= (6, 1):
    # Django 6.1 configures email as MAILERS (EMAIL_BACKEND is deprecated).
    MAILERS = {
        "default": {
            "BACKEND": _email_backend,
            "OPTIONS": {"file_path": _email_files} if _email_files else {},
        }
    }
else:
    EMAIL_BACKEND = _email_backend
    if _email_files:
        EMAIL_FILE_PATH = _email_files
DEFAULT_FROM_EMAIL = "notifications@example.com"
NOTIFICATIONS_BASE_URL = os.environ.get("NOTIFICATIONS_BASE_URL", "http://127.0.0.1:8000")
# The delivery worker runs inside the server process (on by default with SQLite);
# NOTIFICATIONS_DELIVERY_THREAD=0 turns it off.
if "NOTIFICATIONS_DELIVERY_THREAD" in os.environ:
    NOTIFICATIONS_DELIVERY_THREAD = os.environ["NOTIFICATIONS_DELIVERY_THREAD"] == "1"

# Web Push: the VAPID keys from the environment, else a pair the demo makes on
# its first run and keeps in .demo-vapid.json (not for production).
NOTIFICATIONS_VAPID_SUBJECT = os.environ.get("NOTIFICATIONS_VAPID_SUBJECT", "mailto:admin@example.com")
if os.environ.get("NOTIFICATIONS_VAPID_PRIVATE_KEY"):
    NOTIFICATIONS_VAPID_PUBLIC_KEY = os.environ.get("NOTIFICATIONS_VAPID_PUBLIC_KEY", "")
    NOTIFICATIONS_VAPID_PRIVATE_KEY = os.environ["NOTIFICATIONS_VAPID_PRIVATE_KEY"]
else:
    import json

    _vapid_file = BASE_DIR / ".demo-vapid.json"
    if not _vapid_file.exists():
        try:
            # What ``manage.py notifications_vapid_keys`` does (the app cannot
            # be imported while settings load).
            from base64 import urlsafe_b64encode

            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec

            _key = ec.generate_private_key(ec.SECP256R1())
            _pair = {
                "public": urlsafe_b64encode(
                    _key.public_key().public_bytes(
                        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
                    )
                ).rstrip(b"=").decode(),
                "private": urlsafe_b64encode(_key.private_numbers().private_value.to_bytes(32, "big"))
                .rstrip(b"=")
                .decode(),
            }
            _vapid_file.write_text(json.dumps(_pair))
        except ImportError:  # without the push extra, the demo has no push
            pass
    if _vapid_file.exists():
        _vapid = json.loads(_vapid_file.read_text())
        NOTIFICATIONS_VAPID_PUBLIC_KEY = _vapid["public"]
        NOTIFICATIONS_VAPID_PRIVATE_KEY = _vapid["private"]

# Push services beyond the browsers' that endpoints may point at, comma-separated
# (the browser tests add their own server by its address: 127.0.0.1).
if os.environ.get("NOTIFICATIONS_PUSH_SERVICES"):
    from notifications.conf import BROWSER_PUSH_SERVICES

    NOTIFICATIONS_PUSH_SERVICES = [
        *BROWSER_PUSH_SERVICES,
        *(host.strip() for host in os.environ["NOTIFICATIONS_PUSH_SERVICES"].split(",") if host.strip()),
    ]

# Every app setting can be tuned from the environment in the demo, e.g.
# NOTIFICATIONS_HEARTBEAT=2 for tests that watch heartbeats.
for _name in (
    "NOTIFICATIONS_HEARTBEAT",
    "NOTIFICATIONS_MAX_STREAM_LIFE",
    "NOTIFICATIONS_RETRY_MS",
    "NOTIFICATIONS_POLL_INTERVAL",
    "NOTIFICATIONS_GAP_GRACE",
    "NOTIFICATIONS_REPLAY_LIMIT",
    "NOTIFICATIONS_MAX_STREAMS",
    "NOTIFICATIONS_MAX_STREAMS_PER_USER",
    "NOTIFICATIONS_STREAM_QUEUE_SIZE",
    "NOTIFICATIONS_DELIVERY_POLL",
    "NOTIFICATIONS_DELIVERY_LEASE",
    "NOTIFICATIONS_DELIVERY_BATCH",
):
    if _name in os.environ:
        globals()[_name] = float(os.environ[_name])
