"""The test settings with ATOMIC_REQUESTS on, as many projects have it."""

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

# Only the default database: the tests' second alias points at the same file
# outside the test run, and two immediate transactions on it would wait on each other.
DATABASES = {**DATABASES, "default": {**DATABASES["default"], "ATOMIC_REQUESTS": True}}
