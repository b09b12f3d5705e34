from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from notifications import api

from .forms import SendForm


@login_required
@require_http_methods(["GET", "POST"])
def home(request):
    """The demo page: the bell, the list, and a form to send a notification."""
    form = SendForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["recipient"]
        fields = {
            "actor": request.user,
            "description": form.cleaned_data["description"],
            "level": form.cleaned_data["level"],
            "url": form.cleaned_data["url"],
        }
        verb = form.cleaned_data["verb"]
        kind = form.cleaned_data["kind"] or None
        post = form.cleaned_data["post"]
        if post is not None:
            fields["target"] = post
            fields["data"] = {"post": post.title}
        if target in ("all", "staff"):
            api.broadcast(verb, audience=target, **fields)
        else:
            what, pk = target.split(":")
            model = get_user_model() if what == "user" else Group
            recipient = model.objects.get(pk=pk)
            try:
                api.notify(recipient, verb, kind=kind, **fields)
            except api.NoRecipients:
                messages.error(request, _("Nobody received it: the group has no members."))
                return redirect("home")
        messages.success(request, _("Sent."))
        return redirect("home")
    return render(request, "home.html", {"form": form})


@login_required
def preferences(request):
    """The user's notification preferences ({% notification_preferences %})."""
    return render(request, "preferences.html")
