"""The README's PgBouncer and Sentinel configurations are the ones the tests run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from .conftest import ROOT


def readme_block(heading: str, language: str) -> str:
    section = (ROOT / "README.md").read_text().split(heading, 1)[1]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_readme_pgbouncer_settings_are_those_of_the_tested_pgbouncer():
    tested = {line.strip() for line in (ROOT / "tests" / "pgbouncer.ini").read_text().splitlines()}
    documented = [line.strip() for line in readme_block("### PostgreSQL behind PgBouncer", "ini").splitlines()]
    assert "pool_mode = transaction" in documented
    assert [line for line in documented if line and line not in tested] == []


def test_readme_sentinel_layer_is_the_one_the_tests_configure():
    code = readme_block("### Redis behind Sentinel", "python")
    documented: dict = {}
    exec(code, documented)  # noqa: S102  # the README's own snippet
    env = {**os.environ, "REDIS_URL": "", "REDIS_SENTINELS": "127.0.0.1:1,127.0.0.1:2", "REDIS_MASTER_NAME": "x"}
    tested = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, project.settings as s; print(json.dumps(s.CHANNEL_LAYERS))"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout)
    documented = json.loads(json.dumps(documented["CHANNEL_LAYERS"]))
    for layers in (documented, tested):
        for host in layers["default"]["CONFIG"]["hosts"]:
            del host["sentinels"], host["master_name"]
    assert documented == tested
