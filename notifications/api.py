"""
The functions other apps call to send notifications and change their state.

    from notifications import api
    api.notify(user, "commented on your post", actor=request.user, target=post)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar, overload

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import EmptyResultSet
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Count, Q
from django.db.models.signals import post_save
from django.db.models.sql import InsertQuery
from django.utils import timezone
from django.utils.translation import gettext

from . import delivery, grouping, links, preferences, schedule
from . import inbox as states
from .conf import conf
from .kinds import IN_APP, Kind, get_kind
from .models import (
    Audience,
    Audiences,
    BroadcastReceipt,
    InboxState,
    Level,
    Notification,
    NotificationQuerySet,
    PublishKey,
    ReadEvent,
)
from .render import dumps
from .signals import notifications_created, notifications_read
from .users import members

__all__ = [
    "archive",
    "archive_all_read",
    "broadcast",
    "delete",
    "inbox",
    "mark_all_read",
    "mark_read",
    "mark_seen",
    "mark_unread",
    "notify",
    "notify_on_save",
    "restore",
    "snooze",
    "unarchive",
    "unread_count",
    "unseen_count",
    "visible",
]

Recipient = AbstractBaseUser | Group | Iterable[AbstractBaseUser]


def notify(
    recipient: Recipient,
    verb: str,
    *,
    actor: models.Model | None = None,
    action_object: models.Model | None = None,
    target: models.Model | None = None,
    description: str = "",
    level: str = Level.INFO,
    url: str = "",
    data: Mapping[str, Any] | None = None,
    timestamp: datetime | None = None,
    kind: str | None = None,
    key: str | None = None,
) -> list[Notification]:
    """
    Notify one user, a ``Group`` (its members) or a queryset / iterable of users.

    ``kind`` names a declared kind (see kinds.py): users who muted it in-app
    get no row (unless it is critical), and a grouped kind folds into the
    recipient's open group of the same key. Returns the rows written, which
    may be none when every recipient muted the kind.

    Recipients who have the kind's ``email`` or ``push`` channel on get a
    delivery scheduled in the same transaction (see schedule.py): sent at
    once, or after the channel's delay if the notification is still unread.
    Email and push follow in-app: a recipient who muted the kind in the app
    gets no row, so neither (see preferences.py).

    Writes one row per recipient in one transaction and returns them. A group
    or a queryset fans out inside the database (one ``INSERT ... SELECT``,
    PostgreSQL and SQLite 3.35+); other recipients, or other backends, take
    one ``bulk_create``. Open streams are poked after the transaction
    commits; if it rolls back, nothing is ever shown. Raises ``ValueError`` for
    an unknown level, a ``url`` (or ``data["url"]``, ``data["actions"][i]["href"]``)
    that is not relative or http(s) (see links.py), ``data`` that is not a JSON
    object within the size limit,
    or a recipient that is not a user, a group or users (or names nobody), and
    an unknown ``kind`` (naming the declared ones).

    ``key`` makes the call idempotent (a task queue that retries): a recipient
    who got a notification with the same ``key`` within
    NOTIFICATIONS_IDEMPOTENCY_WINDOW gets nothing new, and that existing row is
    returned among the rows. Decided by a unique constraint, so two racing
    calls in two processes write one row per recipient.
    """
    declared = None if kind is None else get_kind(kind)
    _check_key(key)
    users = _recipients(recipient)
    try:
        fields = _fields(verb, actor, action_object, target, description, level, url, data)
    except ValueError:
        # As when the ids were read first: naming nobody is the error to report.
        if isinstance(users, models.QuerySet) and not users.exists():
            raise NoRecipients(_NOBODY) from None
        raise
    if key is not None:
        return _write_once(users, fields, timestamp or timezone.now(), declared, key)
    return _write_kind(users, fields, timestamp or timezone.now(), declared)


class NoRecipients(ValueError):
    """``notify()`` was given a recipient that names nobody."""


def _check_key(key: Any) -> None:
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 200):
        raise ValueError("key must be a non-empty string of at most 200 characters, or None.")


def _write_once(
    users: list[int] | models.QuerySet[Any],
    fields: dict[str, Any],
    created: datetime,
    kind: Kind | None,
    key: str,
) -> list[Notification]:
    """
    ``_write_kind`` for the users who do not hold ``key`` yet (see
    ``PublishKey``), in one transaction: take the key for each user (an
    insert that ignores conflicts, so a concurrent holder wins and this
    waits for it), write for those taken here, give back the keys of those
    who got no row (muted), and return the rows written with the rows the
    other holders wrote.
    """
    ids = list(users.values_list("pk", flat=True)) if isinstance(users, models.QuerySet) else users
    if not ids:
        raise NoRecipients(_NOBODY)
    db = router.db_for_write(Notification)
    token = uuid.uuid4().hex
    now = timezone.now()
    keys = PublishKey.objects.using(db)
    with transaction.atomic(using=db):
        expired = now - timedelta(seconds=conf.IDEMPOTENCY_WINDOW)
        keys.filter(user_id__in=ids, key=key, created__lt=expired).delete()
        keys.bulk_create(
            [PublishKey(user_id=uid, key=key, created=now, claim=token) for uid in ids],
            ignore_conflicts=True,
        )
        held = list(keys.filter(user_id__in=ids, key=key).values_list("pk", "user_id", "claim", "notification_id"))
        mine = [uid for _, uid, claim, _ in held if claim == token]
        rows = _write_kind(mine, fields, created, kind) if mine else []
        by_user = {row.recipient_id: row.pk for row in rows}
        taken = [
            PublishKey(pk=pk, notification_id=by_user[uid])
            for pk, uid, claim, _ in held
            if claim == token and uid in by_user
        ]
        keys.bulk_update(taken, ["notification"])
        # A recipient who got no row here (the kind muted in the app) holds no
        # key: a later call with it, once they listen again, notifies them.
        keys.filter(pk__in=[pk for pk, uid, claim, _ in held if claim == token and uid not in by_user]).delete()
        earlier = [nid for _, _, claim, nid in held if claim != token and nid is not None]
    existing = list(Notification.objects.using(db).filter(pk__in=earlier))
    return sorted([*rows, *existing], key=lambda n: n.pk)


def _write_kind(
    users: list[int] | models.QuerySet[Any],
    fields: dict[str, Any],
    created: datetime,
    kind: Kind | None,
) -> list[Notification]:
    """
    ``_write`` for a notification of ``kind``: store the kind's key, leave out
    the users who muted it in-app, and put each row in its user's open group
    of the kind's key (if it groups). Returns [] when every user muted it.
    """
    if kind is None:
        return _write(users, fields, created)
    fields["kind"] = kind.key
    key = grouping.group_key(kind, Notification(**fields))
    if key:
        fields["group_key"], fields["group"] = key, grouping.new_group()
    receiving = preferences.receiving(users, kind, IN_APP)
    if key and isinstance(receiving, list) and receiving:
        receiving = _as_queryset(receiving)  # the INSERT ... SELECT finds each user's group
    try:
        return _write(receiving, fields, created, (key, created - kind.window) if key else None)
    except NoRecipients:
        if isinstance(users, models.QuerySet) and not users.exists():
            raise
        return []  # every recipient muted this kind


def _write(
    users: list[int] | models.QuerySet[Any],
    fields: dict[str, Any],
    created: datetime,
    window: tuple[str, datetime] | None = None,
) -> list[Notification]:
    """
    Write one row of ``fields`` per user, in one transaction; poke after commit.
    With ``window`` (group key, window start), each row joins its user's open
    group of that key (see grouping.py).
    """
    key = window[0] if window else ""
    if isinstance(users, models.QuerySet):
        db = router.db_for_write(Notification)
        with transaction.atomic(using=db):
            if key:
                grouping.lock(db, key)
            rows, fanned_out = _fan_out(users, db, created, fields, window)
            if not rows:
                raise NoRecipients(_NOBODY)
            _saved(rows, db)
            schedule.schedule(rows)
            transaction.on_commit(lambda: _created(rows, fanned_out), using=db)
        return rows
    user_ids = users
    if not user_ids:
        raise NoRecipients(_NOBODY)
    db = router.db_for_write(Notification)
    with transaction.atomic(using=db):
        groups = grouping.open_groups(user_ids, *window, db) if window else {}
        rows = [
            Notification(recipient_id=uid, audience=Audience.USER, timestamp=created, **fields)
            for uid in user_ids
        ]
        for row in rows:
            row.group = groups.get(row.recipient_id, row.group)  # type: ignore[arg-type]
        rows = Notification.objects.using(db).bulk_create(rows)
        _saved(rows, db)
        schedule.schedule(rows)
        transaction.on_commit(lambda: _created(rows, user_ids), using=db)
    return rows


def _saved(rows: list[Notification], db: str) -> None:
    """
    Send ``post_save`` (created) once per row, as ``save()`` would: the rows are
    written in bulk, and projects coming from django-notifications-hq connect
    receivers to it.
    """
    if post_save.has_listeners(Notification):
        for row in rows:
            post_save.send(
                sender=Notification, instance=row, created=True, update_fields=None,
                raw=False, using=db,
            )


def broadcast(
    verb: str,
    *,
    audience: Group | Literal["staff", "all"] | None = None,
    expires_at: datetime | None = None,
    actor: models.Model | None = None,
    action_object: models.Model | None = None,
    target: models.Model | None = None,
    description: str = "",
    level: str = Level.INFO,
    url: str = "",
    data: Mapping[str, Any] | None = None,
) -> Notification:
    """
    Create one broadcast row seen by everyone (``None`` or ``"all"``), the
    members of a ``Group``, or staff (``"staff"``), until ``expires_at`` if given.
    Raises ``ValueError`` for any other audience, and as ``notify()`` does.
    """
    group = None
    if audience is None or audience == "all":
        kind = Audience.ALL
    elif audience == "staff":
        kind = Audience.STAFF
    elif isinstance(audience, Group):
        if audience.pk is None:
            raise ValueError("The broadcast's Group must be saved first.")
        kind, group = Audience.GROUP, audience
    else:
        raise ValueError(
            f"Unknown broadcast audience {audience!r}: use None or 'all' (everyone), "
            "'staff', or a django.contrib.auth Group."
        )
    if expires_at is not None and not isinstance(expires_at, datetime):
        raise ValueError("expires_at must be a datetime or None.")
    fields = _fields(verb, actor, action_object, target, description, level, url, data)
    row = Notification(audience=kind, audience_group=group, expires_at=expires_at, **fields)
    db = router.db_for_write(Notification, instance=row)
    with transaction.atomic(using=db):
        row.save(force_insert=True, using=db)
        transaction.on_commit(lambda: _created([row], None), using=db)
    return row


def visible(user: AbstractBaseUser, *, members: bool = False) -> NotificationQuerySet:
    """
    Everything ``user`` may see (personal and broadcasts), annotated with
    ``is_unread``; a group as its newest row, or with ``members`` its older
    members too (what a change of state may name: a link sent before a newer
    member came).
    """
    return Notification.objects.for_audiences(Audiences.of(user), members=members)


def unread_count(user: AbstractBaseUser) -> int:
    """How many notifications ``user`` has not read, broadcasts included."""
    return visible(user).unread().count()


def inbox(user: AbstractBaseUser, *, archived: bool = False) -> NotificationQuerySet:
    """
    ``visible(user)`` without what ``user`` archived or snoozed until later,
    annotated with ``is_seen`` and ``is_archived`` (see inbox.py); with
    ``archived``, only what they archived instead.
    """
    rows = states.with_states(visible(user), user.pk)
    if archived:
        return rows.filter(states.archived_q(user.pk))
    return states.in_inbox(rows, user.pk, timezone.now())


def unseen_count(user: AbstractBaseUser) -> int:
    """What the badge shows: the unread items of ``user``'s inbox they have not seen."""
    return counts(user)[1]


