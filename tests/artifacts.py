"""
What the tests build on first use under test-artifacts/ (virtualenvs, packages
downloaded from PyPI, axe-core from npm) is built by one test run at a time:
CI runs two suites at once in one checkout.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@contextmanager
def building(name: str) -> Iterator[None]:
    """Hold the lock of artifact ``name`` while checking for it and building it."""
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
