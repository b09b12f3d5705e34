"""
The text of a notification, rendered when read, per kind and channel, in the
recipient's language.

For a notification of kind ``comment`` on channel ``in_app`` the text comes
from the kind's ``text["in_app"]`` function if it has one, else from the
template ``notifications/comment/in_app.txt`` if it exists, else from the
stored verb ("alice commented"). The recipient's language is read through
NOTIFICATIONS_USER_LANGUAGE, a lookup from the user model ("language",
"profile__language"); without it, the project's active language is used.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.template import Context, TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import translation
from django.utils.translation import gettext, ngettext

from .conf import conf
from .grouping import Summary, summary
from .kinds import IN_APP, register
from .links import safe_data

if TYPE_CHECKING:
    from .models import Notification

logger = logging.getLogger(__name__)

_LANGUAGE = "_notifications_language"


def attach_languages(rows: Sequence[Notification]) -> None:
    """Read the recipients' languages for ``rows`` in one query (if configured)."""
    lookup = conf.USER_LANGUAGE
    if not lookup:
        return
    from django.contrib.auth import get_user_model

    wanted = {n.recipient_id for n in rows if n.recipient_id is not None and n.kind}
    if not wanted:
        return
    User = get_user_model()
    languages = dict(User._default_manager.filter(pk__in=wanted).values_list("pk", lookup))
    for n in rows:
        if n.recipient_id in languages:
            setattr(n, _LANGUAGE, languages[n.recipient_id] or "")


def language(n: Notification) -> str | None:
    """The language to render ``n`` in: its recipient's, or None for the active one."""
    if not conf.USER_LANGUAGE or n.recipient_id is None:
        return None
    if not hasattr(n, _LANGUAGE):
        attach_languages([n])
    return getattr(n, _LANGUAGE, None) or None


def _others(group: Summary) -> int:
    """How many actors ``actors_text`` leaves unnamed: all but two when not all are known."""
    return group.actor_count - 2 if group.actor_count > len(group.actors) else 0


def actors_text(group: Summary) -> str:
    """ "alice", "alice and bob", "alice, bob and carol", "alice, bob and 48 others" (translated)."""
    names = list(group.actors)
    if not names:
        return ""
    others = _others(group)
    if others:
        names = names[:2]
        return ngettext(
            "%(names)s and %(count)d other", "%(names)s and %(count)d others", others
        ) % {"names": ", ".join(names), "count": others}
    if len(names) == 1:
        return names[0]
    return gettext("%(names)s and %(last)s") % {"names": ", ".join(names[:-1]), "last": names[-1]}


def context(n: Notification, group: Summary) -> dict[str, Any]:
    """What a kind's template or text function gets."""
    return {
        "notification": n,
        "kind": n.kind,
        "verb": n.verb,
        "description": n.description,
        "data": safe_data(n.data),
        "actor": n.actor_display,
        "actors": list(group.actors),
        "actors_text": actors_text(group),
        "count": group.count,
        "others": _others(group),
    }


def render_text(n: Notification, channel: str = IN_APP) -> str:
    """The text of ``n`` for ``channel``, in its recipient's language."""
    group = summary(n)
    lang = language(n)
    if lang:
        with translation.override(lang):
            return _render(n, channel, group)
    return _render(n, channel, group)


def _render(n: Notification, channel: str, group: Summary) -> str:
    kind = register.get(n.kind) if n.kind else None
    if kind is not None:
        ctx = context(n, group)
        fn = kind.text.get(channel)
        if fn is not None:
            return str(fn(ctx)).strip()
        template = _template(n.kind, channel)
        if template is not None:
            return template.render(Context(ctx, autoescape=False)).strip()
    who = actors_text(group) if group.count > 1 else n.actor_display
    return f"{who} {n.verb}" if who else n.verb


@functools.lru_cache(maxsize=256)
def _template(kind: str, channel: str) -> Any:
    """The Django template ``notifications/<kind>/<channel>.txt``, or None."""
    try:
        template = get_template(f"notifications/{kind}/{channel}.txt")
    except TemplateDoesNotExist:
        return None
    # The plain Django template, rendered without HTML escaping: it is text.
    return getattr(template, "template", None)


def clear_cache(**kwargs: Any) -> None:
    """Forget looked-up templates (connected to ``setting_changed``)."""
    _template.cache_clear()

