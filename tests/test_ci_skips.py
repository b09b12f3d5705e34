"""
CI fails a run with a skip its leg does not expect (NOTIFICATIONS_EXPECTED_SKIPS,
see tests/conftest.py), and a developer's run without the variable does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOT

MODULE = '''
import pytest

def test_runs():
    pass

@pytest.mark.skip(reason="needs a service this leg lacks")
def test_skipped():
    pass
'''


def run(expected: str | None) -> int:
    # Inside the repository, so the test's node id is as in the suite's.
    folder = Path(tempfile.mkdtemp(dir=ROOT / "test-artifacts"))
    (folder / "test_module.py").write_text(MODULE)
    env = {k: v for k, v in os.environ.items() if k != "NOTIFICATIONS_EXPECTED_SKIPS"}
    if expected is not None:
        env["NOTIFICATIONS_EXPECTED_SKIPS"] = expected
    try:
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-c", os.devnull, "--rootdir", ".", "-p", "no:django", "-p", "tests.skips",
             "-p", "no:cacheprovider", "-q", str(folder / "test_module.py")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        ).returncode
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(
    ("expected", "status"),
    [
        (None, 0),  # a developer's run
        ("", 1),  # CI: no skip expected
        ("tests/test_other.py::*", 1),  # CI: other skips expected
        ("test-artifacts/*/test_module.py::test_skipped", 0),  # CI: this one expected, by node id
        ("tests/test_x.py::*; reason:needs a service*", 0),  # by reason
    ],
)
def test_a_skip_fails_the_run_unless_expected(expected, status):
    assert run(expected) == status
