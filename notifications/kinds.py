"""
Kinds of notification, declared in code.

A kind has a stable ``key`` (stored on each notification), a label and a
category for the preferences screen, the channels it may reach with their
defaults, whether it is ``critical`` (cannot be muted), optional grouping,
and optionally its own text renderers. Declare kinds in your app's
``notifications.py`` (found at startup, like ``admin.py``)::

    from datetime import timedelta
    from notifications.kinds import Kind, register

    register(Kind("comment", label="Comments", group_by="target",
                  window=timedelta(minutes=10)))

or with the decorator, which uses the function as the in-app text::

    @register.text("mention", label="Mentions")
    def mention_text(context): ...
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext

if TYPE_CHECKING:
    from .models import Notification

# Every channel a kind may declare: ``in_app`` is the stream and the list;
# ``email`` and ``push`` reach people who are away (schedule.py).
CHANNELS = ("in_app", "email", "push")
IN_APP = "in_app"

_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_GROUP_FIELDS = ("target", "actor", "action_object")

# What ``group_by`` may be: a field name above, or a function of the
# (unsaved) notification returning the group key, or None for no group.
GroupBy = str | Callable[["Notification"], Any]
# A text renderer: takes the rendering context (see README), returns the text.
TextRenderer = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class Channel:
    """A channel's default for a kind: on or off, and how long to wait first."""

    enabled: bool = True
    # None: at once. A duration: only if the notification is still unread by then.
    after: timedelta | None = None
    # A duration: collect a user's notifications of the kind for this long
    # from the first one and send them as one message (digests.py).
    digest: timedelta | None = None


def _channel(name: str, value: Any) -> Channel:
    if name not in CHANNELS:
        raise ValueError(f"Unknown channel {name!r}; allowed: {', '.join(CHANNELS)}.")
    if isinstance(value, Channel):
        return value
    if isinstance(value, bool):
        return Channel(enabled=value)
    if isinstance(value, timedelta):
        return Channel(enabled=True, after=value)
    raise ValueError(
        f"Channel {name!r}: use True (at once), False (off by default), a timedelta "
        "(if still unread after it) or a Channel, not {value!r}."
    )


