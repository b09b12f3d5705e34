from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Case, Exists, OuterRef, Q, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import users, visibility
from .compat import HqNotificationMixin, HqQuerySetMixin
from .fields import CreatedField, NotificationDataField

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


class Level(models.TextChoices):
    SUCCESS = "success", _("success")
    INFO = "info", _("info")
    WARNING = "warning", _("warning")
    ERROR = "error", _("error")


class Audience(models.TextChoices):
    USER = "user", _("one user")
    ALL = "all", _("everyone")
    STAFF = "staff", _("staff only")
    GROUP = "group", _("members of a group")


class Audiences:
    """Who a stream's user is, for deciding which broadcasts they may see."""

    __slots__ = ("user_id", "is_staff", "group_ids", "session_key", "session_hash")

    def __init__(
        self,
        user_id: Any,
        is_staff: bool,
        group_ids: frozenset[int],
        session_key: str | None = None,
        session_hash: str | None = None,
    ):
        self.user_id = user_id
        self.is_staff = is_staff
        self.group_ids = group_ids
        self.session_key = session_key  # the login a stream belongs to
        # The login's session auth hash when the stream opened: a password
        # change makes the user's hash differ, and the stream ends.
        self.session_hash = session_hash

    @classmethod
    def of(
        cls, user: AbstractBaseUser, session_key: str | None = None, session_hash: str | None = None
    ) -> Audiences:
        """Read the user's staff flag and group ids (one query; none without groups)."""
        group_ids = users.group_ids([user.pk]).get(user.pk, frozenset())
        return cls(user.pk, users.is_staff(user), group_ids, session_key, session_hash)

    def may_see(self, audience: str, recipient_id: Any, group_id: int | None) -> bool:
        """See ``visibility.may_see``."""
        return visibility.may_see(self, audience, recipient_id, group_id)

    def q(self) -> Q:
        """The rows this user may see, before expiry and hiding (``visibility.audience_q``)."""
        return visibility.audience_q(self)


def superseded() -> Q:
    """The rows a newer member of their group stands in for: see ``grouping.superseded``."""
    from .grouping import superseded

    return superseded()


class NotificationQuerySet(HqQuerySetMixin, models.QuerySet["Notification"]):
    def personal(self) -> NotificationQuerySet:
        return self.filter(recipient__isnull=False)

    def broadcasts(self) -> NotificationQuerySet:
        return self.filter(recipient__isnull=True)

    def live(self) -> NotificationQuerySet:
        """Not soft-deleted and not expired."""
        return self.filter(visibility.live_q(timezone.now()))

    def for_audiences(self, who: Audiences, *, members: bool = False) -> NotificationQuerySet:
        """
        What the user described by ``who`` may see, live, with an ``is_unread``
        annotation that accounts for broadcast receipts. One query. A group
        shows as its newest row; ``members``: its older members too (what a
        change of state may name: a read link sent before a newer member came).
        """
        receipts = BroadcastReceipt.objects.filter(
            notification=OuterRef("pk"), user_id=who.user_id
        )
        hidden = receipts.filter(hidden=True)
        rows = self.live().filter(who.q()).exclude(Q(recipient__isnull=True) & Exists(hidden))
        if not members:
            rows = rows.exclude(superseded())
        return (
            rows.annotate(
                is_unread=Case(
                    When(recipient__isnull=False, then="unread"),
                    default=~Exists(receipts),
                    output_field=models.BooleanField(),
                )
            )
        )

    def for_user(self, user: AbstractBaseUser) -> NotificationQuerySet:
        return self.for_audiences(Audiences.of(user))


