from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications import links
from notifications.kinds import register
from notifications.models import Level

from .models import Post


class SendForm(forms.Form):
    """The demo's "send a notification" form."""

    recipient = forms.ChoiceField(label=gettext_lazy("Recipient"))
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        required=False,
        help_text=gettext_lazy("Comments on one post fold into one item."),
    )
    post = forms.ModelChoiceField(
        Post.objects.order_by("pk"),
        label=gettext_lazy("Post"),
        required=False,
        empty_label=gettext_lazy("(none)"),
    )
    verb = forms.CharField(label=gettext_lazy("Verb"), max_length=255, initial="says hello")
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    level = forms.ChoiceField(label=gettext_lazy("Level"), choices=Level.choices, initial=Level.INFO)
    url = forms.CharField(label=gettext_lazy("URL"), required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        choices = [(f"user:{u.pk}", u.get_username()) for u in users]
        choices += [
            (f"group:{g.pk}", _("group %(name)s") % {"name": g.name})
            for g in Group.objects.order_by("name")
        ]
        choices += [("all", _("everyone (broadcast)")), ("staff", _("staff (broadcast)"))]
        self.fields["recipient"].choices = choices
        self.fields["kind"].choices = [("", _("(no kind: just the verb)"))] + [
            (kind.key, _("%(label)s (critical)") % {"label": kind.label} if kind.critical else str(kind.label))
            for kind in register
        ]

    def clean(self):
        data = super().clean()
        if data.get("kind") == "comment" and not data.get("post"):
            self.add_error("post", _("A comment is on a post: choose one."))
        if data.get("kind") and data.get("recipient") in ("all", "staff"):
            self.add_error("kind", _("Broadcasts have no kind: choose a user or a group."))
        if not links.is_safe(data.get("url") or ""):
            self.add_error(
                "url",
                _("Enter a relative URL (/path, ?query, #fragment) or an absolute http(s) URL."),
            )
        return data
