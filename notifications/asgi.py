"""
Serve the notification stream through the project's middleware, without
keeping an OS thread per open stream.

Django's ASGI handler gives each request a thread-sensitive context: the
synchronous middleware hooks of the request (most of Django's own middleware)
each hop to a worker thread of that context, and the context lasts until the
response ends. For a stream that is its whole life: one OS thread per open
stream, and a dozen thread hops per open. ``serve_streams`` hands the stream's
requests to a handler that runs the project's middleware and the stream's view
as one synchronous chain in a small pool of worker threads (one hop there and
one back per request), and releases the thread (closing the database
connections the middleware opened in it) as soon as the response is ready; the
body then streams on the event loop, written by the hub, with nothing of the
request, the response or the middleware kept for the stream's life. The view answers in that thread without
waiting on the loop: the stream's user was looked up on the loop before the
middleware ran, in one batch with every other stream opening at that moment,
and that answer is taken only if the project's authentication, after its
middleware, would give the same (see ``auth.prefetch``). Everything else goes
to the application unchanged:

    # asgi.py
    from django.core.asgi import get_asgi_application
    from notifications.asgi import serve_streams

    application = serve_streams(get_asgi_application())

``NOTIFICATIONS_STREAM_MIDDLEWARE = False`` makes the stream's requests skip
the middleware altogether (a little faster to open). The stream then still
validates the host against ALLOWED_HOSTS and reads the user from the session
cookie as ``django.contrib.auth.get_user`` does, and the system check
``notifications.W007`` names every middleware it bypasses.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost, RequestAborted
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.asgi import get_script_prefix as script_prefix_of
from django.core.handlers.exception import convert_exception_to_response
from django.db import connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import get_script_prefix, reverse, set_script_prefix

from .conf import conf

ASGIApp = Any


# Worker threads for the middleware of streams being opened, per process. A
# thread serves one opening at a time, for its middleware and view, then the
# next: a reconnect storm queues here instead of starting a thread per client.
MIDDLEWARE_THREADS = 8

# The stream's openings through the middleware in this process: those whose
# middleware and view ran on the event loop, and those that took a thread
# (shown by the hub's stats, ``GET api/hub/``).
OPENINGS = {"on_loop": 0, "in_thread": 0}

# Django's middleware whose hooks, for the stream's GET, only compute: they
# read the request's headers and cookies, set headers, and attach the
# session, the user and the messages lazily, loaded only when something reads
# them (which the stream's view does not do when the prefetched answer
# decides), unless the setting named beside it has the value that makes them
# read or write the session, or the messages are kept elsewhere.
COMPUTE_ONLY_MIDDLEWARE: dict[str, tuple[tuple[str, Any], ...]] = {
    "django.middleware.security.SecurityMiddleware": (),
    "django.contrib.sessions.middleware.SessionMiddleware": (("SESSION_SAVE_EVERY_REQUEST", False),),
    "django.middleware.locale.LocaleMiddleware": (),
    "django.middleware.common.CommonMiddleware": (),
    "django.middleware.csrf.CsrfViewMiddleware": (("CSRF_USE_SESSIONS", False),),
    "django.contrib.auth.middleware.AuthenticationMiddleware": (),
    "django.contrib.messages.middleware.MessageMiddleware": (),
    "django.middleware.clickjacking.XFrameOptionsMiddleware": (),
    "django.middleware.http.ConditionalGetMiddleware": (),
    "django.middleware.gzip.GZipMiddleware": (),
}
_MESSAGE_STORAGES = {
    "django.contrib.messages.storage.fallback.FallbackStorage",
    "django.contrib.messages.storage.cookie.CookieStorage",
    "django.contrib.messages.storage.session.SessionStorage",
}


def may_block(middleware: list[str] | tuple[str, ...]) -> list[str]:
    """
    The entries of ``middleware`` (dotted paths, as in MIDDLEWARE) that could
    block the event loop for the stream's GET: all but Django's compute-only
    middleware (as configured) and NOTIFICATIONS_NONBLOCKING_MIDDLEWARE.
    """
    vouched = set(conf.NONBLOCKING_MIDDLEWARE)
    found = []
    for path in middleware:
        if path in vouched:
            continue
        conditions = COMPUTE_ONLY_MIDDLEWARE.get(path)
        if conditions is None or any(getattr(settings, name) != ok for name, ok in conditions):
            found.append(path)
        elif path.endswith(".MessageMiddleware") and settings.MESSAGE_STORAGE not in _MESSAGE_STORAGES:
            found.append(path)
    return found


def _receivers_stay_on_loop(signal: Any) -> bool:
    """Whether every receiver of ``signal`` is one of Django's own, which only compute on the loop."""
    for entry in signal.receivers:
        receiver = entry[1]
        if isinstance(receiver, weakref.ReferenceType):
            receiver = receiver()
        if receiver is not None and receiver not in _loop_safe_receivers():
            return False
    return True


