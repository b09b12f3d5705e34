"""The test settings with the stream's opt-out: its requests skip the middleware."""

from tests.settings import *  # noqa: F403

NOTIFICATIONS_STREAM_MIDDLEWARE = False
