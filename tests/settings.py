"""The demo project's settings plus a pretend third-party app for the tests."""

import os

from django.conf import global_settings

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# Servers started by the tests run the delivery worker thread only when a test asks.
NOTIFICATIONS_DELIVERY_THREAD = os.environ.get("NOTIFICATIONS_DELIVERY_THREAD") == "1"
# Web Push is off (no keys) unless a test's server is given keys.
NOTIFICATIONS_VAPID_PUBLIC_KEY = os.environ.get("NOTIFICATIONS_VAPID_PUBLIC_KEY", "")
NOTIFICATIONS_VAPID_PRIVATE_KEY = os.environ.get("NOTIFICATIONS_VAPID_PRIVATE_KEY", "")
# A second database, for the tests of a project whose router sends the app's
# models elsewhere (tests/test_routing.py); created only for the tests that ask.
_elsewhere = {**DATABASES["default"], "TEST": dict(DATABASES["default"]["TEST"])}  # noqa: F405
_elsewhere["TEST"]["NAME"] += "_elsewhere"
DATABASES = {**DATABASES, "elsewhere": _elsewhere}  # noqa: F405

# The tests create hundreds of users with a password: hashed with MD5 each takes
# microseconds instead of most of a second (PBKDF2's iterations); a password
# hashed with any of Django's default hashers still verifies.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *global_settings.PASSWORD_HASHERS]
