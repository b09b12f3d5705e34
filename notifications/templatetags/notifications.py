"""
``{% load notifications %}`` then ``{% notifications_bell %}``: the bell, its
badge, the list, the connection status and the toast region, wired to the
static JS client through ``data-*`` attributes.
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext, ngettext, pgettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from .. import api, preferences
from ..conf import conf
from ..digests import user_zone
from ..feed import position_now
from ..finality import Cursor
from ..kinds import CHANNELS
from ..links import safe_url as _safe_url
from ..render import as_dict, prepare

register = template.Library()

# How often a kind's email or push may go, as the preferences form offers it.
EVERY_CHOICES = [
    ("default", _("as declared")),
    ("now", _("at once")),
    ("hourly", _("hourly digest")),
    ("daily", _("daily digest")),
    ("weekly", _("weekly digest")),
]


def badge_text(count: int) -> str:
    """The badge label: the count, capped as "99+"."""
    return f"{conf.BADGE_MAX}+" if count > conf.BADGE_MAX else str(count)


def _plural(singular: str, plural: str) -> dict[str, str]:
    """
    A plural for the JS client: the translated form for one and for many,
    under Intl.PluralRules' category names. (Enough for English, French and
    German; a language with more forms gets its "other" form for the rest.)
    """
    return {"one": ngettext(singular, plural, 1), "other": ngettext(singular, plural, 2)}


def client_strings() -> dict[str, Any]:
    """
    Every string notifications.js shows, in the active language: the JSON
    the bell hands the client in ``data-strings``. Its keys are STRINGS' in
    notifications.js; "%(name)s" marks a value the client fills in.
    """
    return {
        "status": {
            "connecting": gettext("connecting"),
            "connected": gettext("connected"),
            "reconnecting": gettext("reconnecting"),
            "signed-out": gettext("signed out"),
        },
        # The badge counts what is new (unread and not seen yet): "new", not "unread".
        "bellLabel": _plural("Notifications, %(count)s new", "Notifications, %(count)s new"),
        "unread": _plural("%(count)s new notification", "%(count)s new notifications"),
        "grouped": _plural("%(count)s notification", "%(count)s notifications"),
        "actorVerb": pgettext("a notification's actor and verb", "%(actor)s %(verb)s"),
        "markRead": gettext("Mark read"),
        "dismiss": gettext("Dismiss"),
        "pushOn": gettext("Notify me on this device"),
        "pushOff": gettext("Stop notifying this device"),
        "archive": gettext("Archive"),
        "restore": gettext("Restore"),
        "snooze": gettext("Snooze"),
        "snoozeUntil": gettext("Snooze until"),
        "archived": gettext("Archived"),
        "inbox": gettext("Inbox"),
        "archiveRead": gettext("Archive all read"),
    }


@register.inclusion_tag("notifications/bell.html", takes_context=True)
def notifications_bell(
    context: template.Context, limit: int = 10, desktop: bool = False, preferences_url: str = ""
) -> dict[str, Any]:
    """
    Render the notification bell for the logged-in user (nothing for anonymous).

    ``limit``: how many recent notifications the list starts with.
    ``desktop``: also raise browser (desktop) notifications once allowed.
    ``preferences_url``: a page with ``{% notification_preferences %}``, linked from the panel.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return {"show": False}
    cursor = str(Cursor.at(*position_now()))  # read before the list, see the API
    rows = list(api.inbox(user).order_by("-id")[:limit])
    prepare(rows)
    items = [as_dict(n) for n in rows]
    unread, unseen = api.counts(user)
    return {
        "show": True,
        "items": items,
        "unread_count": unread,
        "unseen_count": unseen,  # what the badge counts, and the bell's label says
        "badge": badge_text(unseen),
        "bell_label": ngettext(
            "Notifications, %(count)s new", "Notifications, %(count)s new", unseen
        )
        % {"count": unseen},
        "unread_text": ngettext(
            "%(count)s new notification", "%(count)s new notifications", unseen
        )
        % {"count": unseen},
        "panel_id": "notifications-panel",
        "language": translation.get_language() or "",
        "strings": json.dumps(client_strings(), ensure_ascii=False),
        "cursor": cursor,
        "csrf_token": get_token(request),
        "stream_url": reverse("notifications:stream"),
        "list_url": reverse("notifications:list"),
        "read_url": reverse("notifications:read", args=[0]),
        "push_key": conf.VAPID_PUBLIC_KEY if conf.VAPID_PRIVATE_KEY else "",
        "push_subscribe_url": reverse("notifications:push-subscribe"),
        "push_unsubscribe_url": reverse("notifications:push-unsubscribe"),
        "read_all_url": reverse("notifications:read-all"),
        "seen_url": reverse("notifications:seen"),
        "archive_url": reverse("notifications:archive", args=[0]),
        "unarchive_url": reverse("notifications:unarchive", args=[0]),
        "snooze_url": reverse("notifications:snooze", args=[0]),
        "archive_read_url": reverse("notifications:archive-read"),
        "desktop": desktop,
        "limit": limit,
        "badge_max": conf.BADGE_MAX,
        "preferences_url": preferences_url,
        # The client's dead-link watchdog and the name of the lock its tabs share.
        "heartbeat": conf.HEARTBEAT,
        "user_key": user.pk,
    }


# A context of their own: Django's catalogs translate a bare "Email" their way.
CHANNEL_LABELS = {
    "in_app": pgettext_lazy("notification channel", "In the app"),
    "email": pgettext_lazy("notification channel", "Email"),
    "push": pgettext_lazy("notification channel", "Push"),
}


@register.inclusion_tag("notifications/preferences.html", takes_context=True)
def notification_preferences(context: template.Context) -> dict[str, Any]:
    """
    Render the logged-in user's preferences (every kind, per channel) as a
    form that works without JavaScript: it posts to ``notifications:preferences-form``,
    which saves and redirects back to this page. Critical kinds show as always on.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.is_authenticated:
        return {"show": False}
    rows = preferences.matrix(user)
    channels = [c for c in CHANNELS if any(c in row["channels"] for row in rows)]
    for row in rows:
        row["cells"] = [(c, CHANNEL_LABELS[c], row["channels"].get(c)) for c in channels]
    return {
        "show": True,
        "kinds": rows,
        "every_choices": EVERY_CHOICES,
        "time_zone": user_zone(user.pk),
        "channels": [(c, CHANNEL_LABELS[c]) for c in channels],
        "action": reverse("notifications:preferences-form"),
        "next": request.get_full_path(),
        "csrf_token": get_token(request),
    }


@register.filter
def safe_url(url: Any) -> str:
    """
    ``{{ notice.url|safe_url }}``: the link if it is relative or http(s), else ""
    (see notifications/links.py), for ``href`` attributes of stored links.
    """
    return _safe_url(url)
