"""
``{% load notifications_tags %}``: django-notifications-hq's template tags, so a
site's templates keep working after the swap, now updated live:

    {% notifications_unread as count %}     the user's unread count
    {{ user|has_notification }}
    {% live_notify_badge %} {% live_notify_list %}
    {% register_notify_callbacks callbacks="fill_notification_list,fill_notification_badge" %}
    <script src="{% static 'notifications/notify.js' %}"></script>

``notify.js`` keeps hq's globals and callbacks, but follows the notification
stream and fetches hq's JSON list when something changes; it polls (every
``refresh_period`` seconds) only while the stream is unavailable.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import template
from django.core.cache import cache
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from .. import api
from ..compat import get_config

register = template.Library()

_JS_NAME = re.compile(r"\A[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*\Z")


def _user(context: template.Context) -> Any:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None or not user.is_authenticated:
        return None
    return user


def unread_count(user: Any) -> int:
    """The user's unread count, cached CACHE_TIMEOUT seconds under a key of their own."""
    timeout = get_config()["CACHE_TIMEOUT"]
    if not timeout:
        return api.unread_count(user)
    count = cache.get_or_set(
        f"notifications:unread_count:{user.pk}", lambda: api.unread_count(user), timeout
    )
    return int(count or 0)


@register.simple_tag(takes_context=True)
def notifications_unread(context: template.Context) -> int | str:
    """The logged-in user's unread count ("" for anonymous)."""
    user = _user(context)
    return "" if user is None else unread_count(user)


@register.filter
def has_notification(user: Any) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return api.visible(user).unread().exists()


@register.simple_tag(takes_context=True)
def live_notify_badge(context: template.Context, badge_class: str = "live_notify_badge") -> SafeString | str:
    user = _user(context)
    if user is None:
        return ""
    return format_html("<span class='{}'>{}</span>", badge_class, unread_count(user))


@register.simple_tag
def live_notify_list(list_class: str = "live_notify_list") -> SafeString:
    return format_html("<ul class='{}'></ul>", list_class)


@register.simple_tag
def register_notify_callbacks(
    badge_class: str = "live_notify_badge",
    menu_class: str = "live_notify_list",
    refresh_period: int | str = 15,
    callbacks: str = "",
    api_name: str = "list",
    fetch: int | str = 5,
    nonce: str | None = None,
    mark_as_read: bool = False,
) -> SafeString | str:
    """
    hq's script block: the settings ``notify.js`` reads, and a
    ``register_notifier(name)`` call for each comma-separated callback name.
    """
    if api_name == "list":
        api_url = reverse("notifications:live_unread_notification_list")
    elif api_name == "count":
        api_url = reverse("notifications:live_unread_notification_count")
    else:
        return ""
    names = [name.strip() for name in callbacks.split(",") if name.strip()]
    for name in names:
        if not _JS_NAME.match(name):
            raise template.TemplateSyntaxError(
                f"register_notify_callbacks: callback {name!r} is not a JavaScript function name."
            )
    values = {
        "notify_badge_class": str(badge_class),
        "notify_menu_class": str(menu_class),
        "notify_api_url": api_url,
        "notify_fetch_count": str(int(fetch)),
        "notify_unread_url": reverse("notifications:unread"),
        "notify_mark_all_unread_url": reverse("notifications:mark_all_as_read"),
        "notify_refresh_period": int(refresh_period) * 1000,
        "notify_mark_as_read": bool(mark_as_read),
        "notify_stream_url": reverse("notifications:stream"),
    }
    lines = [f"{name} = {_js(value)};" for name, value in values.items()]
    lines += [f"register_notifier({name});" for name in names]
    opening = format_html('<script nonce="{}">', nonce) if nonce else mark_safe("<script>")
    return opening + mark_safe("\n".join(lines)) + mark_safe("</script>")  # noqa: S308  # JSON escaped by _js(); names checked against _JS_NAME


def _js(value: Any) -> str:
    """A JSON literal that is safe inside a <script> element."""
    return (
        json.dumps(value)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
