"""The README's PgBouncer configuration is the one the tests run."""

from __future__ import annotations

import re

from .conftest import ROOT


def readme_block(heading: str, language: str) -> str:
    section = (ROOT / "README.md").read_text().split(heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_readme_pgbouncer_settings_are_those_of_the_tested_pgbouncer():
    tested = {line.strip() for line in (ROOT / "tests" / "pgbouncer.ini").read_text().splitlines()}
    documented = [line.strip() for line in readme_block("### PostgreSQL behind PgBouncer", "ini").splitlines()]
    assert "pool_mode = transaction" in documented
    assert [line for line in documented if line and line not in tested] == []

