"""
Who wants what: per user, per kind, per channel, stored sparsely.

A user's choice for a channel of a kind is resolved in this order:

1. a critical kind is always on (and cannot be changed);
2. the user's choice for this kind and channel;
3. the user's choice for the whole channel (a row with an empty kind);
4. the kind's default for the channel.

Email and push follow the in-app channel: a notification muted in the app is
not stored, so it is not emailed or pushed either. Where a kind's in-app
channel is off, its email and push show as off and cannot be changed
(``matrix``), ``is_enabled`` says off, and turning them on is refused until
in-app is on again (``set_preferences``).

Only choices are stored (``Preference`` rows); everything else is the default.
For a whole recipient set the resolution is one SQL condition, so a group of
ten thousand costs no more queries than one user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext, gettext_lazy

from .kinds import CHANNELS, IN_APP, Kind, register
from .models import DigestChoice, Preference


def receiving_q(kind: Kind, channel: str, user_ref: str = "pk") -> Q:
    """
    A filter on the user model (``user_ref`` names the user's id): the users
    for whom ``channel`` of ``kind`` is on.
    """
    default = kind.channel(channel)
    if default is None:
        return Q(pk__in=[])
    if kind.critical:
        return Q()
    mine = Preference.objects.filter(user_id=OuterRef(user_ref), channel=channel)
    for_kind = mine.filter(kind=kind.key)
    for_channel = mine.filter(kind="")
    chose = for_kind.filter(enabled=not default.enabled)
    decided = Exists(for_kind)
    channel_chose = for_channel.filter(enabled=not default.enabled)
    # Differs from the default: chose so for the kind, or for the whole channel
    # without a choice for the kind.
    differs = Q(Exists(chose)) | (~Q(decided) & Q(Exists(channel_chose)))
    return ~differs if default.enabled else differs


def receiving(
    users: models.QuerySet[Any] | list[int], kind: Kind, channel: str
) -> models.QuerySet[Any] | list[int]:
    """
    ``users`` (a queryset of users, or user ids) narrowed to those for whom
    ``channel`` of ``kind`` is on. A queryset stays lazy (the condition goes
    into whatever statement reads it); ids cost one query of their choices.
    """
    if kind.critical and kind.channel(channel) is not None:
        return users
    if isinstance(users, models.QuerySet):
        return users.filter(receiving_q(kind, channel))
    default = kind.channel(channel)
    if not users or default is None:
        return []
    chosen: dict[int, dict[tuple[str, str], bool]] = {}
    for uid, key, enabled in Preference.objects.filter(
        user_id__in=users, channel=channel, kind__in=[kind.key, ""]
    ).values_list("user_id", "kind", "enabled"):
        chosen.setdefault(uid, {})[key, channel] = enabled
    return [uid for uid in users if _cell(kind, channel, default.enabled, chosen.get(uid, {})).enabled]


@dataclass(frozen=True)
class Cell:
    enabled: bool
    editable: bool
    reason: str = ""  # why it cannot be changed, when it is not a critical kind's

    def as_dict(self) -> dict[str, Any]:
        cell: dict[str, Any] = {"enabled": self.enabled, "editable": self.editable}
        if self.reason:
            cell["reason"] = self.reason
        return cell


FOLLOWS_IN_APP = gettext_lazy(
    "Off while this kind is off in the app: email and push only reach "
    "notifications that are in the app."
)


def matrix(user: AbstractBaseUser) -> list[dict[str, Any]]:
    """
    Every declared kind with, per channel it declares, whether it is on for
    ``user`` and whether they may change it (with the ``reason`` when a cell
    follows another: email and push are off while in-app is). One query.
    """
    chosen = {
        (kind, channel): enabled
        for kind, channel, enabled in Preference.objects.filter(user_id=user.pk).values_list(
            "kind", "channel", "enabled"
        )
    }
    digests = {(d.kind, d.channel): d for d in DigestChoice.objects.filter(user_id=user.pk)}
    result = []
    for kind in register:
        channels = {name: cell.as_dict() for name, cell in _cells(kind, chosen).items()}
        for name, cell in channels.items():
            if name != IN_APP:
                cell.update(_every(kind, name, cell["enabled"], digests.get((kind.key, name))))
        result.append(
            {
                "key": kind.key,
                "label": str(kind.label),
                "category": str(kind.category),
                "critical": kind.critical,
                "channels": channels,
            }
        )
    return result


def _every(kind: Kind, channel: str, enabled: bool, choice: DigestChoice | None) -> dict[str, Any]:
    """
    How often an away channel's cell sends, when not simply as ``enabled``
    says: ``every`` "now" (chosen over the kind's digest), "hourly", "daily"
    or "weekly" (with ``at``, ``weekday``, ``time_zone``), or "digest" with
    the kind's ``window`` in seconds. Nothing for a cell that is off or at once.
    """
    if not enabled or kind.critical:
        return {}
    if choice is not None:
        found: dict[str, Any] = {"every": choice.every}
        if choice.every in ("daily", "weekly"):
            found.update(at=f"{choice.at:%H:%M}" if choice.at else "08:00", time_zone=choice.time_zone)
        if choice.every == "weekly":
            found["weekday"] = choice.weekday or 0
        return found
    declared = kind.channel(channel)
    if declared is not None and declared.digest is not None:
        return {"every": "digest", "window": int(declared.digest.total_seconds())}
    return {}


def _cells(kind: Kind, chosen: Mapping[tuple[str, str], bool]) -> dict[str, Cell]:
    """Every channel ``kind`` declares, as it is for a user who chose ``chosen``."""
    cells: dict[str, Cell] = {}
    for name in CHANNELS:
        default = kind.channel(name)
        if default is not None:
            cells[name] = _cell(kind, name, default.enabled, chosen)
    if not cells[IN_APP].enabled:
        for name in cells.keys() - {IN_APP}:
            cells[name] = Cell(False, False, str(FOLLOWS_IN_APP))
    return cells


def _cell(kind: Kind, channel: str, default: bool, chosen: Mapping[tuple[str, str], bool]) -> Cell:
    if kind.critical:
        return Cell(True, False)
    for key in ((kind.key, channel), ("", channel)):
        if key in chosen:
            return Cell(chosen[key], True)
    return Cell(default, True)


def is_enabled(user: AbstractBaseUser, kind: str, channel: str) -> bool:
    """
    Whether ``channel`` of ``kind`` is on for ``user`` (email and push: only
    while in-app is on too); ValueError for unknown names.
    """
    declared = register[kind]
    _check_channel(declared, channel)
    return _cells(declared, _chosen(user, kind))[channel].enabled


def _chosen(user: AbstractBaseUser, kind: str) -> dict[tuple[str, str], bool]:
    """``user``'s choices that bear on ``kind``: its own and whole channels'."""
    return {
        (k, c): e
        for k, c, e in Preference.objects.filter(user_id=user.pk, kind__in=[kind, ""]).values_list(
            "kind", "channel", "enabled"
        )
    }


def _check_channel(kind: Kind, channel: str) -> None:
    if channel not in CHANNELS:
        raise ValueError(_unknown_channel(channel))
    if kind.channel(channel) is None:
        declared = ", ".join(kind.channels)
        raise ValueError(
            gettext("Kind %(kind)r has no %(channel)r channel; it declares: %(declared)s.")
            % {"kind": kind.key, "channel": channel, "declared": declared}
        )


def _unknown_channel(channel: object) -> str:
    return gettext("Unknown channel %(channel)r; allowed: %(allowed)s.") % {
        "channel": channel,
        "allowed": ", ".join(CHANNELS),
    }


def set_preferences(user: AbstractBaseUser, changes: Iterable[Mapping[str, Any]]) -> None:
    """
    Apply ``changes``, each ``{"kind": key or None, "channel": name, "enabled":
    True, False or None}``: ``kind`` None is the whole channel, ``enabled``
    None forgets the choice (back to the default). For a kind's email or
    push, ``{"kind", "channel", "every": "now" | "hourly" | "daily" | "weekly"
    | "off" | "default" (as the kind declares), "at": "08:00", "weekday": 0..6 (Monday 0), "time_zone": IANA
    name}`` chooses how often instead (see digests.py; ``at`` defaults to
    08:00, ``time_zone`` to the user's quiet hours' or TIME_ZONE). All or nothing: the first
    invalid change (unknown kind or channel, a critical kind, a value that is
    not a boolean, email or push turned on for a kind that would be off in
    the app) raises ``ValueError`` and nothing is stored.
    """
    checked: list[tuple[str, str, bool | None]] = []
    schedules: list[tuple[str, str, dict[str, Any] | None]] = []
    for change in changes:
        if not isinstance(change, Mapping):
            raise ValueError(gettext("Each change must be an object with kind, channel and enabled."))
        unknown = set(change) - {"kind", "channel", "enabled", *_SCHEDULE_FIELDS}
        if unknown:
            raise ValueError(
                gettext(
                    "Unknown field(s) %(fields)s; use kind, channel, and enabled or "
                    "every (with at, weekday, time_zone)."
                )
                % {"fields": ", ".join(sorted(repr(name) for name in unknown))}
            )
        if "every" in change:
            key, name, on, digest = _schedule_change(user, change)
            checked.append((key, name, on))
            schedules.append((key, name, digest))
            continue
        kind, channel, enabled = change.get("kind"), change.get("channel"), change.get("enabled", ...)
        if enabled is ... or not (enabled is None or isinstance(enabled, bool)):
            raise ValueError(gettext("enabled must be true, false, or null (back to the default)."))
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise ValueError(_unknown_channel(channel))
        if kind is None:
            checked.append(("", channel, enabled))
            continue
        if not isinstance(kind, str):
            raise ValueError(gettext("kind must be a declared kind's key, or null for the whole channel."))
        declared = register[kind]
        _check_channel(declared, channel)
        if declared.critical:
            raise ValueError(
                gettext("%(label)s (%(kind)r) is critical: it cannot be switched off.")
                % {"label": declared.label, "kind": kind}
            )
        checked.append((kind, channel, enabled))
        if enabled is None and channel != IN_APP:
            schedules.append((kind, channel, None))
    _check_follows_in_app(user, checked)
    with transaction.atomic():
        for kind, channel, digest in schedules:
            if digest is None:
                DigestChoice.objects.filter(user_id=user.pk, kind=kind, channel=channel).delete()
            else:
                DigestChoice.objects.update_or_create(
                    user_id=user.pk, kind=kind, channel=channel, defaults=digest
                )
        for kind, channel, enabled in checked:
            if enabled is None:
                Preference.objects.filter(user_id=user.pk, kind=kind, channel=channel).delete()
            else:
                Preference.objects.update_or_create(
                    user_id=user.pk, kind=kind, channel=channel, defaults={"enabled": enabled}
                )


def _check_follows_in_app(user: AbstractBaseUser, checked: list[tuple[str, str, bool | None]]) -> None:
    """Refuse turning on email or push of a kind that is off in the app after ``checked``."""
    for kind, channel, enabled in checked:
        if not kind or channel == IN_APP or not enabled:
            continue
        chosen = _chosen(user, kind)
        for k, c, e in checked:
            if k in (kind, "") and c == IN_APP:
                if e is None:
                    chosen.pop((k, c), None)
                else:
                    chosen[k, c] = e
        declared = register[kind]
        if not _cells(declared, chosen)[IN_APP].enabled:
            raise ValueError(
                gettext(
                    "%(label)s (%(kind)r) is off in the app, and %(channel)s only reaches "
                    "notifications that are in the app: turn its in_app channel on first."
                )
                % {"label": declared.label, "kind": kind, "channel": channel}
            )


_SCHEDULE_FIELDS = ("every", "at", "weekday", "time_zone")
# How often a kind's email or push may go; "default" is as the kind declares.
EVERY = ("default", "now", "hourly", "daily", "weekly", "off")


def _schedule_change(
    user: AbstractBaseUser, change: Mapping[str, Any]
) -> tuple[str, str, bool, dict[str, Any] | None]:
    """A checked ``every`` change: (kind, channel, enabled, the DigestChoice's fields or None)."""
    import zoneinfo
    from datetime import time

    from .digests import user_zone

    kind, channel, every = change.get("kind"), change.get("channel"), change.get("every")
    if "enabled" in change:
        raise ValueError(gettext("Give enabled or every, not both."))
    if not isinstance(kind, str):
        raise ValueError(gettext("every is chosen per kind: kind must be a declared kind's key."))
    if channel not in ("email", "push"):
        raise ValueError(
            gettext("every is for the email and push channels, not %(channel)r.") % {"channel": channel}
        )
    declared = register[kind]
    _check_channel(declared, channel)
    if declared.critical:
        raise ValueError(
            gettext("%(label)s (%(kind)r) is critical: it is always sent at once.")
            % {"label": declared.label, "kind": kind}
        )
    if every not in EVERY:
        raise ValueError(
            gettext("Unknown every %(every)r; allowed: %(allowed)s.") % {"every": every, "allowed": ", ".join(EVERY)}
        )
    if every == "off":
        return kind, channel, False, None
    if every == "default":
        return kind, channel, True, None
    at = change.get("at") or "08:00"
    try:
        at = at if isinstance(at, time) else time.fromisoformat(str(at))
    except ValueError:
        raise ValueError(
            gettext("at must be a local time such as '08:00', not %(at)r.") % {"at": at}
        ) from None
    weekday = change.get("weekday", 0)
    if every == "weekly" and (not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6):
        raise ValueError(gettext("weekday must be 0 (Monday) to 6 (Sunday)."))
    zone = change.get("time_zone") or user_zone(user.pk)
    try:
        zoneinfo.ZoneInfo(str(zone))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            gettext("Unknown time zone %(zone)r; use an IANA name such as 'Europe/Paris'.") % {"zone": zone}
        ) from None
    fields = {
        "every": every,
        "at": at.replace(second=0, microsecond=0, tzinfo=None),
        "weekday": weekday if every == "weekly" else None,
        "time_zone": str(zone),
    }
    return kind, channel, True, fields