@functools.cache
def _loop_safe_receivers() -> frozenset[Any]:
    # request_started and request_finished as Django connects them: they act
    # on the database connections and caches of the calling thread (or task),
    # and the loop's has none open for the stream.
    from django.core.cache import close_caches
    from django.core.handlers.base import reset_urlconf
    from django.db import close_old_connections, reset_queries

    return frozenset({close_caches, reset_urlconf, close_old_connections, reset_queries})


class _HandsStreamsOver(ASGIHandler):
    """
    Django's handling of a request (its ``handle``, with the same steps:
    the body, ``request_started``, the request, the middleware and the view),
    except that the stream's response is not iterated: its headers are sent,
    Django closes the response (``request_finished``) and lets go of the
    request, its middleware and the response, and the stream is served on the
    connection (``EventStream.serve``), where the hub writes its frames and
    this coroutine waits for the client to leave. Any other response (403,
    503, a middleware's answer) is sent as Django sends it.

    Unlike Django's ``handle``, no task watches for the client leaving while
    the response is made: it is made anyway (``StreamHandler`` makes it in a
    thread, which a departure could not stop either), and a stream whose
    client left ends when it waits for that client.
    """

    started_in_thread = False  # request_started is sent where the view runs

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(script_prefix_of(scope))
        if not self.started_in_thread:
            await signals.request_started.asend(sender=self.__class__, scope=scope)
        made, error_response = self.create_request(scope, body_file)
        if made is None:
            assert error_response is not None  # noqa: S101  # Django answers one or the other
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return
        try:
            request, response = await self.answer(made, body_file)
        finally:
            body_file.close()
        del body_file, made
        events = _taken(response)
        if events is None:
            try:
                await self.send_response(response, send)
            finally:
                await sync_to_async(response.close)()
                _let_go(request)
            return
        _let_go(request)
        del request  # this coroutine lasts as long as the stream
        try:
            await send(_start(response))
        finally:
            if not response.closed:
                await sync_to_async(response.close)()
        del response
        await events.serve(receive, send)

    async def answer(self, request: HttpRequest, body_file: Any) -> tuple[HttpRequest, HttpResponseBase]:
        """The response, and the request it answers (which may be a new one, made of ``body_file``)."""
        return request, await self.run_get_response(request)


def _let_go(request: HttpRequest) -> None:
    """
    Drop what the middleware and the view attached to ``request``, its
    response made. Much of it refers back to the request (the lazy
    ``request.user``, ``request.auser``, the messages' storages): left as it
    is, each request became a few dozen objects in reference cycles, freed only
    by a garbage collection, and a reconnect storm of them started full
    collections that held up every stream of the process.
    """
    request.__dict__.clear()


def _taken(response: HttpResponseBase) -> Any:
    """The stream ``response`` carries, kept past the response's close; None for any other response."""
    # Not imported here: a project may serve its own views with these handlers
    # without this app installed, and a stream's response exists only once
    # the views module has been loaded.
    views = sys.modules.get(f"{__package__}.views")
    if views is None or not isinstance(response, views.EventStreamResponse):
        return None
    if response.events.taken or response.events.take():
        return response.events
    return None


def _start(response: HttpResponseBase) -> dict[str, Any]:
    """The response's ``http.response.start`` message, as Django's ``send_response`` makes it."""
    headers = []
    for header, value in response.items():
        name = header.encode("ascii") if isinstance(header, str) else header
        raw = value.encode("latin1") if isinstance(value, str) else value
        headers.append((bytes(name), bytes(raw)))
    for cookie in response.cookies.values():
        headers.append((b"Set-Cookie", cookie.output(header="").encode("ascii").strip()))
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


