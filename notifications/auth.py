"""
Who may stream, when a stream opens and for as long as it stays open.

A stream's user is whoever the project's authentication says: ``await
request.auser()`` after its middleware (``stream_user``). When that answer can
only come from the session cookie (Django's own AuthenticationMiddleware, and
nothing in the request has read the session or asked for the user yet), it is
computed on a database lane together with every other stream opening at that
moment: one query for their sessions, one for their users, one for their
groups, instead of three per request (a deploy or a network blip reconnects
every browser at once).

The batched path covers the common set-up: database-backed sessions
(``db``, ``cached_db``) and backends whose ``get_user`` is ``ModelBackend``'s.
Anything else, and any request whose session hash does not verify at once
(a password change, a rotated secret key: Django may flush or cycle the
session), goes through ``django.contrib.auth.get_user`` one by one, so the
outcome is always exactly Django's.

Who may stream is ``signout.may_stream``'s answer; while a stream is open,
``signout`` decides when it ends.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from importlib import import_module
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user,
    get_user_model,
    load_backend,
)
from django.contrib.auth import middleware as auth_middleware
from django.contrib.auth.backends import ModelBackend
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from . import db, signout
from .models import Audiences
from .users import group_ids, is_staff

logger = logging.getLogger(__name__)

CHUNK = 500


class Undecided:
    """The batched path alone could not say (``stream_audiences(..., batched_only=True)``)."""

    def __repr__(self) -> str:
        return "UNDECIDED"


UNDECIDED = Undecided()


async def stream_user(request: HttpRequest) -> Audiences | None:
    """
    What the user opening this stream may see, or None when they may not
    stream (not logged in, inactive). The user is ``await request.auser()``'s
    answer after the project's middleware; without authentication middleware
    (a handler that skips the middleware), the session cookie's, as Django's
    ``get_user`` gives it. Raises ``DatabaseError`` when the database is down.
    """
    if _session_cookie_decides(request):
        return await _open_batched(request)
    auser = getattr(request, "auser", None)
    if auser is not None:
        user = await auser()
    else:  # a middleware of the project set request.user alone
        user = await sync_to_async(_resolved, thread_sensitive=True)(request)
    return await db.run(_audiences, request, user)


def stream_user_in_thread(
    request: HttpRequest,
    loop: asyncio.AbstractEventLoop,
    prefetched: Audiences | Exception | Undecided | None = UNDECIDED,
) -> Audiences | None:
    """
    ``stream_user`` for a request whose middleware ran in this worker thread
    (``notifications.asgi.StreamHandler``), answered without waiting on the
    event loop ``loop``: ``request.user`` as the project's middleware set it,
    or, when the session cookie alone decides, ``prefetched`` (``prefetch``'s
    answer for the request) or else a batch on a database lane with the other
    threads' openings.
    """
    if _session_cookie_decides(request):
        if isinstance(prefetched, Exception):
            raise prefetched
        if not isinstance(prefetched, Undecided):
            return prefetched
        return _open_batched.call_from_thread(request, loop)
    if hasattr(request, "user"):
        user = _resolved(request)
    else:  # a middleware of the project set request.auser alone
        user = async_to_sync(request.auser)()
    return _audiences(request, user)


def stream_user_settled(request: HttpRequest, prefetched: Any) -> bool:
    """
    Whether ``prefetched`` (``prefetch``'s answer, an ``Audiences`` or None)
    is the request's answer after the project's middleware ran: the session
    cookie still decides, so ``stream_user_in_thread`` would take it without
    asking the database.
    """
    return not isinstance(prefetched, (Undecided, Exception)) and _session_cookie_decides(request)


def _audiences(request: HttpRequest, user: Any) -> Audiences | None:
    """What ``user``, the request's user, may see; None when they may not stream."""
    if not signout.may_stream(user):
        return None
    key = session_hash = None
    session = getattr(request, "session", None)
    if session is not None and session.get(SESSION_KEY) == user._meta.pk.value_to_string(user):
        # The user is the session's login: the stream ends with it.
        key, session_hash = session.session_key, session.get(HASH_SESSION_KEY)
    return Audiences.of(user, key, session_hash)


def _resolved(request: HttpRequest) -> Any:
    user = request.user
    user.is_authenticated  # noqa: B018 (evaluates a lazy user here, in a thread)
    return user


def _session_cookie_decides(request: HttpRequest) -> bool:
    """
    True when ``request.auser()`` could only answer from the session cookie,
    exactly as ``stream_audiences`` does: Django's own ``auser``, not asked
    yet, and a session that nothing in this request has read or changed.
    """
    auser = getattr(request, "auser", None)
    if auser is None:
        return not hasattr(request, "user")  # no authentication middleware ran
    stock = isinstance(auser, partial) and auser.func is auth_middleware.auser
    if not stock or hasattr(request, "_acached_user"):
        return False
    session = getattr(request, "session", None)
    return (
        session is not None
        and type(session) is import_module(settings.SESSION_ENGINE).SessionStore
        and not session.accessed
        and not session.modified
        and session.session_key == request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    )


def stream_audiences(
    requests: list[HttpRequest], batched_only: bool = False
) -> list[Audiences | Exception | Undecided | None]:
    """
    For each request, what its session cookie's user may see, or None when it
    may not stream (not logged in, inactive, session ended), or the
    ``DatabaseError`` that stopped only this request. Runs on a database lane.
    With ``batched_only``, a request the batched path does not settle gets
    ``UNDECIDED`` instead of going through ``get_user`` (which may change its
    session).
    """
    results: list[Audiences | Exception | Undecided | None] = [None] * len(requests)
    engine = import_module(settings.SESSION_ENGINE)
    store = engine.SessionStore
    slow: list[int] = []
    if not hasattr(store, "get_model_class"):
        slow = list(range(len(requests)))
    else:
        found = _batched(requests, store, slow)
        for index, (user, session_key, session_hash) in found.items():
            results[index] = Audiences(
                user.pk,
                is_staff(user),
                frozenset(),
                session_key,
                session_hash,
            )
        audiences = [who for who in results if isinstance(who, Audiences)]
        groups = group_ids({who.user_id for who in audiences})
        for who in audiences:
            who.group_ids = groups.get(who.user_id, frozenset())
    for index in slow:
        if batched_only:
            results[index] = UNDECIDED
            continue
        try:
            results[index] = _one(requests[index], engine)
        except DatabaseError as exc:
            results[index] = exc  # this request alone is refused (503)
        except Exception:
            # Django would answer 500 (a session naming a malformed user id):
            # the stream treats the request as not logged in.
            logger.warning("Stream refused: its session could not be read.", exc_info=True)
            results[index] = None
    return results


# Streams opening at the same moment are authenticated together; a reconnect
# storm holds one database connection per lane instead of one per client.
_open_batched = db.Batched(stream_audiences)
_prefetch_batched = db.Batched(partial(stream_audiences, batched_only=True))


async def prefetch(request: HttpRequest) -> Audiences | Exception | Undecided | None:
    """
    On the event loop, before the project's middleware runs in a worker
    thread: the answer the batched path would give for this request's session
    cookie, computed with every other stream opening at that moment. The
    thread uses it only if, after the middleware, the cookie still decides
    (``stream_user_in_thread``); UNDECIDED when there is nothing to batch.
    A ``DatabaseError`` is returned, not raised: the middleware may still
    answer the request on its own.
    """
    if not _session_engine_is_batched():
        return UNDECIDED
    if not request.COOKIES.get(settings.SESSION_COOKIE_NAME):
        return None  # no session: anonymous, as stream_audiences says without a query
    try:
        return await _prefetch_batched(request)
    except DatabaseError as exc:
        return exc


def _session_engine_is_batched() -> bool:
    return hasattr(import_module(settings.SESSION_ENGINE).SessionStore, "get_model_class")


def _batched(
    requests: list[HttpRequest], store: Any, slow: list[int]
) -> dict[int, tuple[Any, str, str | None]]:
    """
    The requests whose user the batched path settles:
    index -> (user, session key, session auth hash).
    """
    by_key: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if not key or not 8 <= len(key) <= 40 or "\x00" in key:
            continue  # no session Django's stores could hold: anonymous
        if key.isascii() and key.isalnum():  # as Django makes them
            by_key.setdefault(key, []).append(index)
        else:
            slow.append(index)
    model = store.get_model_class()
    now = timezone.now()
    sessions: dict[str, str] = {}
    keys = list(by_key)
    for start in range(0, len(keys), CHUNK):
        sessions.update(
            model.objects.filter(session_key__in=keys[start : start + CHUNK], expire_date__gt=now)
            .values_list("session_key", "session_data")
            .iterator()
        )
    User = get_user_model()
    wanted: dict[str, tuple[Any, Any, str | None]] = {}  # key -> (user id, backend, hash)
    for key, data in sessions.items():
        decoded = store(key).decode(data)
        try:
            user_id = User._meta.pk.to_python(decoded[SESSION_KEY])
            backend_path = decoded[BACKEND_SESSION_KEY]
        except KeyError:
            continue  # a session without a login: anonymous, as get_user() decides
        except Exception:
            slow.extend(by_key[key])  # let Django say what a malformed user id means
            continue
        if backend_path not in settings.AUTHENTICATION_BACKENDS:
            continue
        backend = load_backend(backend_path)
        if type(backend).get_user is not ModelBackend.get_user:
            slow.extend(by_key[key])
            continue
        wanted[key] = (user_id, backend, decoded.get(HASH_SESSION_KEY))
    users: dict[Any, Any] = {}
    ids = list({user_id for user_id, _, _ in wanted.values()})
    for start in range(0, len(ids), CHUNK):
        users.update(User._default_manager.in_bulk(ids[start : start + CHUNK]))
    found: dict[int, tuple[Any, str, str | None]] = {}
    for key, (user_id, backend, session_hash) in wanted.items():
        user = users.get(user_id)
        if user is None or not backend.user_can_authenticate(user):
            continue
        if hasattr(user, "get_session_auth_hash") and not (
            session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())
        ):
            slow.extend(by_key[key])  # get_user() flushes it, or cycles it on a fallback key
            continue
        if not signout.may_stream(user):
            continue
        for index in by_key[key]:
            found[index] = (user, key, session_hash)
    return found


def _one(request: HttpRequest, engine: Any) -> Audiences | None:
    """Django's own ``get_user``, for what the batched path does not cover."""
    if not hasattr(request, "session"):  # the stream works without SessionMiddleware
        request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    user = get_user(request)
    if not signout.may_stream(user):
        return None
    session = request.session
    return Audiences.of(user, session.session_key, session.get(HASH_SESSION_KEY))
