"""
django-notifications-hq 1.8.3's own test suite passes against this app.

The suite is downloaded with pip at test time (its source distribution's
``notifications/tests/`` and the ``test_tags.html`` it renders) and never kept
in this repository; ``tests/hq/suite_settings.py`` is the thin settings module
it runs with (hq's test settings, GET mutations on).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from .artifacts import building
from .conftest import ROOT

pytestmark = pytest.mark.server  # a separate process, like the server tests

SDIST = ROOT / "test-artifacts" / "hq-sdist"
PACKAGE = "django-notifications-hq-1.8.3"
# hq's own dependency, which its tests import: installed as a project switching
# from hq still has it (``swapper`` sets NOTIFICATIONS_NOTIFICATION_MODEL to the
# default model, which system check notifications.E101 accepts).
SWAPPER = ROOT / "test-artifacts" / "swapper-1.5.0"


def download() -> Path:
    """See ``_download``; one test run at a time builds it."""
    with building("hq-sdist"):
        return _download()


def _download() -> Path:
    archive = SDIST / f"{PACKAGE}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
             "--dest", str(SDIST), "django-notifications-hq==1.8.3"],
            check=True, timeout=300,
        )
    return archive


def install_swapper() -> Path:
    """See ``_install_swapper``; one test run at a time builds it."""
    with building("swapper"):
        return _install_swapper()


def _install_swapper() -> Path:
    if not (SWAPPER / "swapper" / "__init__.py").exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(SWAPPER),
             "swapper==1.5.0"],
            check=True, timeout=300,
        )
    return SWAPPER


def unpack(archive: Path, into: Path) -> None:
    """hq's tests as the package ``notifications/tests``, and ``templates/notifications/test_tags.html``."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix(f"{PACKAGE}/")
            if name.startswith("notifications/tests/"):
                target = into / name
            elif name == "notifications/templates/notifications/test_tags.html":
                target = into / "templates" / "notifications" / "test_tags.html"
            else:
                continue
            if member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())


def test_hq_own_test_suite_passes_against_this_app(tmp_path):
    unpack(download(), tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "django", "test", "notifications.tests.tests",
         "--settings=tests.hq.suite_settings", "--noinput"],
        cwd=ROOT,
        env={**os.environ, "HQ_SUITE": str(tmp_path),
             "PYTHONPATH": f"{ROOT}{os.pathsep}{install_swapper()}"},
        capture_output=True, text=True, timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    ran = re.search(r"Ran (\d+) tests?", output)
    assert ran and int(ran.group(1)) >= 29, output[-2000:]
    assert "\nOK" in output