def counts(user: AbstractBaseUser) -> tuple[int, int]:
    """``unread_count(user)`` and ``unseen_count(user)``, in one query."""
    unread = Q(is_unread=True)
    unseen = unread & ~states.seen_q(user.pk) & states.inbox_q(user.pk, timezone.now())
    found = visible(user).aggregate(unread=Count("id", filter=unread), unseen=Count("id", filter=unseen))
    return found["unread"], found["unseen"]


def mark_seen(
    user: AbstractBaseUser, ids: Iterable[int] | Literal["all"], *, through: int | None = None
) -> list[int]:
    """
    Mark these notifications of ``user``'s inbox seen (``"all"``: everything
    in it, up to id ``through`` if given, e.g. what a list showed) and
    return the ids that were unseen. Read state and scheduled email or push
    stay as they are: seen is not read.
    """
    rows = states.unseen(inbox(user), user.pk)
    if ids != "all":
        rows = rows.filter(id__in=_ids(ids))
    elif through is not None:
        rows = rows.filter(id__lte=through)
    found = rows.values_list("id", "recipient_id", "group")
    return _set_state(user, found, states.SEEN, seen_at=timezone.now())


def archive(user: AbstractBaseUser, ids: Iterable[int]) -> list[int]:
    """
    Take these notifications out of ``user``'s inbox, kept under "Archived"
    (a grouped one with its group up to it); returns the ids archived. Ids
    ``user`` cannot see are ignored.
    """
    found = visible(user, members=True).filter(id__in=_ids(ids)).exclude(states.archived_q(user.pk))
    return _set_state(
        user, found.values_list("id", "recipient_id", "group"), states.ARCHIVED, archived_at=timezone.now()
    )


