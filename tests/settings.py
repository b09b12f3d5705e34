"""The demo project's settings plus a pretend third-party app for the tests."""

from project.settings import *  # noqa: F403
from project.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# A second database, for the tests of a project whose router sends the app's
# models elsewhere (tests/test_routing.py); created only for the tests that ask.
_elsewhere = {**DATABASES["default"], "TEST": dict(DATABASES["default"]["TEST"])}  # noqa: F405
_elsewhere["TEST"]["NAME"] += "_elsewhere"
DATABASES = {**DATABASES, "elsewhere": _elsewhere}  # noqa: F405