class Notification(HqNotificationMixin, models.Model):
    """
    One notification: personal (``recipient`` set) or a broadcast (``recipient``
    NULL, seen by its ``audience``). Ordered by ``id``, which is the stream cursor.
    """

    id = models.BigAutoField(primary_key=True, verbose_name=_("ID"))
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
        verbose_name=_("recipient"),
        help_text=_("Empty for a broadcast."),
        # notif_recipient_id (recipient, id) serves every lookup by recipient;
        # an index of its own would only slow down each insert.
        db_index=False,
    )
    audience = models.CharField(
        _("audience"), max_length=8, choices=Audience.choices, default=Audience.USER
    )
    audience_group = models.ForeignKey(
        Group,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("audience group"),
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)

    actor_content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor type"),
    )
    actor_object_id = models.CharField(_("actor ID"), max_length=255, blank=True, default="")
    actor = GenericForeignKey("actor_content_type", "actor_object_id")
    actor_display = models.CharField(
        _("actor"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("How the actor was named when the notification was sent."),
    )

    verb = models.CharField(_("verb"), max_length=255)
    description = models.TextField(_("description"), blank=True, default="")

    action_object_content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("action object type"),
    )
    action_object_object_id = models.CharField(
        _("action object ID"), max_length=255, blank=True, default=""
    )
    action_object = GenericForeignKey(
        "action_object_content_type", "action_object_object_id"
    )

    target_content_type = models.ForeignKey(
        ContentType,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("target type"),
    )
    target_object_id = models.CharField(_("target ID"), max_length=255, blank=True, default="")
    target = GenericForeignKey("target_content_type", "target_object_id")

    # 20 characters, as in django-notifications-hq, whose rows may hold other levels.
    level = models.CharField(_("level"), max_length=20, choices=Level.choices, default=Level.INFO)
    url = models.CharField(_("link"), max_length=2000, blank=True, default="")
    data = NotificationDataField(_("data"), default=dict, blank=True)
    # Also ``timestamp``, django-notifications-hq's name, in queries and on
    # instances (see fields.py).
    created = CreatedField(_("created"), default=timezone.now, db_index=True)
    unread = models.BooleanField(_("unread"), default=True)
    deleted = models.BooleanField(_("deleted"), default=False)
    kind = models.CharField(
        _("kind"),
        max_length=64,
        blank=True,
        default="",
        help_text=_("The declared kind's key; empty for a notification with only a verb."),
    )
    # Grouping (see grouping.py): ``group_key`` is what the kind groups by
    # ("comment:target:7:42"), ``group`` the one group this row belongs to,
    # shared by the rows a window folds into one item. Both empty otherwise.
    group_key = models.CharField(_("group key"), max_length=200, blank=True, default="")
    group = models.CharField(_("group"), max_length=32, blank=True, default="")
    # Kept from django-notifications-hq: the app does not read them.
    public = models.BooleanField(_("public"), default=True)
    emailed = models.BooleanField(_("emailed"), default=False)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["recipient", "id"], name="notif_recipient_id"),
            models.Index(
                fields=["recipient", "unread"],
                name="notif_recipient_unread",
                condition=Q(unread=True),
            ),
            models.Index(
                fields=["audience", "id"],
                name="notif_broadcast",
                condition=Q(recipient__isnull=True),
            ),
            # The open group of a key (on insert), and a group's members (on
            # read); only grouped rows are indexed.
            models.Index(
                fields=["recipient", "group_key", "id"],
                name="notif_group_key",
                condition=~Q(group_key=""),
            ),
            models.Index(
                fields=["recipient", "group", "id"],
                name="notif_group",
                condition=~Q(group=""),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                name="notif_recipient_matches_audience",
                condition=(Q(audience="user") & Q(recipient__isnull=False))
                | (~Q(audience="user") & Q(recipient__isnull=True)),
            ),
            models.CheckConstraint(
                name="notif_group_audience_has_group",
                condition=Q(audience="group", audience_group__isnull=False)
                | (~Q(audience="group") & Q(audience_group__isnull=True)),
            ),
        ]

    def __str__(self) -> str:
        who = self.actor_display or _("system")
        return f"{who} {self.verb}"

    @property
    def is_broadcast(self) -> bool:
        return self.recipient_id is None

    def as_dict(self, *, unread: bool | None = None) -> dict[str, Any]:
        from .render import as_dict

        return as_dict(self, unread=unread)


class BroadcastManager(models.Manager["Broadcast"]):
    def get_queryset(self) -> models.QuerySet[Broadcast]:
        return super().get_queryset().filter(recipient__isnull=True)


