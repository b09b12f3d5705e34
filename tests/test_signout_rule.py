"""
The sign-out rule (``notifications.signout``) on its own: its answer for each
way a login stops being good or a user's audiences change, and that every
path (opening, the sweep, check messages, the signals) goes through it.

Against real server processes, see tests/test_signout.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group
from django.test import Client, RequestFactory

from notifications import auth, db, feed, signout
from notifications.finality import Sequence
from notifications.hub import Hub, Subscription
from notifications.models import Audiences


def logged_in(user: Any) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies["sessionid"].value


def opened(user: Any, key: str | None = None) -> Audiences:
    """What a stream of ``user`` holds when it opens on session ``key``."""
    return Audiences.of(user, key, user.get_session_auth_hash() if key else None)


@pytest.fixture
def alice(db: Any) -> Any:
    return get_user_model().objects.create_user("alice", password="pw")


# -- the rule's answers ----------------------------------------------------------


def test_an_anonymous_user_may_not_stream():
    assert not signout.may_stream(AnonymousUser())


@pytest.mark.django_db
def test_an_active_user_may_stream(alice):
    assert signout.may_stream(alice)


@pytest.mark.django_db
def test_an_inactive_user_may_not_stream(alice):
    alice.is_active = False
    assert not signout.may_stream(alice)


@pytest.mark.django_db
def test_a_live_login_is_not_signed_out(alice):
    _, key = logged_in(alice)
    assert signout.signed_out([opened(alice, key)]) == (set(), set())


@pytest.mark.django_db
def test_a_logout_ends_the_login(alice):
    client, key = logged_in(alice)
    who = opened(alice, key)
    client.logout()
    assert signout.signed_out([who]) == ({key}, set())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "engine",
    ["django.contrib.sessions.backends.db", "django.contrib.sessions.backends.signed_cookies"],
)
def test_a_password_change_ends_the_login(alice, settings, engine):
    settings.SESSION_ENGINE = engine
    _, key = logged_in(alice)
    who = opened(alice, key)
    alice.set_password("another")
    alice.save()
    assert signout.signed_out([who]) == ({key}, set())


@pytest.mark.django_db
def test_a_hash_made_with_a_fallback_secret_key_keeps_the_login(alice, settings):
    _, key = logged_in(alice)
    who = opened(alice, key)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key", [settings.SECRET_KEY]
    assert signout.signed_out([who]) == (set(), set())


@pytest.mark.django_db
def test_a_hash_made_with_a_retired_secret_key_ends_the_login(alice, settings):
    _, key = logged_in(alice)
    who = opened(alice, key)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key", []
    assert signout.signed_out([who]) == ({key}, set())


@pytest.mark.django_db
def test_an_inactive_user_is_signed_out(alice):
    _, key = logged_in(alice)
    who = opened(alice, key)
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert signout.signed_out([who]) == (set(), {alice.pk})


@pytest.mark.django_db
def test_a_deleted_user_is_signed_out(alice):
    who = opened(alice)
    pk = alice.pk
    alice.delete()
    assert signout.signed_out([who]) == (set(), {pk})


@pytest.mark.django_db
def test_losing_staff_ends_the_login(alice):
    get_user_model().objects.filter(pk=alice.pk).update(is_staff=True)
    alice.refresh_from_db()
    _, key = logged_in(alice)
    who = opened(alice, key)
    get_user_model().objects.filter(pk=alice.pk).update(is_staff=False)
    assert signout.signed_out([who]) == ({key}, set())


@pytest.mark.django_db
def test_leaving_a_group_ends_the_login(alice):
    editors = Group.objects.create(name="editors")
    alice.groups.add(editors)
    _, key = logged_in(alice)
    who = opened(alice, key)
    alice.groups.remove(editors)
    assert signout.signed_out([who]) == ({key}, set())


@pytest.mark.django_db
def test_joining_a_group_ends_the_login(alice):
    _, key = logged_in(alice)
    who = opened(alice, key)
    alice.groups.add(Group.objects.create(name="editors"))
    assert signout.signed_out([who]) == ({key}, set())


@pytest.mark.django_db
def test_a_stream_without_a_login_ends_with_its_user_when_audiences_change(alice):
    who = opened(alice)  # (a user the project's middleware set, not the session's)
    alice.groups.add(Group.objects.create(name="editors"))
    assert signout.signed_out([who]) == (set(), {alice.pk})


@pytest.mark.django_db
def test_audiences_changed_compares_staff_and_groups(alice):
    who = opened(alice)
    assert not signout.audiences_changed(who, alice, frozenset())
    assert signout.audiences_changed(who, alice, frozenset({1}))
    alice.is_staff = True
    assert signout.audiences_changed(who, alice, frozenset())


@pytest.fixture
def signed_cookies(settings: Any) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"


@pytest.mark.django_db
def test_a_valid_signed_cookie_keeps_the_login(alice, signed_cookies):
    _, key = logged_in(alice)
    assert signout.signed_out([opened(alice, key)]) == (set(), set())


@pytest.mark.django_db
def test_a_signed_cookie_past_its_age_ends_the_login(alice, signed_cookies, settings):
    _, key = logged_in(alice)
    who = opened(alice, key)
    settings.SESSION_COOKIE_AGE = -1
    assert signout.signed_out([who]) == ({key}, set())


@pytest.mark.django_db
def test_a_signed_cookie_with_a_bad_signature_ends_the_login(alice, signed_cookies):
    _, key = logged_in(alice)
    who = opened(alice, key)
    who.session_key = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert signout.signed_out([who]) == ({who.session_key}, set())


@pytest.mark.django_db
def test_a_signed_cookie_logged_out_elsewhere_stays_valid_as_for_django(alice, signed_cookies):
    """A logout only replaces the cookie in that browser: Django would accept the old one."""
    client, key = logged_in(alice)
    who = opened(alice, key)
    client.logout()
    assert signout.signed_out([who]) == (set(), set())


class Stream:
    def __init__(self, who: Audiences) -> None:
        self.who = who


def test_a_logout_message_ends_that_logins_streams_only():
    here, there = (
        Stream(Audiences(7, False, frozenset(), "here")),
        Stream(Audiences(7, False, frozenset(), "there")),
    )
    message = {"type": "notifications.check", "user": "7", "session": "here"}
    assert signout.on_check(message, {7: {here, there}}) == ([here], set())


def test_a_check_message_names_the_users_whose_logins_are_checked():
    mine = Stream(Audiences(7, False, frozenset(), "here"))
    message = {"type": "notifications.check", "user": "7"}
    assert signout.on_check(message, {7: {mine}}) == ([], {7})


def test_a_check_message_for_a_user_without_streams_here_asks_nothing():
    message = {"type": "notifications.check", "user": "8", "session": "here"}
    assert signout.on_check(message, {7: {Stream(Audiences(7, False, frozenset(), "here"))}}) == (
        [],
        set(),
    )


# -- every path goes through the module ----------------------------------------


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Record each call of the module's entry points (and still make it)."""
    seen: dict[str, list[Any]] = {}
    for name in ("may_stream", "signed_out", "on_check", "logins_changed", "login_ended"):
        real = getattr(signout, name)

        def recorded(*args: Any, _name: str = name, _real: Any = real) -> Any:
            seen.setdefault(_name, []).append(args)
            return _real(*args)

        recorded.__name__ = name
        monkeypatch.setattr(signout, name, recorded)
    return seen


