"""
Who is opening a stream, for many requests at once.

A stream's request is authenticated from its session cookie on a database lane.
When many streams open together (a deploy, a network blip: every browser
reconnects at once), the requests waiting are authenticated together: one
query for their sessions, one for their users, one for their groups, instead
of three per request.

The batched path covers the common set-up: database-backed sessions
(``db``, ``cached_db``) and backends whose ``get_user`` is ``ModelBackend``'s.
Anything else, and any request whose session hash does not verify at once
(a password change, a rotated secret key: Django may flush or cycle the
session), goes through ``django.contrib.auth.get_user`` one by one, so the
outcome is always exactly Django's.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import (
    BACKEND_SESSION_KEY,
    HASH_SESSION_KEY,
    SESSION_KEY,
    get_user,
    get_user_model,
    load_backend,
)
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from .models import Audiences

logger = logging.getLogger(__name__)

CHUNK = 500


def stream_audiences(requests: list[HttpRequest]) -> list[Audiences | Exception | None]:
    """
    For each request, what its user may see, or None when it may not stream
    (not logged in, inactive, session ended), or the ``DatabaseError`` that
    stopped only this request. Runs on a database lane.
    """
    results: list[Audiences | Exception | None] = [None] * len(requests)
    engine = import_module(settings.SESSION_ENGINE)
    store = engine.SessionStore
    slow: list[int] = []
    if not hasattr(store, "get_model_class"):
        slow = list(range(len(requests)))
    else:
        found = _batched(requests, store, slow)
        for index, (user, session_key) in found.items():
            results[index] = Audiences(
                user.pk, bool(getattr(user, "is_staff", False)), frozenset(), session_key
            )
        _add_groups([who for who in results if isinstance(who, Audiences)])
    for index in slow:
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


def _batched(requests: list[HttpRequest], store: Any, slow: list[int]) -> dict[int, tuple[Any, str]]:
    """The requests whose user the batched path settles: index -> (user, session key)."""
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
    found: dict[int, tuple[Any, str]] = {}
    for key, (user_id, backend, session_hash) in wanted.items():
        user = users.get(user_id)
        if user is None or not backend.user_can_authenticate(user):
            continue
        if hasattr(user, "get_session_auth_hash") and not (
            session_hash and constant_time_compare(session_hash, user.get_session_auth_hash())
        ):
            slow.extend(by_key[key])  # get_user() flushes it, or cycles it on a fallback key
            continue
        if not user.is_authenticated or not getattr(user, "is_active", True):
            continue
        for index in by_key[key]:
            found[index] = (user, key)
    return found


def _add_groups(audiences: list[Audiences]) -> None:
    """Fill in the group ids of these users (one query per CHUNK users)."""
    ids = list({who.user_id for who in audiences})
    groups: dict[Any, set[int]] = {}
    for start in range(0, len(ids), CHUNK):
        pairs = Group.objects.filter(user__pk__in=ids[start : start + CHUNK]).values_list(
            "user__pk", "id"
        )
        for user_id, group_id in pairs:
            groups.setdefault(user_id, set()).add(group_id)
    for who in audiences:
        who.group_ids = frozenset(groups.get(who.user_id, ()))


def _one(request: HttpRequest, engine: Any) -> Audiences | None:
    """Django's own ``get_user``, for what the batched path does not cover."""
    if not hasattr(request, "session"):  # the stream works without SessionMiddleware
        request.session = engine.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
    user = get_user(request)
    if not user.is_authenticated or not user.is_active:
        return None
    return Audiences.of(user, request.session.session_key)
