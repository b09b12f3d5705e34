"""
Databases written by django-notifications-hq itself, or by its community fork,
for the swap tests.

Each runs in a virtualenv of its own (hq 1.8.3: Python 3.11, Django 4.2; the
fork 1.12.3: Django 5.2), created on first use under test-artifacts/ with pip
(so CI needs PyPI), and writes a database on the test run's backend: an SQLite
file, or a PostgreSQL database of its own on the server of DATABASE_URL,
dropped afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..artifacts import building

ROOT = Path(__file__).resolve().parent.parent.parent
FLAVOURS = {
    "hq-1.8.3": ["Django>=4.2,<5", "django-notifications-hq==1.8.3", "psycopg[binary]>=3.1,<4"],
    "community-1.12.3": [
        "Django>=5.2,<5.3",
        "django-notifications-community==1.12.3",
        "psycopg[binary]>=3.1,<4",
    ],
}


def python311() -> str:
    """hq 1.8.3 imports distutils: it needs Python 3.11 or older."""
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which("python3.11")
    if found is None:
        raise RuntimeError("The hq swap tests need python3.11 (hq 1.8.3 imports distutils).")
    return found


def hq_python(flavour: str = "hq-1.8.3") -> str:
    """See ``_hq_python``; one test run at a time builds it."""
    with building(f"hq-venv-{flavour}"):
        return _hq_python(flavour)


def _hq_python(flavour: str = "hq-1.8.3") -> str:
    """The interpreter of the flavour's virtualenv, created (once) when missing."""
    venv = ROOT / "test-artifacts" / flavour
    stamp = venv / "installed.txt"
    wanted = "\n".join(FLAVOURS[flavour])
    python = venv / "bin" / "python"
    if not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run([python311(), "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *FLAVOURS[flavour]],
            check=True,
            timeout=600,
        )
        stamp.write_text(wanted)
    return str(python)


@contextmanager
def empty_database(tmp: Path) -> Iterator[str]:
    """A new, empty database on the test run's backend, as a DATABASE_URL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp / 'hq.sqlite3'}"
        return
    import psycopg

    parts = urlsplit(url)
    name = f"hq_swap_{uuid.uuid4().hex[:12]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_hq_database(url: str, flavour: str = "hq-1.8.3") -> list[dict[str, Any]]:
    """Migrate and fill ``url`` with hq (or the fork); return the rows as it sees them."""
    result = subprocess.run(
        [hq_python(flavour), str(Path(__file__).with_name("make_hq_database.py")), url],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONIOENCODING": "utf-8"},
        cwd="/",
    )
    if result.returncode:
        raise RuntimeError(f"building the hq database failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def run_here(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python <args>`` of this project against ``url``."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "project.settings"}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300, check=check,
    )


def read_rows(url: str) -> list[dict[str, Any]]:
    """Every row as this app's models read it (see read_rows.py)."""
    return json.loads(run_here(url, "-m", "tests.hq.read_rows").stdout)


_SNAPSHOT = """
import django, json
django.setup()
from django.db import connection
with connection.cursor() as cursor:
    tables = connection.introspection.table_names(cursor)
    columns = {
        table: sorted(
            (c.name, c.type_code if isinstance(c.type_code, str) else str(c.type_code), bool(c.null_ok))
            for c in connection.introspection.get_table_description(cursor, table)
        )
        for table in tables
    }
    indexes = sorted(connection.introspection.get_constraints(cursor, "notifications_notification"))
    cursor.execute("SELECT * FROM notifications_notification ORDER BY 1")
    rows = [[str(v) for v in row] for row in cursor.fetchall()]
    cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
    applied = cursor.fetchall()
print(json.dumps({"columns": columns, "indexes": indexes, "rows": rows, "applied": applied}))
"""


def snapshot(url: str) -> dict[str, Any]:
    """Every table's columns, the notification table's indexes and rows, and the migration records."""
    return json.loads(run_here(url, "-c", _SNAPSHOT).stdout)


def execute(url: str, sql: str) -> None:
    """Run one SQL statement on ``url`` (outside Django's migrations)."""
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        f"with connection.cursor() as c: c.execute({sql!r})\n"
    )
    run_here(url, "-c", code)
