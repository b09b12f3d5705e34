from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import router, transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from . import delivery, links
from .api import mark_read, mark_unread
from .models import Audience, Broadcast, BroadcastReceipt, Delivery, Notification
from .users import groups_field


class LinksForm(forms.ModelForm):
    """Refuses the links ``api.notify()`` refuses (see links.py): the admin writes rows too."""

    def clean_url(self) -> str:
        url = self.cleaned_data.get("url") or ""
        if not links.is_safe(url):
            raise _unsafe_link("url")
        return url

    def clean_data(self) -> Any:
        data = self.cleaned_data.get("data")
        if isinstance(data, dict):
            for name, url in links.data_links(data):
                if not links.is_safe(url):
                    raise _unsafe_link(name)
        return data


def _unsafe_link(name: str) -> forms.ValidationError:
    """The admin's words for what ``links.check_url`` refuses, in the user's language."""
    return forms.ValidationError(
        _(
            "%(name)s is not a safe link. Enter a relative URL (/path, path, ?query, "
            "#fragment) or an absolute http(s) URL, without spaces at either end."
        )
        % {"name": name}
    )


class NotificationForm(LinksForm):
    class Meta:
        model = Notification
        fields = ("recipient", "verb", "description", "level", "url", "data", "unread", "deleted")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["recipient"].required = True


class BroadcastForm(LinksForm):
    audience = forms.ChoiceField(
        label=capfirst(gettext_lazy("audience")),
        choices=[c for c in Audience.choices if c[0] != Audience.USER],
        initial=Audience.ALL,
    )

    class Meta:
        model = Broadcast
        fields = ("verb", "description", "level", "url", "audience", "audience_group", "expires_at", "data")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("audience") == Audience.GROUP and groups_field() is None:
            self.add_error(
                "audience",
                _(
                    "The user model (%(model)s) has no groups: a group broadcast would reach nobody."
                )
                % {"model": get_user_model()._meta.label},
            )
        elif data.get("audience") == Audience.GROUP and not data.get("audience_group"):
            self.add_error("audience_group", _("Pick the group this broadcast is for."))
        elif data.get("audience") != Audience.GROUP:
            data["audience_group"] = None
        return data


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "actor_display", "verb", "kind", "level", "unread", "deleted", "created")
    list_filter = ("level", "unread", "deleted", "created")
    search_fields = ("verb", "description", "actor_display")
    list_select_related = ("recipient",)
    raw_id_fields = ("recipient",)
    date_hierarchy = "created"
    # No second COUNT(*) over the whole table for "(n total)": it grows large.
    show_full_result_count = False
    actions = ["mark_read", "mark_unread"]
    form = NotificationForm

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        """Also the recipient's login name, whatever the user model calls it."""
        return [*self.search_fields, f"recipient__{get_user_model().USERNAME_FIELD}"]

    def save_model(self, request: HttpRequest, obj: Notification, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            recipient = obj.recipient_id
            if recipient is not None:
                transaction.on_commit(
                    lambda: delivery.poke_users([recipient]), using=router.db_for_write(Notification)
                )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Notification]:
        return super().get_queryset(request).filter(recipient__isnull=False)

    @admin.action(description=gettext_lazy("Mark selected notifications as read"))
    def mark_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._set_unread(request, queryset, False)

    @admin.action(description=gettext_lazy("Mark selected notifications as unread"))
    def mark_unread(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        self._set_unread(request, queryset, True)

    def _set_unread(self, request: HttpRequest, queryset: QuerySet[Notification], unread: bool) -> None:
        by_user: dict[Any, list[int]] = {}
        for row in queryset.select_related("recipient").only("id", "recipient"):
            by_user.setdefault(row.recipient, []).append(row.id)
        change = mark_unread if unread else mark_read
        total = sum(len(change(user, ids)) for user, ids in by_user.items())
        message = ngettext(
            "%(count)d notification updated.", "%(count)d notifications updated.", total
        ) % {"count": total}
        self.message_user(request, message, messages.SUCCESS)


@admin.register(Broadcast)
class BroadcastAdmin(admin.ModelAdmin):
    list_display = ("id", "verb", "audience", "audience_group", "level", "expires_at", "created", "read_by")
    list_filter = ("audience", "level", "created")
    search_fields = ("verb", "description")
    list_select_related = ("audience_group",)
    form = BroadcastForm
    date_hierarchy = "created"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Broadcast]:
        return super().get_queryset(request).annotate(read_count=Count("receipts"))

    @admin.display(description=gettext_lazy("read by"), ordering="read_count")
    def read_by(self, obj: Broadcast) -> int:
        return obj.read_count  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Broadcast, form: Any, change: bool) -> None:
        obj.recipient = None
        if not change and request.user.is_authenticated:
            obj.actor_content_type = ContentType.objects.get_for_model(request.user)
            obj.actor_object_id = str(request.user.pk)
            obj.actor_display = str(request.user)[:255]
        super().save_model(request, obj, form, change)
        transaction.on_commit(delivery.poke_all, using=router.db_for_write(Notification))


@admin.register(BroadcastReceipt)
class BroadcastReceiptAdmin(admin.ModelAdmin):
    list_display = ("notification", "user", "read_at", "hidden")
    list_select_related = ("notification", "user")
    raw_id_fields = ("notification", "user")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The email and push schedule, read-only: what was sent, skipped or failed, and why."""

    list_display = ("notification", "recipient", "channel", "state", "due", "attempts", "note")
    list_filter = ("channel", "state")
    list_select_related = ("notification", "recipient")
    raw_id_fields = ("notification", "recipient")
    date_hierarchy = "due"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
