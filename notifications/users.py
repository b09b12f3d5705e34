"""
What the app asks of the project's user model (``AUTH_USER_MODEL``), which
may be Django's or the project's own: a UUID or text primary key, a login by
email, no ``PermissionsMixin``.

- Groups: a ``groups`` many-to-many to ``django.contrib.auth``'s ``Group``
  (``PermissionsMixin``'s). A model without one has no group members: group
  broadcasts reach nobody, notifying a group notifies nobody.
- Staff: an ``is_staff`` attribute; without one nobody is staff, and staff
  broadcasts reach nobody.
- The primary key, whatever its type, in signed tokens (``to_json`` /
  ``from_json``) and in channel-layer messages (``user_id_from_text``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

CHUNK = 500


def groups_field() -> models.ManyToManyField[Any, Any] | None:
    """The user model's ``groups`` many-to-many to ``Group``, or None when it has none."""
    try:
        field = get_user_model()._meta.get_field("groups")
    except FieldDoesNotExist:
        return None
    if isinstance(field, models.ManyToManyField) and field.related_model is Group:
        return field
    return None


def group_ids(user_ids: Collection[Any]) -> dict[Any, frozenset[int]]:
    """
    The ids of the groups each of these users belongs to (one query per
    CHUNK users, none without groups); a user in no group is absent.
    """
    field = groups_field()
    if field is None or not user_ids:
        return {}
    through: Any = field.remote_field.through
    user, group = field.m2m_field_name(), field.m2m_reverse_field_name()
    ids = list(user_ids)
    found: dict[Any, set[int]] = {}
    for start in range(0, len(ids), CHUNK):
        pairs = through._default_manager.filter(
            **{f"{user}__in": ids[start : start + CHUNK]}
        ).values_list(user, group)
        for user_id, group_id in pairs:
            found.setdefault(user_id, set()).add(group_id)
    return {user_id: frozenset(some) for user_id, some in found.items()}


def members(group: Group) -> models.QuerySet[Any]:
    """The users in ``group`` (none when the user model has no groups)."""
    users = get_user_model()._default_manager
    field = groups_field()
    if field is None:
        return users.none()
    return users.filter(**{field.name: group})


def is_staff(user: Any) -> bool:
    """The user's staff flag; False for a user model without one."""
    return bool(getattr(user, "is_staff", False))


def to_json(user_id: Any) -> int | str:
    """A user's primary key as a JSON value (an integer stays one)."""
    return user_id if isinstance(user_id, int) else str(user_id)


def from_json(value: Any) -> Any:
    """The primary key ``to_json`` made, or from its text; ``ValueError`` if it cannot be one."""
    try:
        return get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        raise ValueError(f"Not a user id: {value!r}") from None


def user_id_from_text(text: str) -> Any:
    """The primary key that ``str(pk)`` wrote as ``text``, or None when no user could have it."""
    try:
        return from_json(text)
    except ValueError:
        return None
