"""
Unexpected skips fail the run, for CI: a skipped test proves nothing.

NOTIFICATIONS_EXPECTED_SKIPS, when set, lists the skips a run expects, one
pattern a line (or separated by ";"): a glob over the test's node id
("tests/test_production.py::*"), or "reason:" and a glob over the skip's reason
("reason:needs DATABASE_URL=postgres*"). Any other skip fails the run. Unset
(a developer's run), skips are allowed. .ci/run sets it for each leg.

Loaded by tests/conftest.py; free of Django so that it can load as a plugin alone.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any

import pytest

_skipped: list[tuple[str, str]] = []


def _record_skip(report: Any) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append((report.nodeid, reason.removeprefix("Skipped: ")))


def pytest_runtest_logreport(report: Any) -> None:
    _record_skip(report)


def pytest_collectreport(report: Any) -> None:
    _record_skip(report)


def _unexpected_skips() -> list[tuple[str, str]]:
    allowed = os.environ.get("NOTIFICATIONS_EXPECTED_SKIPS")
    if allowed is None:
        return []
    patterns = [p.strip() for p in allowed.replace(";", "\n").splitlines() if p.strip()]

    def expected(nodeid: str, reason: str) -> bool:
        for pattern in patterns:
            if pattern.startswith("reason:"):
                if fnmatch.fnmatchcase(reason, pattern.removeprefix("reason:").strip()):
                    return True
            elif fnmatch.fnmatchcase(nodeid, pattern):
                return True
        return False

    return [(nodeid, reason) for nodeid, reason in _skipped if not expected(nodeid, reason)]


def pytest_sessionfinish(session: Any, exitstatus: int) -> None:
    if _unexpected_skips() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    unexpected = _unexpected_skips()
    if unexpected:
        terminalreporter.section("unexpected skips (not in NOTIFICATIONS_EXPECTED_SKIPS)", red=True)
        for nodeid, reason in unexpected:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line(f"{len(unexpected)} unexpected skip(s): the run fails.", red=True)
