"""
The stream's requests pass the project's protections (notifications.asgi):
its middleware, its host validation, its idea of who the user is; and an open
stream still holds no OS thread. The opt-out (NOTIFICATIONS_STREAM_MIDDLEWARE
= False) still validates the host, and a system check names what it skips.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from notifications import api
from notifications.asgi import StreamHandler, may_block, serve_streams, stream_without_middleware
from notifications.auth import UNDECIDED
from notifications.checks import check_stream_middleware

from .middleware import CLIENT_HEADER, USER_HEADER
from .test_stream import open_database_files

WITHOUT_MIDDLEWARE = "tests.settings_stream_without_middleware"
CUSTOM_MIDDLEWARE = "tests.settings_custom_middleware"
NONBLOCKING_MIDDLEWARE = "tests.settings_nonblocking_middleware"
ATOMIC_REQUESTS = "tests.settings_atomic_requests"


def scope(path: str, method: str = "GET", root_path: str = "") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": root_path}


def test_only_get_requests_for_the_stream_path_go_to_the_stream_handler(monkeypatch):
    seen: list[tuple[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(("app", scope.get("path", scope["type"])))

    async def handler(self: StreamHandler, scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(("stream", scope["path"]))

    monkeypatch.setattr(StreamHandler, "__call__", handler)
    wrapped = serve_streams(app)
    scopes = (
        scope("/notifications/stream/"),
        scope("/notifications/stream/", method="POST"),  # the view's 405, through the application
        scope("/notifications/stream"),
        scope("/notifications/api/"),
        scope("/"),
        scope("/mounted/notifications/stream/", root_path="/mounted"),
        {"type": "lifespan"},
    )
    for s in scopes:
        asyncio.run(wrapped(s, None, None))
    assert seen == [
        ("stream", "/notifications/stream/"),
        ("app", "/notifications/stream/"),
        ("app", "/notifications/stream"),
        ("app", "/notifications/api/"),
        ("app", "/"),
        ("stream", "/mounted/notifications/stream/"),
        ("app", "lifespan"),
    ]


def test_stream_without_middleware_is_deprecated_for_serve_streams():
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        pass

    with pytest.warns(DeprecationWarning, match="serve_streams"):
        stream_without_middleware(app)


def test_the_opt_out_warns_naming_every_middleware_it_skips(settings):
    assert check_stream_middleware() == []
    settings.NOTIFICATIONS_STREAM_MIDDLEWARE = False
    (warning,) = check_stream_middleware()
    assert warning.id == "notifications.W007" and warning.hint
    for name in settings.MIDDLEWARE:
        assert name in warning.msg


def test_the_vouched_middleware_must_be_dotted_paths_in_middleware(settings):
    settings.NOTIFICATIONS_NONBLOCKING_MIDDLEWARE = "myproject.middleware.Tenant"
    (error,) = check_stream_middleware()
    assert error.id == "notifications.E003" and error.hint
    settings.NOTIFICATIONS_NONBLOCKING_MIDDLEWARE = ["myproject.middleware.Tenant"]
    (warning,) = check_stream_middleware()
    assert warning.id == "notifications.W008" and "myproject.middleware.Tenant" in warning.msg
    settings.NOTIFICATIONS_NONBLOCKING_MIDDLEWARE = [settings.MIDDLEWARE[0]]
    assert check_stream_middleware() == []


def test_djangos_own_middleware_is_known_not_to_block_unless_set_to_use_the_session(settings):
    assert may_block(settings.MIDDLEWARE) == []
    settings.SESSION_SAVE_EVERY_REQUEST = True
    settings.CSRF_USE_SESSIONS = True
    assert may_block(settings.MIDDLEWARE) == [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ]
    settings.SESSION_SAVE_EVERY_REQUEST = settings.CSRF_USE_SESSIONS = False
    settings.MESSAGE_STORAGE = "tests.somewhere.DatabaseStorage"
    assert may_block(settings.MIDDLEWARE) == ["django.contrib.messages.middleware.MessageMiddleware"]


def test_a_middleware_the_app_does_not_know_may_block_unless_the_project_vouches_for_it(settings):
    mine = ["django.middleware.security.SecurityMiddleware", "myproject.middleware.Tenant"]
    assert may_block(mine) == ["myproject.middleware.Tenant"]
    settings.NOTIFICATIONS_NONBLOCKING_MIDDLEWARE = ["myproject.middleware.Tenant"]
    assert may_block(mine) == []


def test_a_receiver_of_the_request_signals_that_is_not_djangos_keeps_openings_off_the_loop():
    from django.core import signals

    handler = StreamHandler()
    decided = None  # prefetch's answer for a request without a login
    assert handler._stays_on_loop(decided)
    assert not handler._stays_on_loop(UNDECIDED)

    def audit(**kwargs: Any) -> None:
        pass

    for signal in (signals.request_started, signals.request_finished):
        signal.connect(audit)
        try:
            assert not handler._stays_on_loop(decided)
        finally:
            signal.disconnect(audit)
    assert handler._stays_on_loop(decided)


def openings(tab: Any) -> dict[str, int]:
    return tab.http.get("/notifications/api/hub/").json()["openings"]


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_with_djangos_middleware_streams_open_on_the_loop_through_it(browser, make_user, make_server):
    """The demo's middleware only computes: the openings take no thread, and every hook still ran."""
    srv = make_server()
    staff = browser(make_user(staff=True), on=srv)
    alice = make_user()
    before = openings(staff)
    streams = [browser(alice, on=srv).stream().connected() for _ in range(5)]
    after = openings(staff)
    assert after["on_loop"] - before["on_loop"] == 5 and after["in_thread"] == before["in_thread"]
    # SecurityMiddleware, XFrameOptionsMiddleware and LocaleMiddleware answered.
    for stream in streams:
        assert stream.headers["x-frame-options"] == "DENY"
        assert stream.headers["x-content-type-options"] == "nosniff"
        assert "accept-language" in stream.headers["vary"].lower()
    note = api.notify(alice, "on the loop")[0]
    for stream in streams:
        stream.wait_for(lambda s: note.pk in s.notification_ids(), timeout=6)
    stranger = browser(None, on=srv).stream()
    stranger.wait_for(lambda s: s.ended)
    assert stranger.status == 403


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_middleware_the_app_does_not_know_keeps_the_opening_in_a_thread(
    browser, make_user, make_server
):
    srv = make_server(DJANGO_SETTINGS_MODULE=CUSTOM_MIDDLEWARE)
    staff = browser(make_user(staff=True), on=srv)
    before = openings(staff)
    browser(make_user(), on=srv).stream().connected()
    after = openings(staff)
    assert after["in_thread"] - before["in_thread"] == 1 and after["on_loop"] == before["on_loop"]


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_vouched_middleware_that_leaves_the_user_to_the_database_opens_again_in_a_thread(
    browser, make_user, make_server
):
    """
    On the loop the view cannot ask the database who the user is: it says so,
    and the handler opens the stream again in a thread, with a new request.
    """
    srv = make_server(DJANGO_SETTINGS_MODULE=NONBLOCKING_MIDDLEWARE)
    staff = browser(make_user(staff=True), on=srv)
    alice, bob = make_user(), make_user()
    before = openings(staff)
    stream = browser(alice, on=srv).stream().connected()
    after = openings(staff)
    assert after["in_thread"] - before["in_thread"] == 1 and after["on_loop"] == before["on_loop"]
    assert stream.headers["x-frame-options"] == "DENY"
    for_bob = api.notify(bob, "for bob")[0]
    for_alice = api.notify(alice, "for alice")[0]
    stream.wait_for(lambda s: for_alice.pk in s.notification_ids(), timeout=6)
    assert for_bob.pk not in stream.notification_ids()