def unarchive(user: AbstractBaseUser, ids: Iterable[int]) -> list[int]:
    """Put these archived notifications back in ``user``'s inbox; returns the ids restored."""
    found = visible(user, members=True).filter(id__in=_ids(ids)).filter(states.archived_q(user.pk))
    return _set_state(
        user, found.values_list("id", "recipient_id", "group"), states.UNARCHIVED, archived_at=None
    )


def archive_all_read(user: AbstractBaseUser) -> list[int]:
    """Archive everything in ``user``'s inbox they have read; returns the ids archived."""
    found = inbox(user).read().values_list("id", "recipient_id", "group")
    return _set_state(user, found, states.ARCHIVED, archived_at=timezone.now())


def snooze(user: AbstractBaseUser, ids: Iterable[int], until: datetime) -> list[int]:
    """
    Hide these notifications from ``user``'s inbox until ``until`` (an aware
    datetime in the future; else ``ValueError``). When it comes, the hub wakes
    them: back as unread and unseen, live in every tab (``wake_due``).
    Returns the ids snoozed.
    """
    if not isinstance(until, datetime) or timezone.is_naive(until):
        raise ValueError(gettext("until must be an aware datetime (with a time zone)."))
    if until <= timezone.now():
        raise ValueError(gettext("until must be in the future."))
    found = visible(user, members=True).filter(id__in=_ids(ids))
    return _set_state(
        user, found.values_list("id", "recipient_id", "group"), states.SNOOZED, snoozed_until=until
    )


