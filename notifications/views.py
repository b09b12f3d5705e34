"""
HTTP views: the SSE stream and the JSON API.

Every response to a client that is not logged in is a JSON 403, never a login
redirect: a browser's stream or fetch cannot follow one usefully.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from functools import wraps
from inspect import iscoroutinefunction
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.db import DatabaseError
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from . import api, inbox, preferences
from .asgi import OPENINGS
from .auth import stream_user, stream_user_in_thread, stream_user_settled
from .conf import conf
from .feed import position_now
from .finality import Cursor, InvalidCursor
from .hub import Hub, get_hub
from .models import Audiences
from .render import as_dict, prepare
from .stream import EventStream
from .users import is_staff

logger = logging.getLogger(__name__)


def error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def require_method(method: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Like ``require_GET``/``require_POST``, but the 405 says why in JSON."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        def refuse(request: HttpRequest) -> JsonResponse:
            return _wrong_method(request, method)

        if iscoroutinefunction(view):

            @wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                if request.method != method:
                    return refuse(request)
                return await view(request, *args, **kwargs)

            return async_wrapper

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if request.method != method:
                return refuse(request)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _wrong_method(request: HttpRequest, method: str) -> JsonResponse:
    response = error(
        405,
        _("Use %(allowed)s for this endpoint, not %(method)s.")
        % {"allowed": method, "method": request.method},
    )
    response["Allow"] = method
    return response


def _only_get(request: HttpRequest) -> JsonResponse:
    return _wrong_method(request, "GET")


class _EveryDatabase(set[str]):
    """Holds every database alias, those of DATABASES to come included."""

    def __contains__(self, alias: object) -> bool:
        return True


def outside_request_transactions(view: Callable[..., Any]) -> Callable[..., Any]:
    """
    Exempt ``view`` from ATOMIC_REQUESTS on every database, as
    ``transaction.non_atomic_requests`` does for one: Django cannot wrap an
    async view in a transaction (it raises RuntimeError), and a stream must
    not hold one open for its whole life.
    """
    view._non_atomic_requests = _EveryDatabase()  # type: ignore[attr-defined]
    return view


require_GET = require_method("GET")
require_POST = require_method("POST")


def _forbidden() -> JsonResponse:
    return error(403, _("Authentication required: log in to see notifications."))


# -- the stream ----------------------------------------------------------------


@outside_request_transactions
@require_GET
async def stream(request: HttpRequest) -> HttpResponseBase:
    """
    ``GET stream/``: Server-Sent Events for the logged-in user.

    Resumes after the cursor in the ``Last-Event-ID`` header (or the
    ``last_event_id`` query parameter on a page's first connect). A cursor that
    cannot be used gets a ``reset`` event: the client reloads its list.
    """
    request.get_host()  # ALLOWED_HOSTS, whichever handler serves the stream (else 400)
    try:
        who = await stream_user(request)
    except DatabaseError:
        return _database_down()
    return _open(request, who, get_hub())


# The event loop and hub a stream opened in a worker thread will stream on,
# set by the handler that sent the request to that thread, with what the
# handler's prefetch found for the request's session cookie.
# Set by notifications.asgi.StreamHandler for the opening it hands to
# ``stream_in_thread``: the event loop, the hub, the prefetched answer, and
# whether the middleware and the view run on that loop rather than a thread.
opening_on: ContextVar[tuple[asyncio.AbstractEventLoop, Hub, Any, bool]] = ContextVar("opening_on")


def stream_in_thread(request: HttpRequest) -> HttpResponseBase:
    """
    ``stream`` for ``notifications.asgi.StreamHandler``, which runs the
    project's middleware in a worker thread, or on the event loop when no
    part of it can block: the same answer, given without waiting on the event
    loop (which a burst of openings keeps busy); the body then streams on the
    loop.
    """
    if request.method != "GET":
        return _only_get(request)
    request.get_host()
    loop, hub, prefetched, on_loop = opening_on.get()
    if on_loop:
        # The handler ran the middleware on the loop because the prefetched
        # answer decides; if the middleware made it not decide after all,
        # asking the database here would block the loop: the handler opens
        # the stream again in a thread.
        if not stream_user_settled(request, prefetched):
            return NotSettledOnLoop()
        return _open(request, prefetched, hub)
    try:
        who = stream_user_in_thread(request, loop, prefetched)
    except DatabaseError:
        return _database_down()
    return _open(request, who, hub)


class NotSettledOnLoop(HttpResponse):
    """``stream_in_thread``'s answer on the loop when only a thread could tell who the user is."""


def _database_down() -> JsonResponse:
    logger.warning("Database unavailable; notification stream refused.", exc_info=True)
    return _unavailable(_("Notifications are unavailable for a moment; retry later."))


def _open(request: HttpRequest, who: Audiences | None, hub: Hub) -> HttpResponseBase:
    """The stream's response for ``who`` (None: may not stream)."""
    if who is None:
        return _forbidden()
    # The slot is taken here, in one step with the check: opens arriving
    # together cannot all pass it. The body gives it back however it ends.
    reservation = hub.reserve(who.user_id)
    if reservation is None:
        return _unavailable(_("Too many open notification streams; retry later."))
    cursor, reset = _cursor(request)
    response = EventStreamResponse(
        EventStream(hub, who, reservation, cursor, reset=reset), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache, no-store"
    response["X-Accel-Buffering"] = "no"
    return response


class EventStreamResponse(StreamingHttpResponse):
    """
    The stream's response. Any handler can stream it; those of
    ``notifications.asgi`` hand its ``events`` to the hub once the headers are
    sent (``EventStream.serve``), and let the request and the response go.
    """

    def __init__(self, events: EventStream, **kwargs: Any) -> None:
        super().__init__(events, **kwargs)
        self.events = events


def _unavailable(message: str) -> JsonResponse:
    response = error(503, message)
    response["Retry-After"] = str(conf.RETRY_AFTER)
    return response


def _cursor(request: HttpRequest) -> tuple[Cursor | None, bool]:
    """The client's cursor, or (None, True) when it sent one that is unusable."""
    # META, not request.headers: that builds a copy of every header, kept for
    # the stream's life.
    raw = request.META.get("HTTP_LAST_EVENT_ID") or request.GET.get("last_event_id")
    if not raw:
        return None, False
    try:
        return Cursor.parse(raw.strip()), False
    except InvalidCursor:
        return None, True


@outside_request_transactions
@require_GET
async def hub_stats(request: HttpRequest) -> HttpResponse:
    """``GET api/hub/``: this process's hub, for staff (streams, users, groups, openings)."""
    user = await request.auser()
    if not user.is_authenticated:
        return _forbidden()
    if not is_staff(user):
        return error(403, _("Staff only."))
    # With the openings through the middleware: on the event loop, or in a thread.
    return JsonResponse({**get_hub().stats(), "openings": dict(OPENINGS)})


# -- the JSON API ----------------------------------------------------------------


def login_required_json(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return _forbidden()
        return view(request, *args, **kwargs)

    return wrapper


def _positive_int(request: HttpRequest, name: str, default: int, maximum: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise ValueError(
            _("%(name)s must be an integer from 1 to %(maximum)s.") % {"name": name, "maximum": maximum}
        )
    return int(raw)


_FLAGS = {"1": True, "true": True, "0": False, "false": False}


@require_GET
@login_required_json
def notification_list(request: HttpRequest) -> HttpResponse:
    """
    ``GET api/``: the user's inbox, newest first (``archived=1``: what they
    archived instead).

    Query: ``unread=1`` for unread only, ``unseen=1`` for unseen only,
    ``page`` (from 1) or ``before`` (an id: the items older than it, the
    cursor pagination ``next_before`` gives), ``page_size`` (up to
    NOTIFICATIONS_MAX_PAGE_SIZE). The response carries ``cursor``: connect
    the stream with it to receive everything after this list.
    """
    try:
        page = _positive_int(request, "page", 1, 1_000_000)
        size = _positive_int(request, "page_size", conf.PAGE_SIZE, conf.MAX_PAGE_SIZE)
        unread, unseen, archived = (_flag(request, name) for name in ("unread", "unseen", "archived"))
        before = _positive_int(request, "before", 0, 2**63 - 1)
    except ValueError as exc:
        return error(400, str(exc))
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # noqa: S101  # narrows the type for mypy; checked just before
    cursor = _page_cursor()
    rows = api.inbox(user, archived=archived)
    if unread:
        rows = rows.unread()
    if unseen:
        rows = inbox.unseen(rows, user.pk)
    if before:
        rows, start = rows.filter(id__lt=before), 0
    else:
        start = (page - 1) * size
    items = list(rows.order_by("-id")[start : start + size + 1])
    prepare(items)
    has_next = len(items) > size
    unread_total, unseen_total = api.counts(user)
    return JsonResponse(
        {
            "results": [as_dict(n) for n in items[:size]],
            "page": page,
            "has_next": has_next,
            "next_before": items[size - 1].pk if has_next else None,
            "unread_count": unread_total,
            "unseen_count": unseen_total,
            "cursor": cursor,
        },
        json_dumps_params={"ensure_ascii": False},
    )


def _flag(request: HttpRequest, name: str) -> bool:
    value = _FLAGS.get(request.GET.get(name, "0").lower())
    if value is None:
        raise ValueError(_("%(name)s must be 1, 0, true or false.") % {"name": name})
    return value


def _page_cursor() -> str:
    """
    A cursor to pair with a list read next: everything it has is in the list
    (what commits in between may come both ways; clients drop repeated ids).
    """
    return str(Cursor.at(*position_now()))


@require_GET
@login_required_json
def unread_count(request: HttpRequest) -> HttpResponse:
    """``GET api/unread-count/``: ``{"unread_count": n}``."""
    return JsonResponse({"unread_count": api.unread_count(request.user)})  # type: ignore[arg-type]


def _own(request: HttpRequest, pk: int) -> int:
    if not api.visible(request.user, members=True).filter(pk=pk).exists():  # type: ignore[arg-type]
        raise Http404("No such notification.")
    return pk


def _state_change(
    change: Callable[..., list[int]],
    parse: Callable[[dict[str, Any]], Any] | None = None,
    *,
    with_counts: bool = False,
) -> Callable[..., HttpResponse]:
    """
    A POST view that applies ``change(user, [pk])`` to one notification the
    user may see (else 404); with ``parse``, also the value it reads from the
    request's fields (a ValueError from either is a 400 with its message).
    ``with_counts``: answer with the unseen count too.
    """

    @require_POST
    @login_required_json
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        try:
            _own(request, pk)
        except Http404:
            return error(404, _("No such notification."))
        try:
            values = () if parse is None else (parse(_body(request)),)
            ids = change(request.user, [pk], *values)
        except ValueError as exc:
            return error(400, str(exc))
        if with_counts:
            return JsonResponse(_counts(request, ids=ids))
        return JsonResponse({"ids": ids, "unread_count": api.unread_count(request.user)})  # type: ignore[arg-type]

    return view


def _counts(request: HttpRequest, **answer: Any) -> dict[str, Any]:
    """``answer`` with the user's unread and unseen counts after the change."""
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # noqa: S101  # narrows the type for mypy; checked before
    unread, unseen = api.counts(user)
    return {**answer, "unread_count": unread, "unseen_count": unseen}


mark_read = _state_change(api.mark_read)
mark_unread = _state_change(api.mark_unread)
delete = _state_change(api.delete)
archive = _state_change(api.archive, with_counts=True)
unarchive = _state_change(api.unarchive, with_counts=True)


def _body(request: HttpRequest) -> dict[str, Any]:
    """The request's fields: a JSON object body, or form fields."""
    if request.content_type == "application/json":
        body = _json_body(request)
        if not isinstance(body, dict):
            raise ValueError(_("The body must be a JSON object."))
        return body
    return {key: request.POST.get(key) for key in request.POST}


def _until(body: dict[str, Any]) -> datetime:
    """The snooze's ``until``: an ISO 8601 time (without an offset: the current time zone's)."""
    raw = body.get("until")
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(_("until is required: an ISO 8601 time such as 2030-01-31T09:00:00Z."))
    try:
        until = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(
            _("until %(value)r is not an ISO 8601 time such as 2030-01-31T09:00:00Z.")
            % {"value": raw[:40]}
        ) from None
    if timezone.is_naive(until):
        until = timezone.make_aware(until)
    return until


snooze = _state_change(api.snooze, _until, with_counts=True)


@require_POST
@login_required_json
def mark_seen(request: HttpRequest) -> HttpResponse:
    """
    ``POST api/seen/`` (JSON ``{"ids": [...]}``, or ``{"ids": "all"}`` with an
    optional ``through`` id: all shown up to it): mark them seen. Ids the user
    cannot see are ignored; answers with the ids that were unseen.
    """
    try:
        body = _body(request)
        ids, through = body.get("ids"), body.get("through")
        if ids != "all" and not (isinstance(ids, list) and all(_is_id(i) for i in ids)):
            raise ValueError(_('ids must be a list of notification ids, or "all".'))
        if through is not None and not _is_id(through):
            raise ValueError(_("through must be a notification id."))
    except ValueError as exc:
        return error(400, str(exc))
    seen = api.mark_seen(request.user, ids, through=through)  # type: ignore[arg-type]
    return JsonResponse(_counts(request, ids=seen))


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


@require_POST
@login_required_json
def archive_read(request: HttpRequest) -> HttpResponse:
    """``POST api/archive-read/``: archive everything read; answers with the ids archived."""
    ids = api.archive_all_read(request.user)  # type: ignore[arg-type]
    return JsonResponse(_counts(request, ids=ids))


@require_POST
@login_required_json
def mark_all_read(request: HttpRequest) -> HttpResponse:
    """``POST api/read-all/``: mark everything read; returns how many changed."""
    changed = api.mark_all_read(request.user)  # type: ignore[arg-type]
    return JsonResponse({"marked": changed, "unread_count": 0})



# -- preferences -------------------------------------------------------------------


@login_required_json
def preference_matrix(request: HttpRequest) -> HttpResponse:
    """
    ``GET api/preferences/``: every kind with, per channel, ``enabled`` and
    ``editable``. ``POST`` (JSON) changes cells: ``{"kind": "comment",
    "channel": "in_app", "enabled": false}``, or several as ``{"changes":
    [...]}``; all or nothing, and answers with the new matrix.
    """
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # noqa: S101  # narrows the type for mypy; checked just before
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return error(400, _("The body must be JSON."))
        if isinstance(body, dict) and "changes" in body:
            changes = body["changes"]
        else:
            changes = [body]
        if not isinstance(changes, list) or not changes:
            return error(400, _("changes must be a non-empty list of {kind, channel, enabled}."))
        try:
            preferences.set_preferences(user, changes)
        except ValueError as exc:
            return error(400, str(exc))
    elif request.method != "GET":
        response = error(
            405,
            _("Use %(allowed)s for this endpoint, not %(method)s.")
            % {"allowed": "GET or POST", "method": request.method},
        )
        response["Allow"] = "GET, POST"
        return response
    return JsonResponse({"kinds": preferences.matrix(user)}, json_dumps_params={"ensure_ascii": False})


def preference_form(request: HttpRequest) -> HttpResponse:
    """
    ``GET preferences/``: a page with ``{% notification_preferences %}``
    (template ``notifications/preferences_page.html``: override it to put the
    form in your site's layout), after the login page for a visitor.
    ``POST preferences/``: what that form sends.
    """
    if request.method in ("GET", "HEAD"):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return render(request, "notifications/preferences_page.html")
    if request.method != "POST":
        response = _wrong_method(request, "POST")
        response["Allow"] = "GET, POST"
        return response
    return _save_preference_form(request)


@login_required_json
def _save_preference_form(request: HttpRequest) -> HttpResponse:
    """
    The form of ``{% notification_preferences %}``, posted.
    Each ``cell`` ("kind:channel") it showed is on if it is also among the
    ``on`` values; only cells that changed are stored. Redirects back to
    ``next`` (or the referring page).
    """
    user = request.user
    assert isinstance(user, AbstractBaseUser)  # noqa: S101  # narrows the type for mypy; checked just before
    on = set(request.POST.getlist("on"))
    cells = {
        (row["key"], channel): cell
        for row in preferences.matrix(user)
        for channel, cell in row["channels"].items()
        if cell["editable"]
    }
    current = {key: cell["enabled"] for key, cell in cells.items()}
    changes: list[dict[str, Any]] = []
    for cell in request.POST.getlist("cell"):
        kind, _, channel = cell.partition(":")
        enabled = cell in on
        if current.get((kind, channel), enabled) != enabled:
            changes.append({"kind": kind, "channel": channel, "enabled": enabled})
    changes += _every_changes(request, cells, on)
    try:
        preferences.set_preferences(user, changes)
    except ValueError as exc:
        return error(400, str(exc))
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    return HttpResponseRedirect(target)


def _every_changes(
    request: HttpRequest, cells: dict[tuple[str, str], dict[str, Any]], on: set[str]
) -> list[dict[str, Any]]:
    """
    The form's digest choices that changed: each ``every`` value is
    "kind:channel:how", with the local time in ``at:kind:channel`` and one
    ``time_zone`` for the form. A cell switched off keeps only that.
    """
    zone = request.POST.get("time_zone") or None
    changes: list[dict[str, Any]] = []
    for value in request.POST.getlist("every"):
        kind, channel, every = (value.split(":") + ["", ""])[:3]
        cell = cells.get((kind, channel))
        if cell is None or f"{kind}:{channel}" not in on:
            continue
        at = request.POST.get(f"at:{kind}:{channel}") or "08:00"
        was = cell.get("every", "default")
        was = "default" if was == "digest" else was
        timed = every in ("daily", "weekly")
        if every == was and (not timed or (at == cell.get("at") and (zone or cell.get("time_zone")) == cell.get("time_zone"))):
            continue
        change: dict[str, Any] = {"kind": kind, "channel": channel, "every": every}
        if timed:
            change.update(at=at, time_zone=zone)
        changes.append(change)
    return changes


# -- email: one-click unsubscribe ------------------------------------------------


@csrf_exempt
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """
    ``unsubscribe/<token>/``, the link of every email's ``List-Unsubscribe``
    header (RFC 8058). ``GET`` asks to confirm and changes nothing (mail
    scanners follow links); ``POST`` (the mail client's one-click
    ``List-Unsubscribe=One-Click``, or the page's button) mutes that kind's
    email for the user the signed token names, without logging in.
    """
    from django.core import signing

    from .kinds import register
    from .mail import read_token

    try:
        user_id, key = read_token(token)
    except signing.BadSignature:
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=400)
    # One kind, or a digest's kinds joined by commas.
    kinds = [register.get(k) for k in key.split(",")]
    User = get_user_model()
    user = User._default_manager.filter(pk=user_id).first()
    if user is None or not all(k is not None and k.channel("email") is not None for k in kinds):
        return render(request, "notifications/unsubscribe.html", {"invalid": True}, status=404)
    declared = [k for k in kinds if k is not None]
    kind = declared[0]
    label = ", ".join(str(k.label) for k in declared)
    context = {"kind": kind, "label": label, "critical": any(k.critical for k in declared)}
    if request.method == "POST" and not context["critical"]:
        preferences.set_preferences(
            user, [{"kind": k.key, "channel": "email", "enabled": False} for k in declared]
        )
        return render(request, "notifications/unsubscribe.html", {**context, "done": True})
    if request.method not in ("GET", "HEAD", "POST"):
        response = error(
            405,
            _("Use %(allowed)s for this endpoint, not %(method)s.")
            % {"allowed": "GET or POST", "method": request.method},
        )
        response["Allow"] = "GET, POST"
        return response
    return render(request, "notifications/unsubscribe.html", context)


# -- Web Push ------------------------------------------------------------------------


def _json_body(request: HttpRequest) -> Any:
    try:
        return json.loads(request.body or b"null")
    except ValueError:
        raise ValueError(_("The body must be JSON.")) from None


@require_GET
def push_key(request: HttpRequest) -> HttpResponse:
    """``GET api/push/key/``: the VAPID public key a page subscribes with ("" when push is off)."""
    return JsonResponse({"public_key": conf.VAPID_PUBLIC_KEY})


@require_POST
@login_required_json
def push_subscribe(request: HttpRequest) -> HttpResponse:
    """``POST api/push/subscribe/`` (JSON ``PushSubscription.toJSON()``): this browser gets pushes."""
    from . import push

    user = request.user
    assert isinstance(user, AbstractBaseUser)  # noqa: S101  # narrows the type for mypy; checked just before
    try:
        subscription = push.subscribe(user, _json_body(request))
    except ValueError as exc:
        return error(400, str(exc))
    return JsonResponse({"id": subscription.pk}, status=201)


@require_POST
@login_required_json
def push_unsubscribe(request: HttpRequest) -> HttpResponse:
    """``POST api/push/unsubscribe/`` (JSON ``{"endpoint": ...}``): no more pushes to that browser."""
    from . import push

    user = request.user
    assert isinstance(user, AbstractBaseUser)  # noqa: S101  # narrows the type for mypy; checked just before
    try:
        body = _json_body(request)
        removed = push.unsubscribe(user, body.get("endpoint") if isinstance(body, dict) else None)
    except ValueError as exc:
        return error(400, str(exc))
    return JsonResponse({"removed": removed})


@csrf_exempt
@require_POST
def push_read(request: HttpRequest, token: str) -> HttpResponse:
    """
    ``POST api/push/read/<token>/``: the service worker marks the clicked
    notification read. The signed token (in the push) names the notification
    and its recipient, so no session or CSRF token is needed.
    """
    from django.core import signing

    from . import push

    try:
        nid, user_id = push.notification_of(token)
    except signing.BadSignature:
        return error(400, _("This read link is not valid."))
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None:
        return error(404, _("No such notification."))
    marked = api.mark_read(user, [nid])
    return JsonResponse({"marked": marked})
