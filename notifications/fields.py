"""
Model fields that keep django-notifications-hq's query names working on this
app's model.

``CreatedField`` is the ``created`` column under two names, the way a foreign
key answers to ``author`` and ``author_id``: its name is ``created`` (this
app's), its attname ``timestamp`` (hq's). Django resolves a query name through
``Options.get_field()``, which knows a field by name and by attname, so every
place that takes a field name (``filter``/``exclude``/``Q``, ``order_by``,
``latest``, ``values``, ``update``, ``F()``, aggregates, ``dates()``, the
admin) takes either, and the SQL names the one column. No second column, no
per-method shim. On instances both names read and write the same value.

``NotificationDataField`` is a ``JSONField`` that refuses ``data__contains``
with a string: hq stored ``data`` as text, where that was a substring search;
on JSON it matches nothing (PostgreSQL) or raises an unrelated error.

Both deconstruct as Django's own fields, so migrations see no change.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.expressions import Col
from django.db.models.fields.json import DataContains


class _SameValue:
    """The instance attribute ``name`` reads and writes the field's attname."""

    def __init__(self, field: models.Field[Any, Any]):
        self.field = field

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return getattr(owner, self.field.attname)
        return getattr(instance, self.field.attname)

    def __set__(self, instance: Any, value: Any) -> None:
        setattr(instance, self.field.attname, value)


class CreatedField(models.DateTimeField):
    """
    A ``DateTimeField`` also known by ``HQ_NAME`` in queries and on instances.
    Its column is ``db_column`` or its name, as for any field.
    """

    HQ_NAME = "timestamp"

    def get_attname(self) -> str:
        return self.HQ_NAME

    def get_attname_column(self) -> tuple[str, str]:
        return self.get_attname(), self.db_column or self.name

    def contribute_to_class(  # type: ignore[override]  # DateField's stub differs from Field's
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, name, _SameValue(self))
        # hq's Notification had these (Django adds them for the field's name).
        setattr(cls, f"get_next_by_{self.HQ_NAME}", getattr(cls, f"get_next_by_{name}"))
        setattr(cls, f"get_previous_by_{self.HQ_NAME}", getattr(cls, f"get_previous_by_{name}"))

    def deconstruct(self) -> Any:
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.DateTimeField", args, kwargs


class _NoTextContains(DataContains):
    def get_prep_lookup(self) -> Any:
        # On the column itself: under a key (data__tags__contains="x") a
        # string is a fair question of a JSON array.
        if isinstance(self.rhs, str) and isinstance(self.lhs, Col):
            raise FieldError(
                f"{self.lhs.target.name}__contains={self.rhs!r}: django-notifications-hq "
                "stored data as text, where this searched for a substring; here data is "
                "JSON. Look a key up instead (data__<key>=value, data__has_key=\"<key>\"), "
                "or pass a dict: data__contains={\"<key>\": value}."
            )
        return super().get_prep_lookup()


class NotificationDataField(models.JSONField):
    """``JSONField`` whose ``contains`` lookup refuses a string (see the module docstring)."""

    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "contains":
            return _NoTextContains
        return super().get_lookup(lookup_name)

    def deconstruct(self) -> Any:
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs
