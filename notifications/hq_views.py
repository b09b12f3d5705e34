"""
django-notifications-hq's pages and JSON endpoints, under hq's URL names and
paths, over this app's data: every notification a user may see (broadcasts
included), with per-user read state.

hq changed state on GET. Here the mark/delete views take POST (with Django's
CSRF check) unless ``NOTIFICATIONS_HQ_GET_MUTATIONS = True`` restores GET for
sites whose templates link to them (system check ``notifications.W007`` warns
while it is on).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import DisallowedHost
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils.encoding import iri_to_uri
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.generic import ListView

from . import api
from .compat import get_config
from .conf import conf
from .links import safe_data, safe_url
from .models import Notification, NotificationQuerySet
from .utils import id2slug, slug2id


def _mutations_allowed(request: HttpRequest) -> bool:
    return request.method == "POST" or (request.method == "GET" and conf.HQ_GET_MUTATIONS)


def _refuse(request: HttpRequest) -> JsonResponse:
    response = JsonResponse(
        {
            "error": _(
                "Use POST for this endpoint, not %(method)s; set "
                "NOTIFICATIONS_HQ_GET_MUTATIONS = True to accept django-notifications-hq's GET links."
            )
            % {"method": request.method}
        },
        status=405,
    )
    response["Allow"] = "GET, POST" if conf.HQ_GET_MUTATIONS else "POST"
    return response


def _next(request: HttpRequest, default: str) -> HttpResponse:
    """Redirect to ``next`` (query or form) when it is safe, else to ``default``."""
    target = request.POST.get("next") or request.GET.get("next")
    allowed = set(settings.ALLOWED_HOSTS)
    try:
        allowed.add(request.get_host())
    except DisallowedHost:
        pass
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts=allowed, require_https=request.is_secure()
    ):
        return redirect(iri_to_uri(target))
    return redirect(default)


def _me(request: HttpRequest) -> AbstractBaseUser:
    """The logged-in user (the views check that first)."""
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # noqa: S101  # narrows the type for mypy; the views check login first
    return user


def _visible(request: HttpRequest) -> NotificationQuerySet:
    return api.visible(_me(request))


def _by_slug(request: HttpRequest, slug: str) -> int:
    pk = slug2id(slug)
    if not api.visible(_me(request), members=True).filter(pk=pk).exists():
        raise Http404("No such notification.")
    return pk


class NotificationList(ListView):
    template_name = "notifications/list.html"
    context_object_name = "notifications"
    unread_only = False

    def get_paginate_by(self, queryset: Any) -> int:
        return int(get_config()["PAGINATE_BY"])

    def get_queryset(self) -> NotificationQuerySet:
        rows = _visible(self.request).order_by("-id")
        return rows.unread() if self.unread_only else rows


all_notifications = login_required(NotificationList.as_view())
unread_notifications = login_required(NotificationList.as_view(unread_only=True))


def _mutation(change: Callable[[HttpRequest, int], Any], default: str) -> Callable[..., HttpResponse]:
    @login_required
    def view(request: HttpRequest, slug: str | None = None) -> HttpResponse:
        if not _mutations_allowed(request):
            return _refuse(request)
        change(request, _by_slug(request, slug) if slug is not None else 0)
        return _next(request, default)

    return view


def _delete(request: HttpRequest, pk: int) -> None:
    """Soft delete with SOFT_DELETE (hq's setting) or for a broadcast; else delete the row."""
    api.delete(_me(request), [pk], permanently=not get_config()["SOFT_DELETE"])


mark_all_as_read = _mutation(lambda r, _: api.mark_all_read(_me(r)), "notifications:unread")
mark_as_read = _mutation(lambda r, pk: api.mark_read(_me(r), [pk]), "notifications:unread")
mark_as_unread = _mutation(lambda r, pk: api.mark_unread(_me(r), [pk]), "notifications:unread")
delete = _mutation(_delete, "notifications:all")


# -- hq's live JSON endpoints --------------------------------------------------------


def _num_to_fetch(request: HttpRequest) -> int:
    """``?max=`` from 1 to 100, else NUM_TO_FETCH (as hq)."""
    default = int(get_config()["NUM_TO_FETCH"])
    try:
        wanted = int(request.GET.get("max", default))
    except ValueError:
        return default
    return wanted if 1 <= wanted <= 100 else default


def _as_hq_dict(n: Notification) -> dict[str, Any]:
    """A notification in the shape hq's JSON lists give it."""
    item: dict[str, Any] = {
        "id": n.pk,
        "slug": id2slug(n.pk),
        "level": n.level,
        "recipient": n.recipient_id,
        "unread": bool(getattr(n, "is_unread", n.unread)),
        "actor_content_type": n.actor_content_type_id,
        "actor_object_id": n.actor_object_id,
        "verb": n.verb,
        "description": n.description,
        "target_content_type": n.target_content_type_id,
        "target_object_id": n.target_object_id,
        "action_object_content_type": n.action_object_content_type_id,
        "action_object_object_id": n.action_object_object_id,
        "timestamp": n.created,
        "public": n.public,
        "deleted": n.deleted,
        "emailed": n.emailed,
        "data": safe_data(n.data) or None,
        "url": safe_url(n.url),
    }
    actor = n.actor_display or (str(n.actor) if n.actor is not None else "")
    if actor:
        item["actor"] = actor
    for name in ("target", "action_object"):
        obj = getattr(n, name)
        if obj is not None:
            item[name] = str(obj)
    return item


def _listing(request: HttpRequest, unread_only: bool, key: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return JsonResponse({f"{key}_count": 0, f"{key}_list": []})
    mark = bool(request.GET.get("mark_as_read"))
    if mark and not conf.HQ_GET_MUTATIONS:
        return JsonResponse(
            {
                "error": _(
                    "mark_as_read changes state on GET; set NOTIFICATIONS_HQ_GET_MUTATIONS "
                    "= True to allow it, or POST to mark_all_as_read."
                )
            },
            status=400,
        )
    rows = _visible(request)
    if unread_only:
        rows = rows.unread()
    listed = list(
        rows.order_by("-id").prefetch_related("actor", "target", "action_object")[
            : _num_to_fetch(request)
        ]
    )
    items = [_as_hq_dict(n) for n in listed]
    if mark and listed:
        api.mark_read(_me(request), [n.pk for n in listed])
    return JsonResponse({f"{key}_count": rows.count(), f"{key}_list": items})


@never_cache
def live_unread_notification_list(request: HttpRequest) -> HttpResponse:
    """``{"unread_count": n, "unread_list": [...]}``, newest first, ``?max=`` of them."""
    return _listing(request, True, "unread")


@never_cache
def live_all_notification_list(request: HttpRequest) -> HttpResponse:
    """``{"all_count": n, "all_list": [...]}``."""
    return _listing(request, False, "all")


@never_cache
def live_unread_notification_count(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"unread_count": 0})
    return JsonResponse({"unread_count": api.unread_count(_me(request))})


@never_cache
def live_all_notification_count(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"all_count": 0})
    return JsonResponse({"all_count": _visible(request).count()})
