"""
Serve the notification stream without the project's middleware.

Every request through Django's ASGI handler passes the project's middleware;
each synchronous middleware hook (most of Django's own are synchronous) is a
hop to a worker thread and back. For a page that is nothing; for ten thousand
browsers reconnecting at once it is most of the server's time. The stream view
needs none of it: it authenticates from the session cookie itself, answers
JSON errors itself and sends only ``text/event-stream``. So the project's ASGI
application can hand the stream's path to a handler without middleware:

    # asgi.py
    from django.core.asgi import get_asgi_application
    from notifications.asgi import stream_without_middleware

    application = stream_without_middleware(get_asgi_application())

Everything else goes to the application as before. Opt in only if no
middleware of yours must see the stream's requests (an IP allow-list, a
tenant switch, a custom authentication): they would not.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.urls import get_script_prefix, reverse

ASGIApp = Any


class StreamHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Django opens a ThreadSensitiveContext per request: a new worker thread
        # for its first thread-sensitive call (the request_started receivers).
        # The stream makes no such call of its own; those few run on asgiref's
        # shared thread instead of starting a thread per connecting client.
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


def stream_without_middleware(application: ASGIApp) -> ASGIApp:
    """Wrap ``application``: GET requests for the stream's URL skip the middleware."""
    handler = StreamHandler()
    stream_path: list[str] = []

    def path_of_stream() -> str:
        if not stream_path:
            url = reverse("notifications:stream")
            prefix = get_script_prefix()
            stream_path.append("/" + url[len(prefix) :] if url.startswith(prefix) else url)
        return stream_path[0]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path == path_of_stream():
                await handler(scope, receive, send)
                return
        await application(scope, receive, send)

    return app
