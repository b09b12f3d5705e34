"""
Helpers for benchmarking this project; run with the benchmark's virtualenv.

    python ours_tool.py createdb NAME       create (drop first) a PostgreSQL database
    python ours_tool.py dropdb NAME         drop it
    python ours_tool.py setup USERS OUT     users, a group of all of them, logged-in
                                            sessions; writes [{"user_id", "session"}] to OUT
    python ours_tool.py publish             read JSON commands on stdin, answer on stdout

The project's settings are used as they are: DATABASE_URL and REDIS_URL come from
the environment, the repository root from BENCH_REPO.
"""

from __future__ import annotations

import json
import os
import sys
import time

GROUP_NAME = "bench-all"


def _admin_connection():
    import psycopg

    url = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return psycopg.connect(url, autocommit=True)


def createdb(name: str) -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def dropdb(name: str) -> None:
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _django() -> None:
    sys.path.insert(0, os.environ["BENCH_REPO"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()


def setup(count: int, out: str) -> None:
    """Create ``count`` users in one group, each with a logged-in session, in bulk."""
    _django()
    from datetime import timedelta

    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    User = get_user_model()
    password = make_password("bench")  # one hash for all: hashing 10,000 times is slow
    with transaction.atomic():
        User.objects.bulk_create(
            [User(username=f"bench{i}", password=password) for i in range(count)],
            batch_size=2000,
        )
        users = sorted(
            User.objects.filter(username__startswith="bench"),
            key=lambda u: int(u.username[5:]),
        )
        group = Group.objects.create(name=GROUP_NAME)
        Membership = User.groups.through
        Membership.objects.bulk_create(
            [Membership(user_id=u.pk, group_id=group.pk) for u in users], batch_size=5000
        )
        store = SessionStore()
        auth_hash = users[0].get_session_auth_hash()  # the same for one password hash
        expire = timezone.now() + timedelta(days=1)
        sessions = []
        for user in users:
            data = {
                SESSION_KEY: str(user.pk),
                BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
                HASH_SESSION_KEY: auth_hash,
            }
            sessions.append(
                Session(
                    session_key=get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789"),
                    session_data=store.encode(data),
                    expire_date=expire,
                )
            )
        Session.objects.bulk_create(sessions, batch_size=2000)
    with open(out, "w") as f:
        json.dump([{"user_id": u.pk, "session": s.session_key} for u, s in zip(users, sessions)], f)


def publish() -> None:
    """
    Answer one JSON line per command read from stdin:
    ``{"cmd": "broadcast", "run": tag, "seq": k}``, ``{"cmd": "burst", "run": tag,
    "user_id": id, "count": n}``, ``{"cmd": "group", "run": tag}``, ``{"cmd": "quit"}``.
    Each payload carries ``t``, the wall-clock time just before the call.
    """
    _django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connections

    from notifications import api

    User = get_user_model()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        cmd, run = command["cmd"], command.get("run")
        if cmd == "quit":
            break
        if cmd == "broadcast":
            t = time.time()
            row = api.broadcast("bench broadcast", data={"t": t, "run": run, "seq": command["seq"]})
            answer = {"id": row.pk, "t": t, "write_s": time.time() - t}
        elif cmd == "burst":
            user = User.objects.get(pk=command["user_id"])
            t0 = time.time()
            for seq in range(command["count"]):
                api.notify(user, "bench burst", data={"t": time.time(), "run": run, "seq": seq})
            answer = {"t": t0, "write_s": time.time() - t0}
        elif cmd == "group":
            group = Group.objects.get(name=GROUP_NAME)
            t = time.time()
            rows = api.notify(group, "bench group", data={"t": t, "run": run, "seq": 0})
            answer = {"t": t, "write_s": time.time() - t, "rows": len(rows)}
        else:
            answer = {"error": f"unknown command {cmd!r}"}
        connections.close_all()
        print(json.dumps(answer), flush=True)


def main(argv: list[str]) -> None:
    cmd, args = argv[0], argv[1:]
    if cmd == "createdb":
        createdb(args[0])
    elif cmd == "dropdb":
        dropdb(args[0])
    elif cmd == "setup":
        setup(int(args[0]), args[1])
    elif cmd == "publish":
        publish()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
