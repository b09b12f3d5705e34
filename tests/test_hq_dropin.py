"""
A project written for django-notifications-hq's API (``tests/dropin/``: the
``timestamp`` queries, flags, data, ``user.notifications``, a foreign key and a
proxy with a manager of its own) runs its own tests with
django-notifications-community 1.12.3 as ``notifications`` (downloaded with pip
at test time, never kept here) and with this app, after the README's
switching steps. Both runs give the same result for every test. Runs on the
suite's backend: SQLite, or PostgreSQL when DATABASE_URL says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .artifacts import building
from .conftest import ROOT

pytestmark = [
    pytest.mark.server,  # separate processes, like the server tests
    # The project's own test runner drops its test database at the end, which
    # PgBouncer's pooled server connection to it forbids; the direct
    # PostgreSQL legs run it (the queries are the point, not the pool).
    pytest.mark.skipif(
        os.environ.get("DATABASE_TRANSACTION_POOLING") == "1",
        reason="the differential project runs on PostgreSQL directly, not through PgBouncer",
    ),
]

PROJECT = ROOT / "tests" / "dropin"
COMMUNITY = ROOT / "test-artifacts" / "community-1.12.3-package"


def community() -> Path:
    """See ``_community``; one test run at a time builds it."""
    with building("community-package"):
        return _community()


def _community() -> Path:
    """django-notifications-community 1.12.3's package, alone (it needs only Django)."""
    if not (COMMUNITY / "notifications" / "__init__.py").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(COMMUNITY),
             "django-notifications-community==1.12.3"],
            check=True, timeout=300,
        )
    return COMMUNITY


def run_project(package: str, tmp_path: Path) -> dict[str, str]:
    """Run the project's tests with ``package``'s notifications; each test's outcome."""
    first = community() if package == "community" else ROOT
    results = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "django", "test", "forum", "--settings=dropin_project.settings",
         "--noinput"],
        cwd=tmp_path,  # not ROOT: its notifications must not shadow the community's
        env={**os.environ, "DROPIN_PACKAGE": package, "DROPIN_RESULTS": str(results),
             "PYTHONPATH": f"{first}{os.pathsep}{PROJECT}"},
        capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert results.exists(), output[-4000:]
    outcomes: dict[str, str] = json.loads(results.read_text())
    assert len(outcomes) >= 45, output[-4000:]
    return outcomes


@pytest.fixture(scope="module")
def on_community(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return run_project("community", tmp_path_factory.mktemp("community"))


def test_the_project_passes_its_own_tests_on_community(on_community):
    assert {name: o for name, o in on_community.items() if o not in ("ok", "skipped")} == {}


def test_the_project_gives_the_same_results_after_the_swap(on_community, tmp_path):
    here = run_project("here", tmp_path)
    assert {n: (on_community.get(n), here.get(n)) for n in on_community.keys() | here.keys()
            if on_community.get(n) != here.get(n)} == {}