def wake_due(now: datetime | None = None) -> int:
    """
    Wake every snooze due by ``now``: its notifications become unread and
    unseen again, and each user gets one ``woken`` state event carrying them
    as they now look. Safe to run in several processes at once: each due
    snooze is claimed by one (rows locked, skipping those another holds).
    Returns how many notifications woke.
    """
    now = now or timezone.now()
    db = router.db_for_write(Notification)
    with transaction.atomic(using=db):
        due = list(
            InboxState.objects.using(db)
            .select_for_update(skip_locked=True)
            .filter(snoozed_until__lte=now)
            .values_list("pk", "user_id", "notification_id")
        )
        if not due:
            return 0
        InboxState.objects.using(db).filter(pk__in=[pk for pk, _, _ in due]).update(
            snoozed_until=None, seen_at=None
        )
        by_user: dict[Any, list[int]] = {}
        for _, uid, nid in due:
            by_user.setdefault(uid, []).append(nid)
        for user in get_user_model()._default_manager.db_manager(db).filter(pk__in=list(by_user)):
            _wake(user, by_user[user.pk], db)
    return len(due)


def _wake(user: AbstractBaseUser, ids: list[int], db: str) -> None:
    """Make ``ids`` unread again for ``user`` and record the ``woken`` event with them."""
    Notification.objects.using(db).filter(id__in=ids, recipient_id=user.pk).update(unread=True)
    BroadcastReceipt.objects.using(db).filter(
        notification_id__in=ids, user_id=user.pk, hidden=False
    ).delete()
    items = list(inbox(user).filter(id__in=ids).order_by("id"))
    if not items:
        return  # deleted, or out of the audience, meanwhile
    from .render import as_dict, prepare

    prepare(items)
    _record(user, {"ids": ids, "state": states.WOKEN, "items": [as_dict(n) for n in items]})


def _set_state(
    user: AbstractBaseUser, rows: Iterable[tuple[int, int | None, str]], state: str, **values: Any
) -> list[int]:
    """Set ``values`` on the inbox states of ``rows`` (with their group members) and record ``state``."""
    ids = [nid for nid, _ in grouping.with_members(user.pk, rows)]
    if not ids:
        return []
    db = router.db_for_write(Notification)
    with transaction.atomic(using=db):
        states.ensure(user.pk, ids, db).update(**values)
        _record(user, {"ids": ids, "state": state})
    return ids


def mark_read(
    user: AbstractBaseUser, ids: Iterable[int], *, include_deleted: bool = False
) -> list[int]:
    """
    Mark the notifications with these ``ids`` read for ``user`` and return the
    ids that were theirs to mark; ids they cannot see are ignored (their
    deleted ones too, unless ``include_deleted``, as hq's methods do). A
    grouped notification reads its group up to it (``grouping.with_members``),
    and what was still scheduled by email or push for them is cancelled.
    """
    return _set_read(user, _named(user, ids, include_deleted), unread=False, label=None)


def mark_all_read(user: AbstractBaseUser) -> int:
    """Mark everything ``user`` has unread as read; return how many changed."""
    rows = visible(user, members=True).unread().values_list("id", "recipient_id", "group")
    return len(_set_read(user, rows, unread=False, label="all"))


