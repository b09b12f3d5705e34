"""
How long swapping django-notifications-hq for this app takes on a large table:
builds hq 1.8.3's schema (in hq's own virtualenv, see tests/hq/legacy.py) in a
new PostgreSQL database, fills it with ``--rows`` rows by SQL, then times this
app's ``migrate``. The database is dropped at the end, whatever happens.

    python -m benchmarks.hq_swap --rows 1000000
    python -m benchmarks.hq_swap --server postgres://postgres@127.0.0.1:5432

Talks only to the PostgreSQL server given (127.0.0.1 by default); each step has
a time limit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hq.legacy import hq_python  # noqa: E402

FILL = """
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT '!', false, 'user' || n, 'User', 'Number ' || n, '', false, true, now()
FROM generate_series(1, 1000) AS n;

INSERT INTO notifications_notification
    (level, unread, actor_object_id, verb, description, target_object_id,
     action_object_object_id, "timestamp", public, action_object_content_type_id,
     actor_content_type_id, recipient_id, target_content_type_id, deleted, emailed, data)
SELECT
    (ARRAY['info', 'success', 'warning', 'error', 'custom-level'])[1 + n % 5],
    n % 3 <> 0,
    (1 + n % 1000)::text,
    'did thing ' || (n % 17),
    CASE WHEN n % 4 = 0 THEN NULL ELSE 'Zażółć gęślą jaźń #' || n END,
    CASE WHEN n % 2 = 0 THEN (1 + (n * 7) % 1000)::text END,
    NULL,
    now() - (n || ' seconds')::interval,
    true, NULL,
    (SELECT id FROM django_content_type WHERE app_label = 'auth' AND model = 'user'),
    1 + (n * 13) % 1000,
    CASE WHEN n % 2 = 0
         THEN (SELECT id FROM django_content_type WHERE app_label = 'auth' AND model = 'user') END,
    n % 50 = 0, false,
    CASE WHEN n % 3 = 0 THEN NULL
         WHEN n % 1000 = 1 THEN '{not json'
         ELSE '{"url": "/items/' || n || '/", "n": ' || n || '}' END
FROM generate_series(1, %(rows)s) AS n;
ANALYZE notifications_notification;
"""


def step(label: str, argv: list[str], env: dict[str, str], timeout: float) -> float:
    start = time.monotonic()
    subprocess.run(argv, cwd=ROOT, env=env, check=True, timeout=timeout)
    took = time.monotonic() - start
    print(f"{label}: {took:.1f} s", flush=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    name = f"hq_swap_bench_{os.getpid()}"
    admin = f"{args.server}/postgres"
    url = f"{args.server}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        hq = {"PATH": os.environ.get("PATH", "")}
        step("hq 1.8.3 schema", [hq_python(), "tests/hq/make_hq_database.py", url, "--schema-only"], hq, 300)
        start = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FILL.replace("%(rows)s", str(int(args.rows))))
        print(f"fill {args.rows} rows: {time.monotonic() - start:.1f} s", flush=True)
        ours = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "project.settings"}
        manage = [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"]
        schema = step("migrate to 0015 (schema, one transaction)", [*manage, "notifications", "0015"], ours, 1800)
        fill = step("migrate 0016 (actor names and urls, batches)", [*manage, "notifications", "0016"], ours, 1800)
        rest = step("migrate the rest (0017 on: transaction ids...)", manage, ours, 1800)
        print(f"total: {schema + fill + rest:.1f} s for {args.rows} rows")
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