class Broadcast(Notification):
    """Broadcasts as their own admin page: the rows with no recipient."""

    objects = BroadcastManager()  # type: ignore[misc,assignment]

    class Meta:
        proxy = True
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")


class BroadcastReceipt(models.Model):
    """One user's state of one broadcast: read, and optionally hidden."""

    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="receipts",
        verbose_name=_("notification"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    read_at = models.DateTimeField(_("read at"), default=timezone.now)
    hidden = models.BooleanField(_("hidden"), default=False)

    class Meta:
        verbose_name = _("broadcast receipt")
        verbose_name_plural = _("broadcast receipts")
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "user"], name="notif_receipt_unique"
            )
        ]
        indexes = [models.Index(fields=["user", "notification"], name="notif_receipt_user")]


class InboxState(models.Model):
    """
    One user's inbox state of one notification, personal or broadcast (see
    inbox.py): seen (the badge counts what is unread and not seen), archived
    (out of the inbox, listed under "Archived"), snoozed until a time (out of
    the inbox until then, then back as new). No row: unseen, in the inbox.
    """

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    seen_at = models.DateTimeField(null=True, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("inbox state")
        verbose_name_plural = _("inbox states")
        constraints = [
            models.UniqueConstraint(fields=["user", "notification"], name="notif_inbox_unique")
        ]
        indexes = [
            # The snoozes that came due (inbox.due_snoozes).
            models.Index(
                fields=["snoozed_until"],
                name="notif_inbox_snoozed",
                condition=Q(snoozed_until__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"#{self.notification_id} for user {self.user_id}"


class Preference(models.Model):
    """
    One user's choice for one channel of one kind (``kind`` empty: the whole
    channel). Only what a user changed is stored; see preferences.py.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=64, blank=True, default="")
    channel = models.CharField(max_length=16)
    enabled = models.BooleanField()

    class Meta:
        verbose_name = _("preference")
        verbose_name_plural = _("preferences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "channel"], name="notif_preference_unique"
            )
        ]

    def __str__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"{self.kind or '*'}/{self.channel}: {state}"


class Delivery(models.Model):
    """
    One scheduled email or push of a notification (see schedule.py): due at
    ``due``, sent only if the notification is still unread then. A grouped
    kind's member has one too (``group`` set); it goes out only if no other
    of its group took its turn within the kind's window (``turn_at``, see
    ``grouping.take_turn``), and names the whole group.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        SENDING = "sending", _("sending")  # claimed: the attempt is recorded
        SENT = "sent", _("sent")
        SKIPPED = "skipped", _("skipped")  # read, deleted or muted by then
        FAILED = "failed", _("failed")

    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("notification"),
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("recipient"),
    )
    channel = models.CharField(_("channel"), max_length=16)
    group = models.CharField(_("group"), max_length=32, blank=True, default="")
    due = models.DateTimeField(_("due"))
    state = models.CharField(
        _("state"), max_length=8, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=255, blank=True, default="")
    # Push: the subscriptions that accepted it already, skipped when a retry
    # goes to the others.
    done = models.JSONField(_("subscriptions done"), default=list, blank=True)
    # Push: how each device (subscription id) answered its latest attempt:
    # {"12": {"host": ..., "result": "sent", "status": 201, "attempt": 1}}.
    devices = models.JSONField(_("devices"), null=True, blank=True)
    # A grouped delivery: when it went out for its group (grouping.take_turn).
    turn_at = models.DateTimeField(_("turn at"), null=True, blank=True)
    # Folded into a digest (see digests.py): the digest's key; the rows of one
    # recipient, channel and key go out as one message at ``due``.
    digest = models.CharField(_("digest"), max_length=100, blank=True, default="")
    # A message of its own that counted against the recipient's hourly cap.
    capped_at = models.DateTimeField(_("capped at"), null=True, blank=True)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(
                fields=["due"], name="notif_delivery_due", condition=Q(state="pending")
            ),
            # Claims whose worker died (see schedule.expire_claims).
            models.Index(
                fields=["claimed_at"], name="notif_delivery_claimed", condition=Q(state="sending")
            ),
            # The due digests (digests.claim).
            models.Index(
                fields=["due"],
                name="notif_delivery_digest_due",
                condition=Q(state="pending") & ~Q(digest=""),
            ),
            # The messages counted against a recipient's cap (digests.over_cap).
            models.Index(
                fields=["recipient", "channel", "capped_at"],
                name="notif_delivery_capped",
                condition=Q(capped_at__isnull=False),
            ),
            # The turns of a group (grouping.take_turn).
            models.Index(
                fields=["recipient", "channel", "group", "turn_at"],
                name="notif_delivery_turn",
                condition=Q(turn_at__isnull=False),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["notification", "channel"], name="notif_delivery_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} of #{self.notification_id}: {self.state}"


class QuietHours(models.Model):
    """A user's quiet hours: email and push wait until ``end`` (critical kinds do not)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    start = models.TimeField()
    end = models.TimeField()
    time_zone = models.CharField(max_length=64, default="UTC")

    class Meta:
        verbose_name = _("quiet hours")
        verbose_name_plural = _("quiet hours")

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.time_zone}"


class DigestChoice(models.Model):
    """
    How often one user gets one kind's email or push (see digests.py):
    ``every`` "now" (each at once), "hourly", "daily" at ``at`` or "weekly"
    on ``weekday`` (0 is Monday) at ``at``, local times in ``time_zone``.
    "Off" is a ``Preference`` like any channel's.
    """

    class Every(models.TextChoices):
        NOW = "now", _("at once")
        HOURLY = "hourly", _("hourly digest")
        DAILY = "daily", _("daily digest")
        WEEKLY = "weekly", _("weekly digest")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=64)
    channel = models.CharField(max_length=16)
    every = models.CharField(max_length=8, choices=Every.choices)
    at = models.TimeField(null=True, blank=True)
    weekday = models.PositiveSmallIntegerField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, default="UTC")

    class Meta:
        verbose_name = _("digest choice")
        verbose_name_plural = _("digest choices")
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "channel"], name="notif_digestchoice_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.channel}: {self.every}"


class PushSubscription(models.Model):
    """One browser's Web Push subscription (its ``PushSubscription.toJSON()``) for a user."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    endpoint = models.CharField(max_length=1000, unique=True)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("push subscription")
        verbose_name_plural = _("push subscriptions")
        indexes = [models.Index(fields=["user"], name="notif_push_user")]

    def __str__(self) -> str:
        return self.endpoint[:60]

    def as_info(self) -> dict[str, Any]:
        """The subscription as pywebpush takes it."""
        return {"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}}
class ReadEvent(models.Model):
    """
    A change of read state (read, unread, deleted), kept briefly so every open
    stream of the user hears of it from the database, not only through the
    channel layer: tabs converge within a poll interval whatever the layer does.
    Pruned after NOTIFICATIONS_READ_EVENT_RETENTION seconds.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    payload = models.TextField()  # the ``read`` event's JSON, encoded once
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("read event")
        verbose_name_plural = _("read events")
        indexes = [
            models.Index(fields=["user", "id"], name="notif_readevent_user"),
            models.Index(fields=["created"], name="notif_readevent_created"),
        ]


class PublishKey(models.Model):
    """
    An idempotency key taken by ``notify(..., key=...)`` for one recipient: a
    second call with the key for that recipient within
    NOTIFICATIONS_IDEMPOTENCY_WINDOW finds it (the unique constraint decides,
    also between processes) and writes nothing. ``notification`` is the row
    the first call wrote (None: the recipient had muted the kind).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    key = models.CharField(max_length=200)
    notification = models.ForeignKey(
        Notification, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    # Which call took it: the call finds its own among the keys it tried.
    claim = models.CharField(max_length=32)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="notif_publishkey_unique")
        ]
        indexes = [models.Index(fields=["created"], name="notif_publishkey_created")]

    def __str__(self) -> str:
        return f"{self.key} for user {self.user_id}"
