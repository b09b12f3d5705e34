"""
The test settings with a project's own user model (tests/customuser): a UUID
primary key, login by email, no groups. A user model is chosen before the
first migration, so these settings have a test database and a test run of
their own: ``./dev test --ds=tests.settings_custom_user tests/custom_user``.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.customuser"]
AUTH_USER_MODEL = "customuser.Member"