def threads(pid: int) -> int:
    return proc_status(pid, "Threads")


def rss_kib(pid: int) -> int:
    return proc_status(pid, "VmRSS")


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} line")




@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_open_streams_pass_the_middleware_and_hold_no_thread_each(server, browser, make_user):
    """
    Through Django's stock handler every open stream kept a worker thread of
    its own (its ThreadSensitiveContext) for its whole life; the stream's
    handler runs the middleware, then lets the thread go.
    """
    users = [make_user() for _ in range(10)]
    first = browser(users[0]).stream().connected()
    # XFrameOptionsMiddleware sets this header on every response it sees.
    assert first.headers["x-frame-options"] == "DENY"
    assert server.proc is not None
    time.sleep(0.5)
    before_threads, before_rss = threads(server.proc.pid), rss_kib(server.proc.pid)
    streams = [browser(users[i % 10]).stream().connected() for i in range(100)]
    time.sleep(1.0)
    assert threads(server.proc.pid) <= before_threads + 3, "a thread per open stream"
    per_stream = (rss_kib(server.proc.pid) - before_rss) / len(streams)
    assert per_stream < 200, f"{per_stream:.0f} KiB per open stream"

    note = api.notify(users[1], "still live")[0]
    for stream in streams[1::10]:
        stream.wait_for(lambda s: note.pk in s.notification_ids(), timeout=6)


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_with_the_opt_out_the_stream_skips_the_middleware_and_holds_no_thread(
    browser, make_user, make_server
):
    srv = make_server(DJANGO_SETTINGS_MODULE=WITHOUT_MIDDLEWARE)
    users = [make_user() for _ in range(3)]
    first = browser(users[0], on=srv).stream().connected()
    assert "x-frame-options" not in first.headers
    page = browser(users[0], on=srv).http.get("/notifications/api/")
    assert page.status_code == 200 and "x-frame-options" in page.headers
    assert srv.proc is not None
    before = threads(srv.proc.pid)
    streams = [browser(users[i % 3], on=srv).stream().connected() for i in range(15)]
    time.sleep(0.5)
    assert threads(srv.proc.pid) <= before + 2, "a thread per open stream"
    note = api.notify(users[1], "still live")[0]
    for stream in streams[1::3]:
        stream.wait_for(lambda s: note.pk in s.notification_ids(), timeout=6)


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("settings_module", [None, WITHOUT_MIDDLEWARE])
def test_a_host_not_in_allowed_hosts_gets_400_on_the_stream(
    browser, make_user, make_server, server, settings_module
):
    srv = make_server(DJANGO_SETTINGS_MODULE=settings_module) if settings_module else server
    tab = browser(make_user(), on=srv)
    evil = tab.stream(headers={"Host": "evil.example"})
    evil.wait_for(lambda s: s.ended)
    assert evil.status == 400
    assert tab.http.get("/notifications/api/", headers={"Host": "evil.example"}).status_code == 400
    tab.stream(headers={"Host": "localhost"}).connected()  # an allowed name


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_the_projects_authentication_middleware_decides_the_streams_user(
    browser, make_user, make_server
):
    srv = make_server(DJANGO_SETTINGS_MODULE=CUSTOM_MIDDLEWARE)
    alice, bob = make_user(), make_user()
    # No session at all: the proxy's header names the user.
    by_header = browser(None, on=srv).stream(headers={USER_HEADER: alice.get_username()})
    by_header.connected()
    # Bob's session cookie, but the project's authentication says alice.
    overridden = browser(bob, on=srv).stream(headers={USER_HEADER: alice.get_username()})
    overridden.connected()
    for_alice = api.notify(alice, "for alice")[0]
    for_bob = api.notify(bob, "for bob")[0]
    for stream in (by_header, overridden):
        stream.wait_for(lambda s: for_alice.pk in s.notification_ids(), timeout=6)
    assert for_bob.pk not in by_header.notification_ids() + overridden.notification_ids()
    anonymous = browser(None, on=srv).stream()
    anonymous.wait_for(lambda s: s.ended)
    assert anonymous.status == 403


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_middleware_that_refuses_the_request_refuses_the_stream(browser, make_user, make_server):
    srv = make_server(DJANGO_SETTINGS_MODULE=CUSTOM_MIDDLEWARE)
    tab = browser(make_user(), on=srv)
    refused = tab.stream(headers={CLIENT_HEADER: "198.51.100.7"})
    refused.wait_for(lambda s: s.ended)
    assert refused.status == 403 and refused.body == b"Not from here."
    tab.stream(headers={CLIENT_HEADER: "127.0.0.1"}).connected()


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "sqlite", reason="counts open SQLite files")
def test_connections_the_middleware_opened_are_closed_before_the_stream_idles(
    browser, make_user, make_server
):
    """The proxy middleware reads the user in the request's worker thread."""
    srv = make_server(DJANGO_SETTINGS_MODULE=CUSTOM_MIDDLEWARE)
    users = [make_user() for _ in range(3)]
    streams = [
        browser(None, on=srv).stream(headers={USER_HEADER: u.get_username()}).connected()
        for u in users
    ]
    note = api.notify(users[0], "sentinel")[0]
    streams[0].wait_for(lambda s: note.pk in s.notification_ids(), timeout=6)
    db_name = Path(connection.settings_dict["NAME"]).name
    deadline = time.monotonic() + 3
    while open_database_files(srv.proc.pid, db_name):
        assert time.monotonic() < deadline, open_database_files(srv.proc.pid, db_name)
        time.sleep(0.05)
    assert all(not s.ended for s in streams)


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_with_atomic_requests_the_stream_opens_and_the_api_still_writes(
    browser, make_user, make_server
):
    """
    Django cannot wrap an async view in ATOMIC_REQUESTS' transaction: it
    answered the stream with a RuntimeError (500). The stream and the hub's
    stats hold no transaction; the synchronous API still runs in one.
    """
    srv = make_server(DJANGO_SETTINGS_MODULE=ATOMIC_REQUESTS)
    alice = make_user()
    tab = browser(alice, on=srv)
    stream = tab.stream().connected()
    note = api.notify(alice, "inside a project with ATOMIC_REQUESTS")[0]
    stream.wait_for(lambda s: note.pk in s.notification_ids(), timeout=6)
    assert tab.post(f"/notifications/api/{note.pk}/read/").status_code == 200
    note.refresh_from_db()
    assert not note.unread


