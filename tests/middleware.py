"""
Middleware of a pretend project (tests/settings_custom_middleware.py), to show
that the stream honours whatever the project's middleware decides.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

USER_HEADER = "X-Proxy-User"
CLIENT_HEADER = "X-Client-Ip"
ALLOWED_CLIENTS = {"127.0.0.1"}


class ProxyUserMiddleware:
    """
    The user is the one named in X-Proxy-User (as a trusted single-sign-on
    proxy would set it), whatever the session cookie says. Async, as
    ``request.auser()`` is what async views ask.
    """

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        name = request.headers.get(USER_HEADER)
        if name:
            user = await get_user_model()._default_manager.filter(username=name).afirst()
            if user is not None:

                async def auser() -> Any:
                    return user

                request.user = user
                request.auser = auser  # type: ignore[attr-defined]
        return await self.get_response(request)


class AllowListMiddleware:
    """Refuses (403) requests from clients not on the allow-list, as an IP allow-list does."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        client = request.headers.get(CLIENT_HEADER, "127.0.0.1")
        if client not in ALLOWED_CLIENTS:
            return HttpResponseForbidden("Not from here.")
        return self.get_response(request)


class OwnAuserMiddleware:
    """
    Replaces ``request.auser`` with a function of its own that answers as
    Django's does, reading nothing until asked: a middleware a project may
    rightly list in NOTIFICATIONS_NONBLOCKING_MIDDLEWARE, after which only
    the database can say who the stream's user is.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.contrib.auth import aget_user

        async def auser() -> Any:
            return await aget_user(request)

        request.auser = auser  # type: ignore[attr-defined]
        return self.get_response(request)
