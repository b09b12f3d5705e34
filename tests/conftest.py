"""
Fixtures: a real ASGI server process sharing the test database, logged-in
HTTP clients for it, and SSE streams.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.test import Client
from django.utils import translation

from .sse import Stream

ROOT = Path(__file__).resolve().parent.parent
CSRF = "testcsrftokentestcsrftokentestcs"  # 32 characters: a valid CSRF secret


def die_with_parent() -> None:
    """In the child: get SIGTERM when the test run dies, so no server outlives it."""
    if sys.platform == "linux":
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database as a DATABASE_URL the server process can open."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    return os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + db["NAME"]


class Server:
    """An ASGI server process (daphne or uvicorn) running the demo project."""

    def __init__(self, env: dict[str, str] | None = None, port: int | None = None, kind: str = "daphne"):
        self.kind = kind
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DATABASE_URL": database_url(), **(env or {})}
        self.log = ROOT / "test-artifacts" / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        self.log.parent.mkdir(exist_ok=True)
        if self.kind == "uvicorn":
            command = [
                sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port),
                "--timeout-graceful-shutdown", "3", "--no-access-log", "project.asgi:application",
            ]
        else:
            command = [
                sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                "project.asgi:application",
            ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=log, preexec_fn=die_with_parent
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                httpx.get(self.url + "/login/", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def script(self, *args: str) -> str:
        """Run ``tests/scripts.py`` in a separate process against the same services."""
        return subprocess.run(
            [sys.executable, "-m", "tests.scripts", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300, check=True,
        ).stdout

    def session(self, username: str, staff: bool = False) -> tuple[int, dict[str, str]]:
        """Create (or reuse) a user through a separate process; return its id and cookies."""
        pk, key = self.script("session", username, *(["--staff"] if staff else [])).split()
        return int(pk), {settings.SESSION_COOKIE_NAME: key, "csrftoken": CSRF}

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py`` in a separate process against the same database."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=True,
        )


@pytest.fixture(autouse=True)
def _no_language_left_active() -> Iterator[None]:
    """
    Each test starts in the default language: a request through
    LocaleMiddleware (Accept-Language: de) leaves its language active in the
    thread, and what the next test renders in it (an email, say) would follow.
    """
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _close_thread_connections() -> Iterator[None]:
    """
    After each test, close the connections that worker threads of this process
    opened: the database lanes of streams run in-process (their idle timers die
    with the test's event loop) and asgiref's thread for sync_to_async. Left
    open, they count as connections held by the servers under test, and keep
    the test database from being dropped.
    """
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    from notifications import db

    db.close_connections()
    executor = SyncToAsync.single_thread_executor
    if getattr(executor, "_threads", None):
        executor.submit(connections.close_all).result()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any) -> Iterator[None]:
    """
    pytest-django's test database; behind PgBouncer (DATABASE_TRANSACTION_POOLING=1)
    its pooled server connections are closed first, so that it can be dropped.
    """
    yield
    if getattr(settings, "NOTIFICATIONS_TRANSACTION_POOLING", False):
        from .services import pgbouncer_release

        for db in settings.DATABASES.values():
            pgbouncer_release(db["HOST"], db["PORT"], db["NAME"])


@pytest.fixture(scope="session")
def server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Server]:
    srv = Server().start()
    yield srv
    srv.stop()


@pytest.fixture
def make_server(django_db_setup: Any, django_db_blocker: Any) -> Iterator[Any]:
    """``make_server(NOTIFICATIONS_HEARTBEAT="0.5")``: an extra server with other settings."""
    started: list[Server] = []

    def make(kind: str = "daphne", **env: str) -> Server:
        srv = Server(env=env, kind=kind).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


# tests/test_custom_user.py needs a user model of its own, hence settings and a
# test database of their own (tests/settings_custom_user.py): it runs only under them.
CUSTOM_USER_MODEL = "customuser.Member"


def pytest_ignore_collect(collection_path: Path, config: Any) -> bool | None:
    if collection_path.name == "test_custom_user.py":
        return settings.AUTH_USER_MODEL != CUSTOM_USER_MODEL or None
    return None


_names = itertools.count()


@pytest.fixture
def make_user(transactional_db: Any) -> Any:
    """Create a committed user the server can see: ``make_user(staff=True, groups=[g])``."""

    def make(*, staff: bool = False, groups: list[Any] = (), name: str | None = None) -> AbstractBaseUser:
        username = name or f"user{next(_names)}_{os.getpid()}"
        user = get_user_model().objects.create_user(username, password="pw", is_staff=staff)
        user.groups.set(groups)
        return user

    return make


@pytest.fixture
def alice(db: Any) -> AbstractBaseUser:
    """A user named alice (tests that need an e-mail address define their own)."""
    return get_user_model().objects.create_user("alice")


@pytest.fixture
def bob(db: Any) -> AbstractBaseUser:
    return get_user_model().objects.create_user("bob")


def session_cookies(user: AbstractBaseUser) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value, "csrftoken": CSRF}


class Browser:
    """A logged-in HTTP client for the server, plus streams opened as that user."""

    def __init__(self, server: Server, user: AbstractBaseUser | None):
        self.server = server
        self.cookies = session_cookies(user) if user is not None else {"csrftoken": CSRF}
        self.http = httpx.Client(base_url=server.url, cookies=self.cookies, timeout=10)
        self.streams: list[Stream] = []

    def stream(self, **kwargs: Any) -> Stream:
        stream = Stream(self.server.url, cookies=self.cookies, **kwargs)
        self.streams.append(stream)
        return stream

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRFToken": CSRF, "Referer": self.server.url + "/"}
        return self.http.post(path, headers=headers, **kwargs)

    def close(self) -> None:
        for stream in self.streams:
            stream.close()
        self.http.close()


@pytest.fixture
def browser(server: Server) -> Iterator[Any]:
    """
    ``browser(user)`` logs ``user`` in (None: anonymous) on the shared server, or
    on ``browser(user, on=other_server)``; closed after the test.
    """
    opened: list[Browser] = []

    def open_as(user: AbstractBaseUser | None, on: Server | None = None) -> Browser:
        b = Browser(on or server, user)
        opened.append(b)
        return b

    yield open_as
    for b in opened:
        b.close()


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a savepoint and undo everything it wrote to the database."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


# Unexpected skips fail a CI run: see tests/skips.py.
from .skips import (  # noqa: E402, F401
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)


@pytest.fixture
def declare() -> Iterator[Any]:
    """``declare(Kind(...))`` for one test; the kind is forgotten afterwards."""
    declared = []

    def add(kind: Any) -> Any:
        from notifications.kinds import register

        register(kind)
        declared.append(kind.key)
        return kind

    yield add
    from notifications.kinds import register

    for key in declared:
        register.unregister(key)


@pytest.fixture
def service(settings: Any) -> Any:
    """
    A local push service (tests/pushservice.py) that verifies and decrypts every
    push, allowed by NOTIFICATIONS_PUSH_SERVICES; it speaks http, hence DEBUG.
    """
    pytest.importorskip("pywebpush")
    from .pushservice import PushService

    s = PushService()
    settings.NOTIFICATIONS_PUSH_SERVICES = s.allowed()
    settings.DEBUG = True
    yield s
    s.close()
    assert s.errors == []  # every push that arrived verified and decrypted


@pytest.fixture
def vapid(settings: Any) -> str:
    """A fresh VAPID key pair in the settings; the public key."""
    from notifications import push

    public, private = push.generate_vapid_keys()
    settings.NOTIFICATIONS_VAPID_PUBLIC_KEY = public
    settings.NOTIFICATIONS_VAPID_PRIVATE_KEY = private
    settings.NOTIFICATIONS_VAPID_SUBJECT = "mailto:ops@example.com"
    return public


# Hypothesis profiles: HYPOTHESIS_PROFILE=thorough runs the model test
# (tests/test_model.py) with many more and longer sequences than CI's budget.
from hypothesis import HealthCheck as _HealthCheck  # noqa: E402
from hypothesis import Phase as _Phase  # noqa: E402
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile(
    "thorough",
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[_HealthCheck.function_scoped_fixture, _HealthCheck.too_slow],
)
# "search": as many, without shrinking a failure (faster to a first failing sequence).
_hypothesis_settings.register_profile(
    "search",
    _hypothesis_settings.get_profile("thorough"),
    phases=[_Phase.explicit, _Phase.reuse, _Phase.generate],
)
if os.environ.get("HYPOTHESIS_PROFILE"):
    _hypothesis_settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])


class Clock:
    """The time ``django.utils.timezone.now()`` answers, moved by the test."""

    def __init__(self) -> None:
        from django.utils import timezone

        self.now = timezone.now()

    def advance(self, delta: Any) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch: Any) -> Clock:
    """``timezone.now()`` stands still until the test advances it."""
    from django.utils import timezone

    c = Clock()
    monkeypatch.setattr(timezone, "now", lambda: c.now)
    return c