@pytest.mark.django_db(transaction=True)
def test_with_atomic_requests_djangos_own_handler_serves_the_async_views(
    monkeypatch, admin_user
):
    """Without serve_streams, Django's ASGI handler serves the stream and the hub's stats."""
    from django.db import connections
    from django.test import AsyncClient

    for alias in connections.settings:
        monkeypatch.setitem(connections.settings[alias], "ATOMIC_REQUESTS", True)

    async def ask() -> tuple[int, int]:
        client = AsyncClient()
        await client.aforce_login(admin_user)
        hub = await client.get("/notifications/api/hub/")
        stream = await client.get("/notifications/stream/")
        stream.close()
        return hub.status_code, stream.status_code

    assert asyncio.run(ask()) == (200, 200)


@pytest.mark.django_db(transaction=True)
def test_the_handler_without_prefetch_serves_any_view_as_django_would(monkeypatch):
    """The benchmark's Django floor serves its own view through StreamHandler(prefetch=False)."""
    from asgiref.testing import ApplicationCommunicator

    from notifications import auth

    async def no_prefetch(request):
        raise AssertionError("the app's prefetch ran for a view that is not the stream")

    monkeypatch.setattr(auth, "prefetch", no_prefetch)
    handler = StreamHandler(prefetch=False)

    async def get(path: str) -> int:
        http = {
            **scope(path),
            "headers": [(b"host", b"localhost")],
            "query_string": b"",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 5000),
        }
        app = ApplicationCommunicator(handler, http)
        await app.send_input({"type": "http.request", "body": b""})
        start = await app.receive_output(5)
        await app.wait(5)
        return start["status"]

    assert asyncio.run(get("/login/")) == 200


