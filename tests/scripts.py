"""
Helpers the failure and concurrency tests run as separate processes, against
whatever DATABASE_URL / REDIS_URL they are given:

    python -m tests.scripts session USERNAME [--staff]   print a session key (creates the user)
    python -m tests.scripts notify USERNAME VERB [COUNT]  notify, one transaction each
    python -m tests.scripts notify-key USERNAME KEY [HOLD RELEASE]   notify with an idempotency
        key and print the ids returned; with HOLD and RELEASE (paths), create HOLD once the
        row is written and keep the transaction open until RELEASE exists
    python -m tests.scripts write SEED COUNT USER_ID...   random users, widened commit windows,
        backdated timestamps, a writer clock 5 minutes off, and one transaction held open
        for LONG_TRANSACTION seconds (environment, default 0: none); print "wall-clock
        seconds" per notify() with its commit (but the one held open)
    python -m tests.scripts publish INTERVAL STOP USERNAME...   notify the users in turn every
        INTERVAL seconds until the file STOP exists; print "user_id id seconds" per notify()
"""

from __future__ import annotations

import os
import random
import sys
import time


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction

    from notifications import api

    User = get_user_model()
    command, *args = argv
    if command == "session":
        user, _ = User.objects.get_or_create(username=args[0], defaults={"is_staff": "--staff" in args})
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        print(user.pk, session.session_key)
    elif command == "notify":
        user = User.objects.get(username=args[0])
        count = int(args[2]) if len(args) > 2 else 1
        ids = [api.notify(user, args[1])[0].pk for _ in range(count)]
        print(*ids)
    elif command == "notify-key":
        from pathlib import Path

        from django.db.models.signals import post_save

        from notifications.models import Notification

        def hold(**kwargs: object) -> None:
            Path(args[2]).touch()
            deadline = time.monotonic() + 60
            while not Path(args[3]).exists() and time.monotonic() < deadline:
                time.sleep(0.02)

        if len(args) > 2:
            post_save.connect(hold, sender=Notification, weak=False)
        user = User.objects.get(username=args[0])
        print(*[n.pk for n in api.notify(user, "commented", key=args[1])])
    elif command == "write":
        from datetime import timedelta

        from django.utils import timezone

        seed, count, *user_ids = args
        rng = random.Random(int(seed))
        users = list(User.objects.filter(pk__in=user_ids))
        long_transaction = float(os.environ.get("LONG_TRANSACTION", "0"))
        # This writer's clock: odd writers run 5 minutes behind.
        skew = timedelta(minutes=-5 if int(seed) % 2 else 0)
        hold_at = int(count) // (2 + int(seed) % 3)
        timings = []  # (wall clock at the start, seconds) of each notify() with its commit
        for i in range(int(count)):
            started = time.monotonic()
            with transaction.atomic():
                stamp = timezone.now() + skew
                if rng.random() < 0.1:  # a caller passing an old timestamp
                    stamp -= timedelta(seconds=rng.randint(1, 3600))
                api.notify(rng.choice(users), f"w{seed}-{i}", timestamp=stamp)
                # Hold the transaction open a moment so that other writers'
                # later ids commit first: out-of-order commits, on purpose.
                if long_transaction and i == hold_at:
                    time.sleep(long_transaction)
                elif rng.random() < 0.3:
                    time.sleep(rng.random() * 0.004)
            if not (long_transaction and i == hold_at):
                timings.append((time.time() - (time.monotonic() - started), time.monotonic() - started))
        print("\n".join(f"{at:.3f} {seconds:.4f}" for at, seconds in timings))
    elif command == "publish":
        from pathlib import Path

        interval, stop, *usernames = args
        users = list(User.objects.filter(username__in=usernames))
        deadline = time.monotonic() + 120
        i = 0
        while not Path(stop).exists() and time.monotonic() < deadline:
            user = users[i % len(users)]
            started = time.monotonic()
            nid = api.notify(user, f"published {i}")[0].pk
            print(user.pk, nid, f"{time.monotonic() - started:.4f}", flush=True)
            i += 1
            time.sleep(float(interval))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
