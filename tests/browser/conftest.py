"""
Fixtures for the browser tests: the demo project served by a real daphne
process over its own SQLite file, and Debian's Chromium driven by Playwright.

Nothing here uses pytest-django's test database: the server and the
``manage.py`` commands the tests run are separate processes sharing one file.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from .demo import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    Bell,
    DemoServer,
    free_port,
)


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file with the demo users, made once and copied per test."""
    db = tmp_path_factory.mktemp("demo-template") / "db.sqlite3"
    template = DemoServer(db, 0, {})
    template.manage("migrate", "--noinput")
    template.manage("demo_users")
    return db


@pytest.fixture
def start_server(demo_database: Path, tmp_path: Path) -> Iterator[Callable[..., DemoServer]]:
    """Start a demo server on a fresh copy of the demo database; ``env`` tunes its settings."""
    servers: list[DemoServer] = []

    def start(**env: str) -> DemoServer:
        folder = tmp_path / f"server-{len(servers)}"
        folder.mkdir()
        shutil.copy(demo_database, folder / "db.sqlite3")
        server = DemoServer(folder / "db.sqlite3", free_port(), env)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(request: pytest.FixtureRequest, start_server: Callable[..., DemoServer]) -> DemoServer:
    """The demo server; parametrize it indirectly with a dict of settings to tune them."""
    return start_server(**getattr(request, "param", {}))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """
    Chromium for one test module. Module scope on purpose: Playwright's sync
    API keeps an event loop running, which Django's ORM refuses to share, so
    it must be gone before other test modules use the database.
    """
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def login(browser: Browser, server: DemoServer) -> Iterator[Callable[..., Bell]]:
    """
    ``login("alice")``: a new browser context (its own cookies) logged in as a
    demo user, on the demo page with its stream connected. ``init_script``
    runs in every page before the page's own scripts; context options
    (``permissions``, ``viewport``...) pass through.
    """
    contexts = []

    def login(username: str, *, init_script: str | None = None, **options: object) -> Bell:
        context = browser.new_context(**options)  # type: ignore[arg-type]
        context.set_default_timeout(TIMEOUT_MS)
        if init_script:
            context.add_init_script(init_script)
        contexts.append(context)
        page = context.new_page()
        page.goto(server.url("/login/"))
        page.fill("#id_username", username)
        page.fill("#id_password", username)  # the demo users' passwords are their names
        page.click("button[type=submit]")
        page.wait_for_url(server.url("/"))
        bell = Bell(page)
        bell.wait_connected()
        return bell

    yield login
    for context in contexts:
        context.close()
