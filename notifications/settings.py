"""django-notifications-hq's settings module: ``get_config()`` reads ``DJANGO_NOTIFICATIONS_CONFIG``."""

from .compat import CONFIG_DEFAULTS, get_config

__all__ = ["CONFIG_DEFAULTS", "get_config"]
