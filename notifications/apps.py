from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = _("Notifications")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.test.signals import setting_changed

        from . import checks  # noqa: F401  (registers the system checks)
        from .kinds import autodiscover
        from .receivers import on_notify
        from .signals import notify
        from .signout import connect as connect_login_checks
        from .texts import clear_cache

        notify.connect(on_notify, dispatch_uid="notifications.on_notify")
        # A password change, a logout or a group left ends the streams it
        # concerns before they get anything more (the sweep is the fallback).
        connect_login_checks()
        setting_changed.connect(clear_cache, dispatch_uid="notifications.texts")
        # Each installed app's notifications.py declares its kinds, as admin.py
        # registers models.
        autodiscover()
