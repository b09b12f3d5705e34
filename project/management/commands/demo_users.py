from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from notifications import api
from notifications.models import Notification
from project.models import Post

DEMO_USERS = [
    # username, password, staff/superuser, groups
    ("alice", "alice", False, ["team"]),
    ("bob", "bob", False, []),
    ("admin", "admin", True, ["team"]),
]


class Command(BaseCommand):
    help = "Create the demo users (alice, bob, admin) and print their credentials."

    def handle(self, *args, **options):
        User = get_user_model()
        team, _ = Group.objects.get_or_create(name="team")
        for username, password, staff, groups in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = user.is_superuser = staff
            user.save()
            user.groups.set(Group.objects.filter(name__in=groups))
            if created:
                api.notify(user, "welcome to the demo", description="Open a second tab and send yourself a notification.")
        for number in range(1, 4):
            Post.objects.get_or_create(title=f"Post {number}")
        self.stdout.write("Demo users (username / password):")
        for username, password, staff, groups in DEMO_USERS:
            role = "staff, admin site" if staff else "user"
            member = f", member of {', '.join(groups)}" if groups else ""
            self.stdout.write(f"  {username} / {password}  ({role}{member})")
        self.stdout.write(f"{Notification.objects.count()} notifications in the database.")
