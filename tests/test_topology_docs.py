"""The README's PgBouncer, Sentinel and nginx configurations are the ones the tests run,
and the nginx one has room for the streams the benchmark opens through it."""

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


def deploy_block(name: str) -> str:
    """The fenced block after ``<!-- deploy:NAME -->`` (what tests/test_deploy.py runs)."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- deploy:{name} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"README.md has no deploy:{name} block"
    return match.group(1)


def directive(block: str, name: str) -> str:
    match = re.search(rf"^\s*{name} ([^;]+);", block, re.M)
    assert match, f"no {name} in {block!r}"
    return match.group(1)


def test_readme_nginx_workers_have_room_for_the_benchmarks_streams():
    """
    Once fewer than a sixteenth of a worker's worker_connections are free, nginx
    closes connections still waiting for their request (their clients get a
    reset). Each stream holds two connections in one worker, the client's and
    the upstream's, each an open file. The benchmark opens 10,000 streams
    through the README's configuration on 2 cores (2 workers, spread evenly by
    reuseport); they, and the upstream keepalive cache, must stay below that line.
    """
    main, site = deploy_block("nginx-main"), deploy_block("nginx")
    assert directive(main, "worker_processes") == "auto"
    assert "reuseport" in directive(site, "listen").split()
    connections = int(directive(main, "worker_connections"))
    keepalive = int(directive(site, "keepalive"))
    streams_per_worker = 10_000 // 2
    assert 2 * streams_per_worker + keepalive < connections - connections // 16
    assert int(directive(main, "worker_rlimit_nofile")) > connections
