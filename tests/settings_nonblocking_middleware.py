"""A project with a middleware of its own, vouched for as never blocking (the stream opens on the loop)."""

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE, "tests.middleware.OwnAuserMiddleware"]
NOTIFICATIONS_NONBLOCKING_MIDDLEWARE = ["tests.middleware.OwnAuserMiddleware"]