@pytest.mark.django_db(transaction=True)
def test_a_password_change_goes_through_the_module(alice, calls):
    calls.clear()
    alice.set_password("another")
    alice.save()
    assert calls["logins_changed"] == [([alice.pk],)]


@pytest.mark.django_db(transaction=True)
def test_a_group_change_goes_through_the_module(alice, calls):
    editors = Group.objects.create(name="editors")
    calls.clear()
    alice.groups.add(editors)
    editors.user_set.remove(alice)
    assert calls["logins_changed"] == [([alice.pk],), ([alice.pk],)]


@pytest.mark.django_db
def test_a_logout_goes_through_the_module(alice, calls):
    client, key = logged_in(alice)
    client.logout()
    assert calls["login_ended"] == [(alice.pk, key)]


@pytest.mark.django_db
def test_opening_a_stream_goes_through_the_module(alice, calls):
    _, key = logged_in(alice)
    request = RequestFactory().get("/", HTTP_COOKIE=f"sessionid={key}")
    [who] = auth.stream_audiences([request])
    assert isinstance(who, Audiences) and calls["may_stream"]


@pytest.mark.django_db
def test_opening_a_stream_through_djangos_get_user_goes_through_the_module(
    alice, calls, signed_cookies
):
    _, key = logged_in(alice)
    request = RequestFactory().get("/", HTTP_COOKIE=f"sessionid={key}")
    [who] = auth.stream_audiences([request])
    assert isinstance(who, Audiences) and calls["may_stream"]


def hub_with_a_stream(user_id: Any = 7) -> tuple[Hub, Subscription]:
    hub = Hub()
    hub.position = hub.read_position = Sequence(1)
    reservation = hub.reserve(user_id)
    assert reservation is not None and hub.registry.start(reservation)
    who = Audiences(user_id, False, frozenset(), "the-session", "old-hash")
    sub = Subscription(who, Sequence(1), reservation)
    hub.registry.add(user_id, sub)
    return hub, sub


def test_the_sweep_goes_through_the_module(monkeypatch, settings):
    settings.NOTIFICATIONS_HEARTBEAT = 0.05
    swept: list[list[Any]] = []

    def signed_out(streams: Any) -> tuple[set[str], set[Any]]:
        swept.append([who.user_id for who in streams])
        return {"the-session"}, set()

    monkeypatch.setattr(signout, "signed_out", signed_out)

    async def scenario() -> Subscription:
        hub, sub = hub_with_a_stream()
        sweep = asyncio.create_task(hub._sweep_loop())
        try:
            async with asyncio.timeout(10):
                while sub.closed_reason is None:  # until the sweep's answer is applied
                    await asyncio.sleep(0.01)
        finally:
            sweep.cancel()
        return sub

    assert asyncio.run(scenario()).closed_reason == "signed out"
    assert swept[0] == [7]


@pytest.mark.django_db(transaction=True)
def test_a_check_message_goes_through_the_module(alice, monkeypatch, calls):
    real = db.run

    async def run(fn: Any, *args: Any) -> Any:
        if fn is feed.fetch:  # nothing new committed
            return feed.Fetched(Sequence(1), Sequence(1), [], [])
        return await real(fn, *args)

    monkeypatch.setattr(db, "run", run)

    async def scenario() -> Subscription:
        hub, sub = hub_with_a_stream(alice.pk)
        hub.on_message({"type": "notifications.check", "user": str(alice.pk)})
        await hub._fetch()
        return sub

    sub = asyncio.run(scenario())
    assert calls["on_check"]
    assert [[who.user_id for who in streams] for (streams,) in calls["signed_out"]] == [[alice.pk]]
    assert sub.closed_reason == "signed out"  # (its session is not a live one)