def mark_unread(
    user: AbstractBaseUser, ids: Iterable[int], *, include_deleted: bool = False
) -> list[int]:
    """
    Mark these notifications unread again for ``user`` (a grouped one with
    its group up to it); returns the ids changed. As ``mark_read`` for the rest.
    """
    return _set_read(user, _named(user, ids, include_deleted), unread=True, label=None)


def _named(
    user: AbstractBaseUser, ids: Iterable[int], include_deleted: bool
) -> list[tuple[int, int | None, str]]:
    """(id, recipient, group) of these ids that ``user`` may change."""
    wanted = _ids(ids)
    rows: list[tuple[int, int | None, str]] = list(
        visible(user, members=True).filter(id__in=wanted).values_list("id", "recipient_id", "group")
    )
    if include_deleted:
        rows += Notification.objects.filter(
            recipient_id=user.pk, id__in=wanted, deleted=True
        ).values_list("id", "recipient_id", "group")
    return rows


def delete(user: AbstractBaseUser, ids: Iterable[int], *, permanently: bool = False) -> list[int]:
    """
    Remove these notifications from ``user``'s feed: personal ones are soft
    deleted (``permanently``: their rows deleted), broadcasts hidden for this
    user only. A grouped notification takes its group up to it along, and
    what was still scheduled for them is cancelled. Returns the ids removed.
    """
    found = visible(user, members=True).filter(id__in=_ids(ids)).values_list("id", "recipient_id", "group")
    rows = grouping.with_members(user.pk, found)
    personal = [nid for nid, rid in rows if rid is not None]
    shared = [nid for nid, rid in rows if rid is None]
    db = router.db_for_write(Notification)
    with transaction.atomic(using=db):
        schedule.cancel(personal, "deleted")
        mine = Notification.objects.filter(id__in=personal, recipient_id=user.pk)
        if permanently:
            mine.delete()
        else:
            mine.update(deleted=True)
        BroadcastReceipt.objects.filter(notification_id__in=shared, user_id=user.pk).update(hidden=True)
        BroadcastReceipt.objects.bulk_create(
            [BroadcastReceipt(notification_id=nid, user_id=user.pk, hidden=True) for nid in shared],
            ignore_conflicts=True,
        )
        changed = [nid for nid, _ in rows]
        _read_changed(user, changed, unread=False, deleted=True)
    return changed


def restore(user: AbstractBaseUser, ids: Iterable[int]) -> list[int]:
    """
    Undo ``delete()`` of these personal notifications of ``user`` (a grouped
    one with its group up to it); returns the ids restored. Their streams
    hear of it as of a change of read state.
    """
    found = Notification.objects.filter(
        recipient_id=user.pk, id__in=_ids(ids), deleted=True
    ).values_list("id", "recipient_id", "group")
    rows = grouping.with_members(user.pk, found)
    db = router.db_for_write(Notification)
    with transaction.atomic(using=db):
        ids_ = [nid for nid, _ in rows]
        Notification.objects.filter(id__in=ids_, recipient_id=user.pk).update(deleted=False)
        unread = list(
            Notification.objects.filter(id__in=ids_, unread=True).values_list("id", flat=True)
        )
        read = [nid for nid in ids_ if nid not in set(unread)]
        for state, changed in ((True, unread), (False, read)):
            if changed:
                _read_changed(user, changed, unread=state)
    return ids_


# -- publishing on model saves -------------------------------------------------

M = TypeVar("M", bound=type[models.Model])
Value = Any  # a constant, or a callable taking the saved instance


@overload
def notify_on_save(model: M, /, **options: Any) -> M: ...
@overload
def notify_on_save(model: None = None, /, **options: Any) -> Callable[[M], M]: ...


def notify_on_save(model: M | None = None, /, **options: Any) -> M | Callable[[M], M]:
    """
    Declare that saving ``model`` notifies someone. Use as a call or a class decorator:

        notify_on_save(Comment, recipient=lambda c: c.post.author, verb="commented",
                       actor=lambda c: c.author, target=lambda c: c.post)

        @notify_on_save(recipient=lambda o: o.customer, verb="order shipped",
                        on="update", condition=lambda o: o.shipped)
        class Order(models.Model): ...

    Options: ``recipient`` and ``verb`` (required), ``on`` ("create", the
    default, "update" or "save"), ``condition``, and any ``notify()`` keyword.
    Each value may be a callable taking the saved instance. A recipient that
    comes out empty sends nothing.
    """
    if model is None:
        return lambda cls: notify_on_save(cls, **options)
    _connect_on_save(model, **options)
    return model


