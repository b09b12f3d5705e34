"""The code is ruff-clean (security rules included) and mypy-clean (django-stubs), as the style asks."""

import subprocess
import sys

import pytest

from .conftest import ROOT


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    pytest.importorskip("ruff")
    result = run(sys.executable, "-m", "ruff", "check", "notifications", "project", "tests")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    pytest.importorskip("mypy")
    result = run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_security_linter_finds_nothing_in_the_app():
    """
    ruff's S rules (bandit's) over the app and the demo project, selected here
    as well as in pyproject.toml so that dropping them there cannot hide a
    finding; each exception in the code says inline why it is safe.
    """
    pytest.importorskip("ruff")
    result = run(
        sys.executable, "-m", "ruff", "check", "--select", "S", "notifications", "project"
    )
    assert result.returncode == 0, result.stdout + result.stderr
