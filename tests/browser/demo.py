"""
The demo project as the browser tests meet it: a daphne process over its own
SQLite file, and the notification bell on one tab of its page.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DAPHNE = str(Path(sys.executable).with_name("daphne"))
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 10_000  # the longest a browser step may wait, unless a test says otherwise
# An init script for a browser without the Web Locks API: each tab keeps its own stream.
NO_WEB_LOCKS = "delete Navigator.prototype.locks;"

# Counts every desktop notification the page raises, and still raises it.
SPY_ON_NOTIFICATIONS = """
(() => {
  const raised = [];
  Object.defineProperty(window, "raisedNotifications", { value: raised });
  window.Notification = new Proxy(window.Notification, {
    construct(target, args) {
      raised.push({ title: args[0], options: args[1] || {} });
      return Reflect.construct(target, args);
    },
  });
})();
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DemoServer:
    """
    The demo project under daphne on 127.0.0.1:``port``, over the SQLite file
    ``db``. ``kill()`` and ``start()`` again keep the port and the database.
    """

    def __init__(self, db: Path, port: int, env: dict[str, str]):
        self.db = db
        self.port = port
        # The embedded default (SQLite, in-memory channel layer), whatever the
        # environment says: each test gets its own database and server.
        base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "REDIS_SENTINELS")}
        self.env = {
            **base,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": f"sqlite:///{db}",
            **env,
        }
        self.log = db.with_name("server.log")
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def manage(self, *args: str) -> str:
        """Run a ``manage.py`` command against this server's database; returns its output."""
        done = subprocess.run(
            [PYTHON, "manage.py", *args],
            check=False,
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr}"
        return done.stdout

    def notify(self, username: str, verb: str, *options: str) -> None:
        """Notify a user from another process, as a cron job or a worker would."""
        self.manage("notify", "--user", username, verb, *options)

    def start(self) -> None:
        assert self.process is None, "already running"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [DAPHNE, "-b", "127.0.0.1", "-p", str(self.port), "project.asgi:application"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready(timeout=30)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url("/login/"), timeout=2) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"The demo server did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash or an OOM kill would."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): its connections stay open and carry nothing."""
        assert self.process is not None, "not running"
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None, "not running"
        os.kill(self.process.pid, signal.SIGCONT)

    def open_streams(self, staff: Page) -> dict[str, Any]:
        """The hub's own figures (open streams, users...), read as ``staff``'s browser."""
        response = staff.context.request.get(self.url("/notifications/api/hub/"))
        assert response.ok, response.text()
        stats: dict[str, Any] = response.json()
        return stats

    def _end(self, how: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, how)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.process = None


class Bell:
    """The notification bell on one tab of the demo page, as its user sees it."""

    def __init__(self, page: Page):
        self.page = page
        self.root = page.locator("[data-notifications]")
        self.button = page.locator("[data-notifications-bell]")
        self.badge = page.locator("[data-notifications-badge]")
        self.status = page.locator("[data-notifications-status]")
        self.panel = page.locator("[data-notifications-panel]")
        self.items = page.locator("[data-notifications-list] [data-notification-id]")
        self.toasts = page.locator("[data-notifications-toasts] [role=status]")

    @property
    def stream_role(self) -> str | None:
        """How the tab gets its events: "holder" or "relayed" (one stream per browser), "own"."""
        return self.root.get_attribute("data-stream")

    def item(self, text: str) -> Locator:
        return self.items.filter(has_text=text)

    def wait_connected(self) -> None:
        expect(self.status).to_have_attribute("data-state", "connected")

    def open_panel(self) -> None:
        if self.button.get_attribute("aria-expanded") != "true":
            self.button.click()
        expect(self.panel).to_be_visible()

    def new_tab(self) -> Bell:
        """Open the demo page in another tab of the same browser context (same user)."""
        page = self.page.context.new_page()
        page.goto(self.page.url)
        bell = Bell(page)
        bell.wait_connected()
        return bell


def send_from_form(
    bell: Bell, recipient: str, verb: str, description: str = "", level: str = "info"
) -> None:
    """Send a notification through the demo page's form, as the user of ``bell``."""
    page = bell.page
    page.select_option("#id_recipient", label=recipient)
    page.fill("#id_verb", verb)
    page.fill("#id_description", description)
    page.select_option("#id_level", level)
    page.click("[data-send-form] button[type=submit]")
    page.locator(".messages", has_text="Sent.").wait_for()