_ON = {"create": (True,), "update": (False,), "save": (True, False)}


def _connect_on_save(
    model: type[models.Model],
    *,
    recipient: Value,
    verb: Value,
    on: str = "create",
    condition: Callable[[Any], bool] | None = None,
    **notify_kwargs: Value,
) -> None:
    if on not in _ON:
        raise ValueError(f"on={on!r} is not one of 'create', 'update', 'save'.")
    unknown = set(notify_kwargs) - _NOTIFY_OPTIONS
    if unknown:
        raise ValueError(
            f"Unknown notify_on_save option(s) {sorted(unknown)}; allowed: "
            f"recipient, verb, on, condition, {', '.join(sorted(_NOTIFY_OPTIONS))}."
        )

    def receiver(sender: type[models.Model], instance: models.Model, created: bool, raw: bool = False, **kwargs: Any) -> None:
        if raw or created not in _ON[on]:
            return
        if condition is not None and not condition(instance):
            return
        who = _resolve(recipient, instance)
        if who is None or (isinstance(who, (list, tuple, set)) and not who):
            return
        if isinstance(who, models.QuerySet) and not who.exists():
            return
        notify(
            who,
            _resolve(verb, instance),
            **{name: _resolve(value, instance) for name, value in notify_kwargs.items()},
        )

    post_save.connect(
        receiver,
        sender=model,
        weak=False,
        dispatch_uid=f"notifications.on_save.{model._meta.label}.{id(receiver)}",
    )


_NOTIFY_OPTIONS = {"actor", "action_object", "target", "description", "level", "url", "data", "kind", "key"}


def _resolve(value: Value, instance: models.Model) -> Any:
    return value(instance) if callable(value) else value


# -- helpers -------------------------------------------------------------------


_NOBODY = "notify() needs at least one recipient; the one given names nobody."


def _recipients(recipient: Any) -> list[int] | models.QuerySet[Any]:
    """
    Check ``recipient`` and return its users' ids, deduplicated and never empty;
    or, for a group or a queryset the database can fan out to itself (see
    ``_fan_out``), the queryset of those users, left unread.
    """
    User = get_user_model()
    users: models.QuerySet[Any] | None = None
    if isinstance(recipient, Group):
        if recipient.pk is None:
            raise ValueError("The recipient Group must be saved first.")
        users = members(recipient)  # (none when the user model has no groups)
    elif isinstance(recipient, User):
        ids = [recipient.pk]
    elif isinstance(recipient, models.QuerySet):
        if not issubclass(recipient.model, User):
            raise ValueError(
                f"A recipient queryset must be of {User._meta.label}, not "
                f"{recipient.model._meta.label}."
            )
        users = recipient
    elif isinstance(recipient, Iterable) and not isinstance(recipient, (str, bytes, Mapping)):
        items = list(recipient)
        if not all(isinstance(u, User) for u in items):
            raise ValueError(
                f"Every recipient in an iterable must be a {User._meta.label} instance."
            )
        ids = [u.pk for u in items]
    else:
        raise ValueError(
            f"recipient must be a {User._meta.label}, a Group, or a queryset or "
            f"iterable of users; got {type(recipient).__name__}."
        )
    if users is not None:
        if users.db == router.db_for_write(Notification) and _can_fan_out(connections[users.db]):
            return users
        ids = list(users.values_list("pk", flat=True))
    if any(pk is None for pk in ids):
        raise ValueError("Recipients must be saved users.")
    unique = list(dict.fromkeys(ids))
    if not unique:
        raise NoRecipients(_NOBODY)
    return unique


def _as_queryset(user_ids: list[int]) -> list[int] | models.QuerySet[Any]:
    """These users as a queryset ``_fan_out`` can use, where the database can fan out."""
    db = router.db_for_write(Notification)
    if not _can_fan_out(connections[db]):
        return user_ids
    return get_user_model()._default_manager.db_manager(db).filter(pk__in=user_ids)


def _can_fan_out(connection: BaseDatabaseWrapper) -> bool:
    """Can this database run ``_fan_out``'s ``INSERT ... SELECT ... RETURNING``?"""
    return connection.vendor in ("postgresql", "sqlite") and bool(
        connection.features.can_return_rows_from_bulk_insert  # SQLite: 3.35+
    )


