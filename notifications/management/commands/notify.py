from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from notifications import api
from notifications.models import Level


class Command(BaseCommand):
    help = (
        "Send a notification from the command line (cron jobs, scripts): to users "
        "by username, to a group's members, or as a broadcast."
    )

    def add_arguments(self, parser):
        parser.add_argument("verb")
        parser.add_argument("--user", action="append", default=[], help="Username; repeatable.")
        parser.add_argument("--group", help="Notify every member of this group.")
        parser.add_argument(
            "--broadcast",
            choices=["all", "staff", "group"],
            help="One broadcast row instead of per-user rows (group: use --group).",
        )
        parser.add_argument("--description", default="")
        parser.add_argument("--level", default=Level.INFO, choices=Level.values)
        parser.add_argument("--url", default="")
        parser.add_argument("--kind", default=None, help="A declared kind's key.")
        parser.add_argument("--count", type=int, default=1, help="Send this many (testing).")

    def handle(self, *args, verb, user, group, broadcast, description, level, url, kind, count, **options):
        fields = {"description": description, "level": level, "url": url}
        group_obj = None
        if group:
            try:
                group_obj = Group.objects.get(name=group)
            except Group.DoesNotExist:
                raise CommandError(f"No group named {group!r}.") from None
        try:
            for _ in range(count):
                if broadcast:
                    audience = group_obj if broadcast == "group" else broadcast
                    if broadcast == "group" and group_obj is None:
                        raise CommandError("--broadcast group needs --group NAME.")
                    rows = [api.broadcast(verb, audience=audience, **fields)]
                else:
                    User = get_user_model()
                    users = list(User._default_manager.filter(**{f"{User.USERNAME_FIELD}__in": user}))
                    missing = set(user) - {u.get_username() for u in users}
                    if missing:
                        raise CommandError(f"No such user(s): {', '.join(sorted(missing))}.")
                    recipient = group_obj if group_obj is not None else users
                    rows = api.notify(recipient, verb, kind=kind, **fields)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        last = f"; last id {rows[-1].pk}" if rows else " (every recipient muted this kind)"
        self.stdout.write(f"Sent {len(rows)} notification(s) per round, {count} round(s){last}.")
