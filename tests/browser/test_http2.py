"""
The README's nginx configuration for browsers: TLS and HTTP/2 in front of the
demo. Over HTTP/2 every request shares one connection, so even tabs that each
keep their own stream (no Web Locks) do not run into the 6 connections a
browser opens per host over HTTP/1.1.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from .demo import NO_WEB_LOCKS, ROOT, TIMEOUT_MS, Bell, DemoServer, free_port

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed"),
]

TABS = 8


def readme_site(name: str) -> str:
    """The fenced block after ``<!-- deploy:NAME -->`` in README.md."""
    text = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- deploy:{name} -->\n```\w*\n(.*?)```", text, re.S)
    assert match, f"README.md has no deploy:{name} block"
    return match.group(1)


def nginx_version() -> tuple[int, ...]:
    done = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=True)
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", done.stderr)
    assert found, done.stderr
    return tuple(int(part) for part in found.groups())


@pytest.fixture
def https_url(server: DemoServer, tmp_path: Path) -> Iterator[str]:
    """The demo behind the README's HTTP/2 nginx site, on a free port with a self-signed certificate."""
    port = free_port()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    site = readme_site("nginx-http2")
    listen = f"listen 127.0.0.1:{port} ssl"
    if nginx_version() < (1, 25, 1):  # before "http2 on;", a parameter of listen
        site = site.replace("listen 443 ssl;", f"{listen} http2;").replace("http2 on;", "")
    else:
        site = site.replace("listen 443 ssl;", f"{listen};")
    site = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", site)
    site = re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", site)
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"worker_processes 1;\nerror_log {tmp_path}/nginx-error.log;\npid {tmp_path}/nginx.pid;\n"
        + "events {}\nhttp {\n  access_log off;\n"
        + "".join(f"  {kind}_temp_path {temp}/{kind};\n" for kind in ("client_body", "proxy"))
        + f"  upstream notifications_app {{ server 127.0.0.1:{server.port}; keepalive 8; }}\n"
        + site
        + "\n}\n"
    )
    log = tmp_path / "nginx.log"
    with log.open("wb") as output:
        nginx = subprocess.Popen(
            ["nginx", "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"], stderr=output
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert nginx.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield f"https://127.0.0.1:{port}"
    finally:
        nginx.send_signal(signal.SIGQUIT)
        try:
            nginx.wait(10)
        except subprocess.TimeoutExpired:
            nginx.kill()
            nginx.wait(10)


def test_over_http2_eight_tabs_with_a_stream_each_and_a_ninth_page_all_load(
    browser: Browser, server: DemoServer, https_url: str
) -> None:
    # No Web Locks: every tab keeps its own stream, the case HTTP/2 answers alone.
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(NO_WEB_LOCKS)
    try:
        # Log in over plain HTTP: the session cookie is the host's, whatever the port.
        page = context.new_page()
        page.goto(server.url("/login/"))
        page.fill("#id_username", "alice")
        page.fill("#id_password", "alice")
        page.click("button[type=submit]")
        page.wait_for_url(server.url("/"))
        page.close()

        tabs = []
        for _ in range(TABS):
            page = context.new_page()
            page.goto(https_url + "/")
            tab = Bell(page)
            tab.wait_connected()
            tabs.append(tab)
        assert [tab.stream_role for tab in tabs] == ["own"] * TABS
        protocol = "performance.getEntriesByType('navigation')[0].nextHopProtocol"
        assert tabs[0].page.evaluate(protocol) == "h2"

        ninth = context.new_page()
        response = ninth.goto(https_url + "/", timeout=5_000)
        assert response is not None and response.ok

        server.notify("alice", "through HTTP/2")
        for tab in tabs:
            expect(tab.item("through HTTP/2")).to_have_count(1)
    finally:
        context.close()
