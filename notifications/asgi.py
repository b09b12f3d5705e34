"""
Serve the notification stream through the project's middleware, without
keeping an OS thread per open stream.

Django's ASGI handler gives each request a thread-sensitive context: the
synchronous middleware hooks of the request (most of Django's own middleware)
run in a worker thread of that context, and the context lasts until the
response ends. For a stream that is its whole life: one OS thread per open
stream. ``serve_streams`` hands the stream's requests to a handler that runs
the project's middleware and the view in such a context and releases it (the
thread and its database connections) as soon as the response is ready, before
the body streams. Everything else goes to the application unchanged:

    # asgi.py
    from django.core.asgi import get_asgi_application
    from notifications.asgi import serve_streams

    application = serve_streams(get_asgi_application())

``NOTIFICATIONS_STREAM_MIDDLEWARE = False`` makes the stream's requests skip
the middleware altogether (a little faster to open). The stream then still
validates the host against ALLOWED_HOSTS and reads the user from the session
cookie as ``django.contrib.auth.get_user`` does, and the system check
``notifications.W007`` names every middleware it bypasses.

Private parts of asgiref are used in one place, ``_release``; the tests of
``tests/test_asgi.py`` fail loudly if a release of asgiref changes them.
"""

from __future__ import annotations

import warnings
from typing import Any

from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.db import connections
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import get_script_prefix, reverse

from .conf import conf

ASGIApp = Any


class StreamHandler(ASGIHandler):
    """
    Django's ASGI handler, but the thread-sensitive context covers only the
    middleware and the view, not the streaming of the response.
    """

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # No context around the whole request: request_started and
        # request_finished (a few cheap receivers) run on asgiref's shared thread.
        await self.handle(scope, receive, send)

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        context = ThreadSensitiveContext()
        async with context:
            try:
                return await super().run_get_response(request)
            finally:
                await _release(context)


async def _release(context: ThreadSensitiveContext) -> None:
    """
    Close the database connections of the context's worker thread, if the
    request started one: the thread ends with the context, and Django closes
    a request's connections only at request_finished, after the stream.
    """
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    if executors is not None and context not in executors:
        return  # no synchronous call was made: no thread, no connection
    await sync_to_async(connections.close_all, thread_sensitive=True)()


class StreamHandlerWithoutMiddleware(StreamHandler):
    """The stream's handler with an empty middleware chain."""

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


def serve_streams(application: ASGIApp) -> ASGIApp:
    """
    Wrap the project's ASGI ``application``: GET requests for the stream's URL
    go to a ``StreamHandler`` (through the project's middleware, unless
    NOTIFICATIONS_STREAM_MIDDLEWARE is False); everything else to ``application``.
    """
    handlers: dict[bool, StreamHandler] = {}
    stream_path: list[str] = []

    def path_of_stream() -> str:
        if not stream_path:
            url = reverse("notifications:stream")
            prefix = get_script_prefix()
            stream_path.append("/" + url[len(prefix) :] if url.startswith(prefix) else url)
        return stream_path[0]

    def handler() -> StreamHandler:
        middleware = conf.STREAM_MIDDLEWARE
        found = handlers.get(middleware)
        if found is None:
            found = handlers[middleware] = (
                StreamHandler() if middleware else StreamHandlerWithoutMiddleware()
            )
        return found

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
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
