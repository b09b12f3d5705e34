"""The demo's kinds of notification, found at startup like admin.py."""

from datetime import timedelta

from django.utils.translation import gettext_lazy as _

from notifications.kinds import Kind, register

register(
    Kind(
        "mention",
        label=_("Mentions"),
        category=_("Activity"),
        # In-app at once; email and push only if still unread after 2 minutes.
        channels={"in_app": True, "email": timedelta(minutes=2), "push": timedelta(minutes=2)},
    )
)
register(
    Kind(
        "comment",
        label=_("Comments"),
        category=_("Activity"),
        channels={"in_app": True, "email": False, "push": False},
        group_by="target",
        window=timedelta(minutes=10),
    )
)
register(
    Kind(
        "security",
        label=_("Security alerts"),
        category=_("Account"),
        channels={"in_app": True, "email": True, "push": True},
        critical=True,
    )
)