def _fan_out(
    users: models.QuerySet[Any],
    db: str,
    created: datetime,
    fields: dict[str, Any],
    window: tuple[str, datetime] | None = None,
) -> tuple[list[Notification], list[int]]:
    """
    Write one notification per user of ``users`` (each once) in one statement,
    ``INSERT INTO notification (...) SELECT <the row's values>, u.id FROM user u
    WHERE u.id IN (<users>)``; return them in id order, as ``bulk_create``
    would, and their recipients' ids. Django's insert compiler prepares the
    values, as it does for ``bulk_create``, and they go as parameters. With
    ``window`` (group key, window start), each row joins its user's open
    group of that key, found by the SELECT, or the new group in ``fields``.
    """
    connection = connections[db]
    qn = connection.ops.quote_name
    opts = Notification._meta
    recipient, group = opts.get_field("recipient"), opts.get_field("group")
    template = Notification(audience=Audience.USER, timestamp=created, **fields)
    # The columns bulk_create() writes, but the recipient: the SELECT gives it.
    # The group comes last: its value may be a subquery.
    columns = [
        f
        for f in opts.concrete_fields
        if not f.primary_key
        and not getattr(f, "generated", False)
        and f is not recipient
        and f is not group
    ] + [group]
    insert = InsertQuery(Notification)
    insert.insert_values(columns, [template])
    compiler = insert.get_compiler(using=db)
    values = [compiler.prepare_value(f, compiler.pre_save_val(f, template)) for f in columns]
    (placeholders,), (params,) = compiler.assemble_as_sql(columns, [values])
    user_opts = users.model._meta
    user_pk, alias = _column(qn, user_opts.pk), qn("recipient_user")
    if window is not None:
        key, since = window
        placeholders = [
            *placeholders[:-1],
            grouping.open_group_sql(qn, opts.db_table, alias, user_pk),
        ]
        since_value = connection.ops.adapt_datetimefield_value(since)
        params = [*params[:-1], key, since_value, False, params[-1]]

    members = users.values("pk").query
    members.subquery = True
    members.clear_ordering(force=False)  # what pk__in=users does to it
    try:
        members_sql, members_params = members.get_compiler(using=db).as_sql()
    except EmptyResultSet:  # users.none(), pk__in=[]...
        return [], []
    sql = (
        f"INSERT INTO {qn(opts.db_table)} "  # noqa: S608  # identifiers from quote_name, values as parameters
        f"({', '.join(_column(qn, f) for f in [*columns, recipient])}) "
        f"SELECT {', '.join(placeholders)}, {alias}.{user_pk} "
        f"FROM {qn(user_opts.db_table)} {alias} "
        f"WHERE {alias}.{user_pk} IN ({members_sql}) "
        f"ORDER BY {alias}.{user_pk} "
        f"RETURNING {_column(qn, opts.pk)}, {_column(qn, recipient)}, {_column(qn, group)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *members_params])
        returned = sorted(cursor.fetchall())

    # The instances, built positionally (as querysets build theirs: several
    # times faster than by keyword), carrying what the template has cached.
    names = [f.attname for f in opts.concrete_fields]
    base = [getattr(template, name) for name in names]
    at_id, at_recipient = names.index(opts.pk.attname), names.index(recipient.attname)
    at_group = names.index(group.attname)
    cached = template._state.fields_cache
    build: Callable[..., Notification] = Notification
    rows = []
    for pk, user_id, group_id in returned:
        base[at_id], base[at_recipient], base[at_group] = pk, user_id, group_id
        row = build(*base)
        row._state.adding = False
        row._state.db = db
        row._state.fields_cache.update(cached)
        rows.append(row)
    return rows, [user_id for _, user_id, _ in returned]


def _column(quote_name: Callable[[str], str], field: Any) -> str:
    return quote_name(field.column)


def _fields(
    verb: Any,
    actor: Any,
    action_object: Any,
    target: Any,
    description: Any,
    level: Any,
    url: Any,
    data: Any,
    *,
    any_level: bool = False,
) -> dict[str, Any]:
    """
    Check the notification's fields and return them as model field values.
    ``any_level``: accept any level of up to 20 characters (as
    django-notifications-hq does) instead of only ``Level``'s.
    """
    if not isinstance(verb, str) or not verb.strip():
        raise ValueError("verb must be a non-empty string.")
    if len(verb) > 255:
        raise ValueError("verb must be at most 255 characters.")
    if any_level:
        if not isinstance(level, str) or not 0 < len(level) <= 20:
            raise ValueError(f"level must be a string of 1 to 20 characters, not {level!r}.")
    elif level not in Level.values:
        raise ValueError(f"Unknown level {level!r}; allowed: {', '.join(Level.values)}.")
    if not isinstance(description, str):
        raise ValueError("description must be a string.")
    if not isinstance(url, str) or len(url) > 2000:
        raise ValueError("url must be a string of at most 2000 characters.")
    if "\x00" in verb + description + url:
        raise ValueError("verb, description and url must not contain NUL characters.")
    links.check_url(url)
    fields: dict[str, Any] = {
        "verb": verb,
        "description": description,
        "level": str(level),
        "url": url,
        "data": _check_data(data),
    }
    for name, obj in (("actor", actor), ("action_object", action_object), ("target", target)):
        if obj is None:
            continue
        if not isinstance(obj, models.Model) or obj.pk is None:
            raise ValueError(f"{name} must be a saved model instance or None.")
        fields[f"{name}_content_type"] = ContentType.objects.get_for_model(obj)
        fields[f"{name}_object_id"] = str(obj.pk)
    if actor is not None:
        fields["actor_display"] = str(actor)[:255]
    return fields


def _check_data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError("data must be a dict (a JSON object) or None.")
    try:
        encoded = json.dumps(dict(data), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(
            "data must hold only JSON values (str, int, float, bool, None, list, "
            f"dict with str keys): {exc}"
        ) from None
    if _has_nul(data):
        raise ValueError("data must not contain NUL characters (databases cannot store them).")
    links.check_data(data)
    if len(encoded.encode()) > conf.MAX_DATA_BYTES:
        raise ValueError(
            f"data is {len(encoded.encode())} bytes of JSON; the limit is "
            f"{conf.MAX_DATA_BYTES} (NOTIFICATIONS_MAX_DATA_BYTES)."
        )
    return json.loads(encoded)


def _has_nul(data: Any) -> bool:
    """Does any string (key or value) in this JSON-ready structure hold a NUL?"""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _ids(ids: Iterable[Any]) -> list[int]:
    try:
        return [int(i) for i in ids]
    except (TypeError, ValueError):
        raise ValueError("ids must be integers.") from None


def _created(rows: list[Notification], user_ids: list[int] | None) -> None:
    if user_ids is None:
        delivery.poke_all()
    else:
        delivery.poke_users(user_ids)
    notifications_created.send(sender=Notification, notifications=rows)


def _set_read(
    user: AbstractBaseUser,
    rows: Iterable[tuple[int, int | None, str]],
    *,
    unread: bool,
    label: str | None,
) -> list[int]:
    pairs = grouping.with_members(user.pk, rows)
    personal = [nid for nid, rid in pairs if rid is not None]
    shared = [nid for nid, rid in pairs if rid is None]
    db = router.db_for_write(Notification)
    with transaction.atomic(using=db):
        Notification.objects.filter(id__in=personal).update(unread=unread)
        if unread:
            BroadcastReceipt.objects.filter(
                notification_id__in=shared, user_id=user.pk, hidden=False
            ).delete()
            InboxState.objects.filter(
                user_id=user.pk, notification_id__in=[nid for nid, _ in pairs]
            ).update(seen_at=None)  # unread again: new, so unseen too
        else:
            schedule.cancel(personal, "read")
            BroadcastReceipt.objects.bulk_create(
                [BroadcastReceipt(notification_id=nid, user_id=user.pk) for nid in shared],
                ignore_conflicts=True,
            )
        changed = [nid for nid, _ in pairs]
        _read_changed(user, "all" if label == "all" else changed, unread=unread)
    return changed


def _read_changed(
    user: AbstractBaseUser, ids: list[int] | str, *, unread: bool, deleted: bool = False
) -> None:
    """
    Inside the transaction that changed read state: keep the ``read`` event as a
    row (every stream of the user hears of it from the database, layer or not),
    then, after commit, poke the user's streams and send ``notifications_read``.
    """
    payload = {"ids": ids, "unread": unread, "deleted": deleted}

    def committed() -> None:
        notifications_read.send(sender=Notification, user=user, ids=ids, unread=unread)

    _record(user, payload, committed)


def _record(
    user: AbstractBaseUser, payload: dict[str, Any], committed: Callable[[], None] | None = None
) -> None:
    """
    Inside the transaction of a change: keep ``payload``, with the user's
    counts as of now, as a read event (streams hand it to every tab once),
    and poke the user's streams after commit, then call ``committed``.
    """
    unread, unseen = counts(user)
    payload = {**payload, "unread_count": unread, "unseen_count": unseen}
    ReadEvent.objects.create(user_id=user.pk, payload=dumps(payload))

    def poke() -> None:
        delivery.poke_users([user.pk])
        if committed is not None:
            committed()

    transaction.on_commit(poke, using=router.db_for_write(Notification))
