"""
Sign-out: an open stream ends when Django would no longer authenticate it.

The invariant: a stream ends within one heartbeat once Django would no longer
authenticate its login (logout, expiry or deletion of the session, a password
change: the session auth hash, with SECRET_KEY_FALLBACKS as ``get_user``
applies them; the user deleted or made inactive), or once its user's
audiences changed (staff, groups): the client reconnects with the rights it
has now, or is refused. A change the app sees as it happens ends the streams
before anything more is handed out to them, in every process. With
signed-cookie sessions the server checks what it can see: the cookie's
signature and age, the password hash and ``is_active`` (a logout only
replaces the cookie in that browser).

The rule is here, once: ``may_stream`` (the user), ``signed_out`` (the
logins and users of open streams), ``audiences_changed`` (the rights a
stream opened with), ``on_check`` (what a check message ends). Every path
goes through it:

- Opening (``auth``): a user ``may_stream`` or is refused (the batched path
  and Django's ``get_user`` alike); the stream keeps its session's key and
  auth hash when its user is that login's, and its staff flag and groups
  (``users``: what a custom user model offers), for the checks below.
- The sweep: every half heartbeat, each hub passes all its streams to
  ``signed_out`` (``Hub._sweep_loop``), in three queries per CHUNK streams.
  Changes made another way than below (``is_staff`` or ``is_active`` edited,
  a session deleted, a queryset ``update()``) are found by it alone.
- A password set with ``set_password`` (``pre_save``: ``on_user_save``) and
  a group joined or left (``m2m_changed``: ``on_groups_changed``) call
  ``logins_changed``: after commit, a check is kept in the database
  (``keep_check``) and a check message goes to the user's hubs
  (``delivery.check_users``).
- A logout (``user_logged_out``: ``on_logged_out``) calls ``login_ended``: a
  check naming the session, kept in the logout's transaction and sent
  (``delivery.end_login``).
- At a hub, a check message (``Hub.on_message``) or a kept check, read in the
  snapshot of the rows committed after it (``login_checks``): ``on_check``
  says which streams end now (the logged-out login's) and whose logins the
  hub passes to ``signed_out`` before its next hand-out (``Hub._check_now``).
  The kept check orders the change before those rows in every process,
  whatever the channel layer does; the message only makes it sooner.

The away delivery (email, Web Push) is addressed to the user, not to a
login: it does not go through this module, but it sends nothing to a user
made inactive (``schedule.why_not``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, TypeVar

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model
from django.contrib.sessions.backends import signed_cookies
from django.db import router, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from .models import Audiences, ReadEvent
from .render import dumps
from .users import group_ids, groups_field, is_staff, user_id_from_text

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

CHUNK = 500

logger = logging.getLogger(__name__)

# A login check kept as a read event row: its payload starts with this, and
# it never reaches a client (the hub takes it, replays skip it).
CHECK_PAYLOAD_PREFIX = '{"login":'
NOT_KEPT = "Could not keep a login check; streams are checked through the channel layer."

# -- the rule --------------------------------------------------------------------


def may_stream(user: Any) -> TypeGuard[AbstractBaseUser]:
    """Whether this user (Django's answer for the request) may stream: logged in and active."""
    return bool(user.is_authenticated) and bool(getattr(user, "is_active", True))


def audiences_changed(who: Audiences, user: Any, groups: frozenset[int]) -> bool:
    """
    Whether ``user`` (the stream's user as the database has it now, in the
    groups ``groups``) may see other broadcasts than the stream opened with.
    """
    return is_staff(user) != who.is_staff or groups != frozenset(who.group_ids)


def signed_out(streams: Collection[Audiences]) -> tuple[set[str], set[Any]]:
    """
    Of these open streams, the logins (session keys) and the users (ids)
    whose streams must end, because Django would no longer authenticate the
    login (logout, expiry, deletion, a password change: the session auth hash,
    with SECRET_KEY_FALLBACKS as ``get_user`` applies them; the user deleted
    or made inactive), or because the user's rights changed since the stream
    opened (staff, groups): the client reconnects with fresh rights, or is
    refused. Signed-cookie sessions are checked for what the server can see:
    the cookie's signature and age, the password hash and ``is_active``.

    At most three queries per CHUNK streams for a whole process, whatever
    the number of streams.
    """
    ended = _ended_sessions({who.session_key for who in streams if who.session_key})
    User = get_user_model()
    ids = list({who.user_id for who in streams})
    users: dict[Any, Any] = {}
    for start in range(0, len(ids), CHUNK):
        users.update(User._default_manager.in_bulk(ids[start : start + CHUNK]))
    groups = group_ids(users)
    gone: set[Any] = set()
    logins: dict[Any, _Login] = {}
    for who in streams:
        user = users.get(who.user_id)
        if user is None or not may_stream(user):
            gone.add(who.user_id)
            continue
        if who.session_key is not None and who.session_hash is not None:
            login = logins.get(who.user_id)
            if login is None:
                login = logins[who.user_id] = _Login(user)
            if not login.verifies(who.session_hash):
                ended.add(who.session_key)
        if audiences_changed(who, user, groups.get(who.user_id, frozenset())):
            if who.session_key is not None:
                ended.add(who.session_key)
            else:
                gone.add(who.user_id)
    return ended, gone


class _Login:
    """A user's current session auth hashes, computed once per sweep."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.current: str | None = None
        self.fallbacks: list[str] | None = None

    def verifies(self, session_hash: str) -> bool:
        """Would ``get_user`` accept a session holding ``session_hash``?"""
        if not hasattr(self.user, "get_session_auth_hash"):
            return True
        if self.current is None:
            self.current = self.user.get_session_auth_hash()
        if constant_time_compare(session_hash, self.current):
            return True
        if self.fallbacks is None:
            self.fallbacks = list(self.user.get_session_auth_fallback_hash())
        return any(constant_time_compare(session_hash, other) for other in self.fallbacks)


def _ended_sessions(keys: set[str]) -> set[str]:
    """The session keys that no longer name a live session."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if hasattr(store, "get_model_class"):  # database-backed sessions
        model = store.get_model_class()
        now = timezone.now()
        ordered = list(keys)
        alive: set[str] = set()
        for start in range(0, len(ordered), CHUNK):
            alive.update(
                model.objects.filter(
                    session_key__in=ordered[start : start + CHUNK], expire_date__gt=now
                ).values_list("session_key", flat=True)
            )
        return keys - alive
    if issubclass(store, signed_cookies.SessionStore):
        # The key is the cookie itself: its signature and age are checkable,
        # a logout is not (the old cookie stays valid for Django too).
        return {key for key in keys if SESSION_KEY not in store(session_key=key).load()}
    return {key for key in keys if not store().exists(key)}


# -- at a hub: check messages ------------------------------------------------------


class Stream(Protocol):
    """An open stream as a hub holds it (``hub.Subscription``)."""

    who: Audiences


S = TypeVar("S", bound=Stream)


def on_check(
    message: Mapping[str, Any], by_user: Mapping[Any, Collection[S]]
) -> tuple[list[S], set[Any]]:
    """
    What a check message (``delivery.check_users``, ``delivery.end_login``)
    or a kept check (``login_checks``) asks of a hub whose open streams are
    ``by_user``: the streams that end now (a logout names its session, or
    its ``session_tag``: that login's streams), and the users whose streams'
    logins go through ``signed_out`` before anything more is handed out to
    them.
    """
    user = str(message.get("user"))  # (a user's pk, as text)
    session = message.get("session")
    tag = message.get("session_tag")
    ending: list[S] = []
    to_check: set[Any] = set()
    for uid in {user, user_id_from_text(user)}:
        subs = by_user.get(uid)
        if not subs:
            continue
        if session:  # a logout: that login's streams end now
            ending.extend(s for s in subs if s.who.session_key == session)
        elif tag:
            ending.extend(s for s in subs if s.who.session_key and _tagged(s.who.session_key, tag))
        else:
            to_check.add(uid)
    return ending, to_check


def session_tag(session_key: str) -> str:
    """What a kept logout names its session by: a keyed hash, never the key itself."""
    digest = salted_hmac("notifications.signout.session", session_key, algorithm="sha256")
    return digest.hexdigest()[:32]


def _tagged(session_key: str, tag: str) -> bool:
    return constant_time_compare(session_tag(session_key), tag)


def keep_check(user_ids: Collection[Any], session_key: str | None = None) -> None:
    """
    Keep a login check for each of ``user_ids`` as a read event row (one
    insert for them all), in the current transaction of the notification
    tables' database: every hub reads it in the same snapshot as the rows
    committed after it (``login_checks``), so it ends or checks that user's
    streams before those rows go out, in every process, whatever the channel
    layer does. With ``session_key`` (a logout), that login's streams end.
    A failure is logged, never raised: the change stands, and the channel
    layer and the sweep still tell the hubs.
    """
    payload = dumps({"login": session_tag(session_key) if session_key else ""})
    using = router.db_for_write(ReadEvent)
    try:
        # A savepoint inside a transaction (a logout under ATOMIC_REQUESTS): a
        # failure here leaves the rest of that transaction usable.
        with transaction.atomic(using=using):
            ReadEvent.objects.using(using).bulk_create(
                [ReadEvent(user_id=uid, payload=payload) for uid in user_ids], batch_size=1000
            )
    except Exception:
        logger.exception(NOT_KEPT)


def login_checks(
    reads: Iterable[tuple[Any, int, str]],
) -> tuple[list[tuple[Any, int, str]], list[dict[str, Any]]]:
    """
    Split the read events a hub read (user, finality key, JSON) into those
    for its clients and the kept login checks, as check messages.
    """
    kept: list[tuple[Any, int, str]] = []
    checks: list[dict[str, Any]] = []
    for user_id, key, payload in reads:
        if not payload.startswith(CHECK_PAYLOAD_PREFIX):
            kept.append((user_id, key, payload))
            continue
        tag = json.loads(payload)["login"]
        message = {"type": "notifications.check", "user": str(user_id)}
        if tag:
            message["session_tag"] = tag
        checks.append(message)
    return kept, checks


# -- the changes the app sees as they happen ----------------------------------------


def logins_changed(user_ids: Collection[Any]) -> None:
    """
    These users' logins or rights changed in the current transaction (a
    password, groups): once it commits, their hubs check their streams'
    logins before they hand out anything more.
    """
    from . import delivery

    ids = list(user_ids)

    def committed() -> None:
        # After the change (a password hash checked before it committed
        # would still verify), before anything the caller commits next.
        keep_check(ids)
        delivery.check_users(ids)

    using = router.db_for_write(get_user_model())  # the users' database: its commit is the change
    transaction.on_commit(committed, using=using)


def login_ended(user_id: Any, session_key: str | None) -> None:
    """
    A login is ending (a logout): its streams end at once. Without a session
    key (signed-cookie sessions), the user's logins are checked instead.
    """
    from . import delivery

    keep_check([user_id], session_key)  # with the session's end, in its transaction
    delivery.end_login(user_id, session_key)


def on_user_save(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """
    A password set with ``set_password`` (forms, admin, ``changepassword``):
    once it commits, the user's hubs check their streams' logins before they
    hand out anything more.
    """
    if getattr(instance, "_password", None) is None or instance.pk is None:
        return
    logins_changed([instance.pk])


def on_groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: Any, **kwargs: Any
) -> None:
    """A user joined or left groups: their streams' audiences are checked at once."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        users = [instance.pk]
    elif pk_set:
        users = list(pk_set)
    else:  # group.user_set.clear(): the members are gone from the table already
        return
    logins_changed(users)


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """
    A logout: the streams of that session end at once (the session is being
    flushed), before anything more is handed out to them.
    """
    if user is None or getattr(user, "pk", None) is None:
        return
    session = getattr(request, "session", None)
    key = getattr(session, "session_key", None)
    login_ended(user.pk, key)


def connect() -> None:
    """Connect the receivers above (from ``AppConfig.ready``)."""
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import m2m_changed, pre_save

    User = get_user_model()
    pre_save.connect(on_user_save, sender=User, dispatch_uid="notifications.user_save")
    user_logged_out.connect(on_logged_out, dispatch_uid="notifications.logged_out")
    groups = groups_field()
    if groups is not None:  # (a custom user model may have no groups)
        m2m_changed.connect(
            on_groups_changed,
            sender=groups.remote_field.through,
            dispatch_uid="notifications.groups",
        )
