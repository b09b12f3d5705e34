"""
axe-core, the accessibility checker, for the browser tests: installed once
with npm into test-artifacts/ (gitignored) and injected into a page.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from ..artifacts import building
from .demo import ARTIFACTS

AXE_VERSION = "4"  # npm's range: the newest 4.x
AXE_FOLDER = ARTIFACTS / "axe"
AXE_SCRIPT = AXE_FOLDER / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.1 A and AA (contrast included) and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def install_axe() -> Path:
    """See ``_install_axe``; one test run at a time builds it."""
    with building("axe-core"):
        return _install_axe()


def _install_axe() -> Path:
    """axe.min.js, installed with npm on first use."""
    if AXE_SCRIPT.exists():
        return AXE_SCRIPT
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: apt-get install npm (the accessibility tests need axe-core)")
    AXE_FOLDER.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(AXE_FOLDER), f"axe-core@{AXE_VERSION}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and AXE_SCRIPT.exists(), f"npm install axe-core failed:\n{done.stderr}"
    return AXE_SCRIPT


def violations(page: Page, script: Path) -> list[dict[str, Any]]:
    """What axe-core finds wrong on ``page`` as it is now: rule, impact and the elements."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(script))
    found: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
          const result = await axe.run(document, { runOnly: { type: "tag", values: tags } });
          return result.violations.map((v) => ({
            rule: v.id, impact: v.impact,
            nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary),
          }));
        }""",
        AXE_TAGS,
    )
    return found