class StreamHandler(_HandsStreamsOver):
    """
    Django's ASGI handler for the stream: the project's middleware and the
    view run as one synchronous chain in a worker thread (one hop, instead of
    one per hook), and no thread is held once the response is ready.

    When nothing in that chain can block (every middleware is one of Django's
    that only compute, or is listed in NOTIFICATIONS_NONBLOCKING_MIDDLEWARE,
    the receivers of ``request_started`` and ``request_finished`` are Django's,
    and the user's answer was prefetched), the chain runs on the event loop
    instead, as it comes: the same middleware, host check and user, without a
    thread. A reconnect storm then costs no handing over between threads, and
    no contention of a dozen threads for the interpreter.
    """

    def __init__(self, *, prefetch: bool = True) -> None:
        """
        ``prefetch``: look up the session cookie's user on the loop before the
        middleware runs (``auth.prefetch``), for the stream's view. False
        serves other views the same way, without anything of this app.
        """
        super().__init__()
        self.prefetch = prefetch
        self.executor = ThreadPoolExecutor(
            max_workers=MIDDLEWARE_THREADS, thread_name_prefix="notifications-middleware"
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # No thread-sensitive context around the request: it would keep a
        # worker thread for the stream's whole life. request_started and
        # request_finished (a few cheap receivers) run on asgiref's shared thread.
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        # As the chain was loaded: what in it may block the loop.
        self.blocking = may_block(settings.MIDDLEWARE)

    def make_view_atomic(self, view: Any) -> Any:
        # The stream's own view answers in the middleware's thread, without a
        # round trip to the event loop; any other view is Django's business.
        # (The stream never runs in a transaction: ATOMIC_REQUESTS is ignored.)
        if self.prefetch:
            from . import views  # the app's modules load once Django is set up

            if view is views.stream:
                return views.stream_in_thread
        return super().make_view_atomic(view)

    async def answer(self, request: HttpRequest, body_file: Any) -> tuple[HttpRequest, HttpResponseBase]:
        if not self.prefetch:
            return request, await self.run_get_response(request)
        prefetched = await self._prepare_stream(request)
        if not self._stays_on_loop(prefetched):
            self._opening(prefetched, on_loop=False)
            return request, await self.run_get_response(request)
        self._opening(prefetched, on_loop=True)
        response = self._respond(request, on_loop=True)
        if not _unsettled(response):
            OPENINGS["on_loop"] += 1
            response._handler_class = self.__class__  # type: ignore[attr-defined]
            return request, response
        # The middleware left the user to be asked of the database: again, in
        # a thread, with a request the middleware has not seen.
        response.close()
        scope = request.scope  # type: ignore[attr-defined]
        _let_go(request)
        again, _ = self.create_request(scope, body_file)
        assert again is not None  # noqa: S101  # the same scope made a request once
        self._opening(prefetched, on_loop=False)
        return again, await self.run_get_response(again)

    def _stays_on_loop(self, prefetched: Any) -> bool:
        from .auth import Undecided

        return (
            not self.blocking
            and not isinstance(prefetched, (Undecided, Exception))
            and _receivers_stay_on_loop(signals.request_started)
            and _receivers_stay_on_loop(signals.request_finished)
        )

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        if self.prefetch:
            OPENINGS["in_thread"] += 1
        respond = sync_to_async(self._respond, thread_sensitive=False, executor=self.executor)
        future = asyncio.ensure_future(respond(request))
        try:
            # Shielded: a client that leaves while the middleware runs cancels
            # this wait, not the thread; the response it still makes (holding
            # a stream slot) is then closed as soon as it is ready.
            response = await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(_close_dropped)
            raise
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        return response

    async def _prepare_stream(self, request: HttpRequest) -> Any:
        from . import auth

        # Authenticated here, on the loop, with every stream opening at this
        # moment (one batch, a few queries), while the thread, once the
        # middleware ran, takes the answer only if the session cookie still
        # decides; it would otherwise wait on the database once per request.
        try:
            request.get_host()
        except DisallowedHost:
            prefetched: Any = auth.UNDECIDED  # the middleware answers 400
        else:
            prefetched = await auth.prefetch(request)
        return prefetched

    @staticmethod
    def _opening(prefetched: Any, *, on_loop: bool) -> None:
        """What the stream's view reads of this opening (``views.opening_on``)."""
        from . import views
        from .hub import get_hub

        views.opening_on.set((asyncio.get_running_loop(), get_hub(), prefetched, on_loop))

    @property
    def started_in_thread(self) -> bool:  # type: ignore[override]
        return self.prefetch

    def _respond(self, request: HttpRequest, *, on_loop: bool = False) -> HttpResponseBase:
        """
        In a worker thread (or on the loop): ``request_started``, the
        middleware and the view; for the stream's response, its close
        (``request_finished``: it will not be iterated); then close the
        connections opened in this thread (none on the loop).
        """
        try:
            if self.prefetch:
                signals.request_started.send(sender=self.__class__, scope=request.scope)  # type: ignore[attr-defined]
            response = self.get_response(request)
            if self.prefetch and _taken(response) is not None:
                response.close()
            return response
        finally:
            if not on_loop:
                connections.close_all()


def _unsettled(response: HttpResponseBase) -> bool:
    views = sys.modules.get(f"{__package__}.views")
    return views is not None and isinstance(response, views.NotSettledOnLoop)


_closing: set[asyncio.Task[None]] = set()


def _close_dropped(future: asyncio.Future[HttpResponseBase]) -> None:
    """Close a response nobody will send (its client left), as Django would have."""
    if future.cancelled() or future.exception() is not None:
        return
    task = asyncio.get_running_loop().create_task(sync_to_async(future.result().close)())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


class StreamHandlerWithoutMiddleware(_HandsStreamsOver):
    """The stream's handler with an empty middleware chain: no thread at all."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        get_response = (
            self._get_response_async  # type: ignore[attr-defined]
            if is_async
            else self._get_response  # type: ignore[attr-defined]
        )
        self._middleware_chain = convert_exception_to_response(get_response)


def serve_streams(application: ASGIApp, *, middleware: bool | None = None) -> ASGIApp:
    """
    Wrap the project's ASGI ``application``: GET requests for the stream's URL
    go to a ``StreamHandler`` (through the project's middleware, unless
    ``middleware`` is False, or is None and NOTIFICATIONS_STREAM_MIDDLEWARE is
    False); everything else to ``application``. The server process's delivery
    worker thread (NOTIFICATIONS_DELIVERY_THREAD) starts when the server first
    calls this: its lifespan scope (uvicorn, hypercorn) or its first request
    (daphne).
    """
    handlers: dict[bool, ASGIHandler] = {}
    stream_path: list[str] = []

    def path_of_stream() -> str:
        if not stream_path:
            url = reverse("notifications:stream")
            prefix = get_script_prefix()
            stream_path.append("/" + url[len(prefix) :] if url.startswith(prefix) else url)
        return stream_path[0]

    def handler() -> ASGIHandler:
        passes = conf.STREAM_MIDDLEWARE if middleware is None else middleware
        found = handlers.get(passes)
        if found is None:
            found = handlers[passes] = (
                StreamHandler() if passes else StreamHandlerWithoutMiddleware()
            )
        return found

    started: list[bool] = []

    def start_worker() -> None:
        if not started:
            started.append(True)
            from . import worker

            worker.start_in_server()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # The server is starting the application: its lifespan (uvicorn,
        # hypercorn), else its first request (daphne). The lifespan goes on
        # to ``application`` as it comes.
        start_worker()
        if scope["type"] == "http" and scope.get("method") == "GET":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path == path_of_stream():
                await handler()(scope, receive, send)
                return
        await application(scope, receive, send)

    return app


def stream_without_middleware(application: ASGIApp) -> ASGIApp:
    """
    Deprecated: use ``serve_streams``. The stream now passes the project's
    middleware unless NOTIFICATIONS_STREAM_MIDDLEWARE is False.
    """
    warnings.warn(
        "stream_without_middleware() is deprecated: use serve_streams(), and set "
        "NOTIFICATIONS_STREAM_MIDDLEWARE = False to skip the middleware.",
        DeprecationWarning,
        stacklevel=2,
    )
    return serve_streams(application)
