from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from notifications.kinds import register
from notifications.models import Level

from .models import Post


class SendForm(forms.Form):
    """The demo's "send a notification" form."""

    recipient = forms.ChoiceField()
    kind = forms.ChoiceField(required=False, help_text="Comments on one post fold into one item.")
    post = forms.ModelChoiceField(Post.objects.order_by("pk"), required=False, empty_label="(none)")
    verb = forms.CharField(max_length=255, initial="says hello")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    level = forms.ChoiceField(choices=Level.choices, initial=Level.INFO)
    url = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        choices = [(f"user:{u.pk}", u.get_username()) for u in users]
        choices += [(f"group:{g.pk}", f"group {g.name}") for g in Group.objects.order_by("name")]
        choices += [("all", "everyone (broadcast)"), ("staff", "staff (broadcast)")]
        self.fields["recipient"].choices = choices
        self.fields["kind"].choices = [("", "(no kind: just the verb)")] + [
            (kind.key, f"{kind.label}{' (critical)' if kind.critical else ''}") for kind in register
        ]

    def clean(self):
        data = super().clean()
        if data.get("kind") == "comment" and not data.get("post"):
            self.add_error("post", "A comment is on a post: choose one.")
        if data.get("kind") and data.get("recipient") in ("all", "staff"):
            self.add_error("kind", "Broadcasts have no kind: choose a user or a group.")
        return data
