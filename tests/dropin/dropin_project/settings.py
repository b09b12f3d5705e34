"""
A project on django-notifications-hq's API. ``DROPIN_PACKAGE`` says which
package provides ``notifications``: ``community`` (django-notifications-community
1.12.3, as before the switch) or ``here`` (this app, after the README's steps:
channels, ``ASGI_APPLICATION``, ``CHANNEL_LAYERS``).
"""

import os
from urllib.parse import urlsplit

PACKAGE = os.environ["DROPIN_PACKAGE"]
assert PACKAGE in ("community", "here"), PACKAGE

SECRET_KEY = "dropin"
DEBUG = False
USE_TZ = True
ROOT_URLCONF = "dropin_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "notifications",
    "forum",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DJANGO_NOTIFICATIONS_CONFIG = {"USE_JSONFIELD": True, "SOFT_DELETE": True}

url = os.environ.get("DATABASE_URL", "")
if url.startswith("postgres"):
    parts = urlsplit(url)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parts.path.lstrip("/"),
            "USER": parts.username or "",
            "PASSWORD": parts.password or "",
            "HOST": parts.hostname or "",
            "PORT": parts.port or "",
            "TEST": {"NAME": f"test_dropin_{PACKAGE}_{os.getpid()}"},
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

if PACKAGE == "here":
    # The README's switching steps.
    INSTALLED_APPS.insert(0, "channels")
    ASGI_APPLICATION = "dropin_project.asgi.application"
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The project logs what it could not send and carries on; keep the test output to results.
LOGGING = {
    "version": 1,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "loggers": {"forum": {"handlers": ["null"], "propagate": False}},
}

TEST_RUNNER = "dropin_project.runner.Runner"