# A project without this app (the benchmarks' Django floor) serving a view of
# its own through the stream's handlers: nothing of the app may be imported.
BARE_PROJECT = r'''
import asyncio, sys
from django.conf import settings
settings.configure(DEBUG=False, SECRET_KEY="bare", ALLOWED_HOSTS=["testserver"],
                   ROOT_URLCONF="__main__", INSTALLED_APPS=[], MIDDLEWARE=[], DATABASES={})
import django
django.setup()
from django.http import StreamingHttpResponse
from django.urls import path

async def frames():
    yield b"data: one\n\n"

def view(request):
    return StreamingHttpResponse(frames(), content_type="text/event-stream")

urlpatterns = [path("stream/", view)]

from notifications.asgi import StreamHandler, StreamHandlerWithoutMiddleware

async def get(handler):
    sent, asked = [], []
    async def receive():
        asked.append(1)
        if len(asked) == 1:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
    async def send(message):
        sent.append(message)
    scope = {"type": "http", "method": "GET", "path": "/stream/", "query_string": b"",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80)}
    await asyncio.wait_for(handler(scope, receive, send), 10)
    status = sent[0]["status"]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return status, body

for handler in (StreamHandler(prefetch=False), StreamHandlerWithoutMiddleware()):
    print(*asyncio.run(get(handler)), "notifications.views" in sys.modules)
'''


def test_a_project_without_the_app_serves_its_own_stream_through_the_handlers():
    done = subprocess.run(
        [sys.executable, "-c", BARE_PROJECT],
        cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == ["200 b'data: one\\n\\n' False"] * 2, done.stdout
