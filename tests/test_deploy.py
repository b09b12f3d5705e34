"""
The README's "Deploying" section, run as written: its uvicorn and daphne
command lines and its nginx configuration (main context and site, on free
ports), streaming through nginx to both servers.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from django.conf import settings

from notifications import api

from .conftest import ROOT, database_url, free_port, session_cookies
from .sse import Stream

pytestmark = [
    pytest.mark.server,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
]


def readme_block(name: str) -> str:
    """The fenced block after ``<!-- deploy:NAME -->`` in README.md."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- deploy:{name} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"README.md has no deploy:{name} block"
    return match.group(1)


def command(block: str, ports: dict[str, str]) -> list[str]:
    line = block.replace("\\\n", " ")
    for old, new in ports.items():
        line = line.replace(old, new)
    argv = shlex.split(line)
    return [sys.executable, "-m", argv[0], *argv[1:]]


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.1)


@pytest.fixture
def deployment(tmp_path):
    ports = {"8001": str(free_port()), "8002": str(free_port()), "8080": str(free_port())}
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the sessions are signed with it
        "NOTIFICATIONS_HEARTBEAT": "1",
    }
    procs = []
    log = open(tmp_path / "servers.log", "wb")
    for name in ("uvicorn", "daphne"):
        argv = command(readme_block(name), ports)
        procs.append(subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log))
    conf = tmp_path / "nginx.conf"
    site = readme_block("nginx")
    for old, new in ports.items():
        site = site.replace(old, new)
    temp = tmp_path / "tmp"
    temp.mkdir()
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + readme_block("nginx-main")
        + f"error_log {tmp_path}/error.log;\npid {tmp_path}/nginx.pid;\n"
        + "http {\n  access_log off;\n"
        + "".join(f"  {kind}_temp_path {temp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + site
        + "\n}\n"
    )
    nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"], stderr=log)
    procs.append(nginx)
    try:
        for port in ("8001", "8002"):
            wait_http(f"http://127.0.0.1:{ports[port]}/login/")
        url = f"http://127.0.0.1:{ports['8080']}"
        wait_http(url + "/login/")
        yield url
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def test_streams_through_the_readme_nginx_to_both_servers(deployment, make_user):
    users = [make_user() for _ in range(4)]
    streams = [Stream(deployment, cookies=session_cookies(u)).connected(10) for u in users]
    ids = [api.notify(u, "through nginx")[0].pk for u in users]
    for stream, nid in zip(streams, ids):
        stream.wait_for(lambda s: nid in s.notification_ids(), timeout=6)
        assert stream.headers["content-type"].startswith("text/event-stream")
    # Heartbeats (every second here) pass through unbuffered.
    before = streams[0].comments
    streams[0].wait_for(lambda s: s.comments >= before + 2, timeout=5)
    for stream in streams:
        stream.close()
