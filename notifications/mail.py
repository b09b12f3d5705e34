"""
The email channel: one message per delivery through Django's email framework
(whatever the default mailer is: ``MAILERS["default"]`` on Django 6.1+, else
``EMAIL_BACKEND``; SMTP, console, file, django-anymail...).

Subject, text and HTML body come from templates of the kind, rendered in the
recipient's language (see texts.py):

- ``notifications/<kind>/email_subject.txt`` (else the email text, first line);
- ``notifications/<kind>/email.txt`` (else the kind's ``text["email"]``, else
  the in-app wording: this is ``texts.render_text(n, "email")``);
- ``notifications/<kind>/email.html`` (else ``notifications/email.html``).

Each message of a kind that can be muted carries ``List-Unsubscribe`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058): a signed
link that mutes that kind's email for that user, without logging in.

A digest (see digests.py) is one message listing several notifications, each
as its kind's email text (a group as "alice and 4 others ..."), from the
templates ``notifications/digest_subject.txt``, ``digest.txt`` and
``digest.html`` (a digest of one kind first tries
``notifications/<kind>/digest_subject.txt`` and so on); its one-click
unsubscribe mutes the email of the kinds it lists.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.template import Context, TemplateDoesNotExist
from django.template.loader import render_to_string, select_template
from django.urls import reverse
from django.utils import translation

from . import links, texts, users
from .conf import conf
from .grouping import summary
from .kinds import Kind
from .models import Notification

CHANNEL = "email"
_SALT = "notifications.unsubscribe"


def unsubscribe_token(user_id: Any, kind: str) -> str:
    """
    A signed token naming one user and one kind, or several kinds joined by
    commas (a digest's), with no expiry: old emails keep working.
    """
    return signing.dumps([users.to_json(user_id), kind], salt=_SALT, compress=True)


def read_token(token: str) -> tuple[Any, str]:
    """The (user id, kind) a token names; ``signing.BadSignature`` if it was not ours."""
    value = signing.loads(token, salt=_SALT)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[1], str)):
        raise signing.BadSignature("Malformed unsubscribe token.")
    try:
        return users.from_json(value[0]), value[1]
    except ValueError:
        raise signing.BadSignature("Malformed unsubscribe token.") from None


def unsubscribe_url(user_id: Any, kind: str) -> str:
    """The absolute one-click unsubscribe link (NOTIFICATIONS_BASE_URL + the app's URL)."""
    path = reverse("notifications:unsubscribe", args=[unsubscribe_token(user_id, kind)])
    return conf.BASE_URL + path


def address(user: Any) -> str:
    """The user's email address, or "" when they have none."""
    field = get_user_model().get_email_field_name()
    return str(getattr(user, field, "") or "")


def build(n: Notification, kind: Kind, to: str) -> EmailMultiAlternatives:
    """The message for notification ``n`` of ``kind`` to address ``to``, in the recipient's language."""
    lang = texts.language(n)
    if lang:
        with translation.override(lang):
            return _build(n, kind, to)
    return _build(n, kind, to)


def _build(n: Notification, kind: Kind, to: str) -> EmailMultiAlternatives:
    text = texts.render_text(n, CHANNEL)
    group = summary(n)
    link = links.absolute_url(n.url, conf.BASE_URL)  # "" for a stored unsafe link
    unsubscribe = "" if kind.critical else unsubscribe_url(n.recipient_id or 0, kind.key)
    context = {
        **texts.context(n, group),
        "text": text,
        "link": link,
        "kind_label": str(kind.label),
        "unsubscribe_url": unsubscribe,
    }
    subject = _optional(f"notifications/{kind.key}/email_subject.txt", context)
    if not subject:
        subject = text.splitlines()[0] if text else str(kind.label)
    subject = " ".join(subject.split())[:200]
    html = render_to_string(
        [f"notifications/{kind.key}/email.html", "notifications/email.html"], context
    )
    headers = {}
    if unsubscribe:
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    body = text + (f"\n\n{link}" if link else "")
    if unsubscribe:
        body += "\n\n" + translation.gettext("Stop these emails: %(url)s") % {"url": unsubscribe}
    message = EmailMultiAlternatives(
        subject, body + "\n", conf.EMAIL_FROM, [to], headers=headers
    )
    message.attach_alternative(html, "text/html")
    return message


def _optional(name: str, context: dict[str, Any]) -> str:
    try:
        template = select_template([name])
    except TemplateDoesNotExist:
        return ""
    # The plain Django template, rendered without HTML escaping: it is text.
    return str(template.template.render(Context(context, autoescape=False))).strip()


def send(n: Notification, kind: Kind, user: Any) -> str:
    """
    Send the email of ``n`` to ``user``; returns "" when sent, or why it was
    not (no address). The backend's errors propagate.
    """
    to = address(user)
    if not to:
        return "no email address"
    build(n, kind, to).send()
    return ""


def send_digest(items: list[Notification], kinds: list[Kind], user: Any) -> str:
    """
    Send one email listing ``items`` (of ``kinds``) to ``user``; returns ""
    when sent, or why it was not (no address). The backend's errors propagate.
    """
    to = address(user)
    if not to:
        return "no email address"
    lang = texts.language(items[0])
    if lang:
        with translation.override(lang):
            message = _build_digest(items, kinds, to)
    else:
        message = _build_digest(items, kinds, to)
    message.send()
    return ""


def _build_digest(items: list[Notification], kinds: list[Kind], to: str) -> EmailMultiAlternatives:
    keys = sorted({k.key for k in kinds})
    muted = [k for k in keys if not _critical(kinds, k)]
    user_id = items[0].recipient_id or 0
    unsubscribe = unsubscribe_url(user_id, ",".join(muted)) if muted else ""
    entries = []
    for n in items:
        group = summary(n)
        entries.append(
            {
                **texts.context(n, group),
                "text": texts.render_text(n, CHANNEL),
                "link": links.absolute_url(n.url, conf.BASE_URL),
            }
        )
    labels = sorted({str(k.label) for k in kinds})
    context = {
        "items": entries,
        "count": len(entries),
        "kind_labels": labels,
        "unsubscribe_url": unsubscribe,
        "inbox_url": conf.BASE_URL + reverse("notifications:all"),
    }
    own = [f"notifications/{keys[0]}/"] if len(keys) == 1 else []
    names = [*own, "notifications/"]
    subject = _optional_any([f"{p}digest_subject.txt" for p in names], context)
    subject = " ".join(subject.split())[:200]
    body = _optional_any([f"{p}digest.txt" for p in names], context)
    html = render_to_string([f"{p}digest.html" for p in names], context)
    headers = {}
    if unsubscribe:
        headers = {
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
    message = EmailMultiAlternatives(subject, body + "\n", conf.EMAIL_FROM, [to], headers=headers)
    message.attach_alternative(html, "text/html")
    return message


def _critical(kinds: list[Kind], key: str) -> bool:
    return any(k.critical for k in kinds if k.key == key)


def _optional_any(names: list[str], context: dict[str, Any]) -> str:
    """The first of these text templates that exists, rendered without HTML escaping."""
    template = select_template(names)
    return str(template.template.render(Context(context, autoescape=False))).strip()
