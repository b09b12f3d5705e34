"""
The test settings plus middleware a project might have: an authentication of
its own (a header set by a single-sign-on proxy) and an IP allow-list.
"""

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

MIDDLEWARE = [
    *MIDDLEWARE,
    "tests.middleware.ProxyUserMiddleware",
    "tests.middleware.AllowListMiddleware",
]
