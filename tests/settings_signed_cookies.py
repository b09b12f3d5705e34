"""The test settings with signed-cookie sessions: the session lives in the cookie."""

from tests.settings import *  # noqa: F403

SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
