"""
A thin settings module to run django-notifications-hq 1.8.3's own test suite
(``notifications/tests/`` of its source distribution, downloaded by
``tests/test_hq_suite.py`` with pip, never kept in this repository) against
this app: hq's test settings, with ``NOTIFICATIONS_HQ_GET_MUTATIONS`` on (hq's
tests follow links with GET), plus small stand-ins for what hq's tests import
that Python and Django no longer have (pytz, distutils, timezone.utc). hq's
``swapper`` is the real package, installed by the test as a project switching
from hq has it.

    HQ_SUITE=<folder holding hq's notifications/> python -m django test \\
        notifications.tests.tests --settings=tests.hq.suite_settings
"""

from __future__ import annotations

import datetime
import os
import sys
import types
import zoneinfo
from pathlib import Path

import django.utils.timezone
import swapper  # noqa: F401  # hq's tests import it; tests/test_hq_suite.py installs it

import notifications

SUITE = Path(os.environ["HQ_SUITE"])

# hq's tests live in the package ``notifications.tests``: let this app's
# package find that subpackage in the downloaded source.
notifications.__path__.append(str(SUITE / "notifications"))

# What hq's tests import from hq's own dependencies.
django.utils.timezone.utc = datetime.UTC  # type: ignore[attr-defined]  # removed in Django 5.0
sys.modules.setdefault("pytz", types.SimpleNamespace(timezone=zoneinfo.ZoneInfo))  # type: ignore[arg-type]
try:
    import distutils.version  # noqa: F401
except ImportError:  # Python 3.12+

    class StrictVersion:
        def __init__(self, text: str):
            self.parts = tuple(int(p) for p in text.split(".")[:3] if p.isdigit())

        def __ge__(self, other: StrictVersion) -> bool:
            return self.parts >= other.parts

        def __lt__(self, other: StrictVersion) -> bool:
            return self.parts < other.parts

    version = types.ModuleType("distutils.version")
    version.StrictVersion = StrictVersion  # type: ignore[attr-defined]
    package = types.ModuleType("distutils")
    package.version = version  # type: ignore[attr-defined]
    sys.modules["distutils"], sys.modules["distutils.version"] = package, version

SECRET_KEY = "hq-suite"
DEBUG = True
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sessions",
    "channels",
    "notifications.tests",
    "notifications",
]
ROOT_URLCONF = "notifications.tests.urls"
STATIC_URL = "/static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # hq's test_tags.html, which its tests render.
        "DIRS": [str(SUITE / "templates")],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
LOGIN_REDIRECT_URL = "test/"
LOGIN_URL = "/admin/login/"
APPEND_SLASH = True
USE_TZ = True
ALLOWED_HOSTS: list[str] = []
DJANGO_NOTIFICATIONS_CONFIG = {"USE_JSONFIELD": True}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
ASGI_APPLICATION = "project.asgi.application"
NOTIFICATIONS_HQ_GET_MUTATIONS = True
SILENCED_SYSTEM_CHECKS = ["notifications.W101"]  # on on purpose: hq's tests GET