@dataclass(frozen=True)
class Kind:
    """
    One kind of notification. ``channels`` maps a channel name (``in_app``,
    ``email``, ``push``) to its default: ``True`` (at once), ``False`` (off
    unless the user turns it on), a ``timedelta`` (only if still unread after
    it) or a ``Channel``. ``group_by`` ("target", "actor", "action_object" or
    a function of the notification) folds notifications of this kind with the
    same key for the same user within ``window`` into one item. ``text`` maps
    a channel to a function of the rendering context, used instead of the
    template ``notifications/<key>/<channel>.txt``. A channel declared as
    ``Channel(digest=timedelta(minutes=30))`` collects a user's notifications
    for that long and sends them as one message; ``hourly_cap`` caps a
    channel's messages per user and hour (see digests.py).
    """

    key: str
    label: str = ""
    category: str = ""
    channels: Mapping[str, Any] = field(default_factory=lambda: {IN_APP: True})
    critical: bool = False
    group_by: GroupBy | None = None
    window: timedelta = timedelta(minutes=10)
    text: Mapping[str, TextRenderer] = field(default_factory=dict)
    # Most messages of this kind per user and hour, per away channel
    # ({"email": 3}); past it they fold into the user's next digest.
    hourly_cap: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not _KEY.match(self.key):
            raise ValueError(
                f"Kind key {self.key!r} must be 1-64 characters of a-z, 0-9, '_', '.', '-', "
                "starting with a letter or digit."
            )
        channels = {name: _channel(name, value) for name, value in dict(self.channels).items()}
        if IN_APP not in channels:
            raise ValueError(f"Kind {self.key!r} must declare the {IN_APP!r} channel.")
        for name, channel in channels.items():
            if channel.digest is None:
                continue
            if name == IN_APP or self.critical:
                raise ValueError(
                    f"Kind {self.key!r}: only the email and push channels of a kind that is not "
                    "critical can be a digest."
                )
            if not isinstance(channel.digest, timedelta) or channel.digest <= timedelta(0):
                raise ValueError(f"Kind {self.key!r}: a digest must be a positive timedelta.")
        for name, cap in dict(self.hourly_cap).items():
            if name == IN_APP or name not in CHANNELS or not isinstance(cap, int) or cap < 1:
                raise ValueError(
                    f"Kind {self.key!r}: hourly_cap maps 'email' or 'push' to a positive integer."
                )
        if self.critical:
            # Critical means delivered: every declared channel is on and stays on.
            channels = {n: Channel(True, c.after) for n, c in channels.items()}
        object.__setattr__(self, "channels", channels)
        object.__setattr__(self, "label", self.label or self.key.replace("_", " ").capitalize())
        if isinstance(self.group_by, str) and self.group_by not in _GROUP_FIELDS:
            raise ValueError(
                f"Kind {self.key!r}: group_by={self.group_by!r} is not one of "
                f"{', '.join(_GROUP_FIELDS)} or a function."
            )
        if not isinstance(self.window, timedelta) or self.window <= timedelta(0):
            raise ValueError(f"Kind {self.key!r}: window must be a positive timedelta.")
        for name in self.text:
            _channel(name, True)

    def channel(self, name: str) -> Channel | None:
        """The default of channel ``name`` for this kind; None if not declared."""
        return self.channels.get(name)

    def group_key(self, notification: Notification) -> str | None:
        """The group this (unsaved) notification joins, or None when it stands alone."""
        if self.group_by is None:
            return None
        if isinstance(self.group_by, str):
            type_id = getattr(notification, f"{self.group_by}_content_type_id")
            object_id = getattr(notification, f"{self.group_by}_object_id")
            return f"{self.group_by}:{type_id}:{object_id}" if type_id else None
        value = self.group_by(notification)
        return None if value is None or value == "" else str(value)


class Registry:
    """The declared kinds by key. ``register`` is the process-wide instance."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def __call__(self, kind: Kind) -> Kind:
        """Declare ``kind``; declaring another kind with a taken key raises ``ValueError``."""
        if not isinstance(kind, Kind):
            raise ValueError(f"register() takes a Kind, not {type(kind).__name__}.")
        old = self._kinds.get(kind.key)
        if old is not None and old != kind:
            raise ValueError(f"Kind {kind.key!r} is already declared differently.")
        self._kinds[kind.key] = kind
        return kind

    def text(self, key: str, channel: str = IN_APP, **options: Any) -> Callable[[TextRenderer], TextRenderer]:
        """Decorator: declare kind ``key`` whose ``channel`` text is the decorated function."""

        def decorator(fn: TextRenderer) -> TextRenderer:
            self(Kind(key, text={channel: fn}, **options))
            return fn

        return decorator

    def unregister(self, key: str) -> None:
        self._kinds.pop(key, None)

    def get(self, key: str) -> Kind | None:
        return self._kinds.get(key)

    def __getitem__(self, key: str) -> Kind:
        """The kind ``key``; ``ValueError`` naming the declared kinds if there is none."""
        kind = self._kinds.get(key)
        if kind is None:
            declared = ", ".join(sorted(self._kinds)) or gettext("none are declared")
            raise ValueError(
                gettext("Unknown notification kind %(kind)r; declared: %(declared)s.")
                % {"kind": key, "declared": declared}
            )
        return kind

    def __contains__(self, key: object) -> bool:
        return key in self._kinds

    def __iter__(self) -> Iterator[Kind]:
        return iter(sorted(self._kinds.values(), key=lambda k: (k.category, k.label, k.key)))


register = Registry()


def get_kind(key: str) -> Kind:
    """The declared kind ``key``; ``ValueError`` naming the declared kinds if unknown."""
    return register[key]


def autodiscover() -> None:
    """Import every installed app's ``notifications`` module, where kinds are declared."""
    autodiscover_modules("notifications")
