"""
Open streams end when Django would no longer authenticate them, or when their
user's rights change, within one heartbeat; against real server processes.

Logout and deactivation are in tests/test_stream.py. The sweep that decides it
is ``feed.signed_out``; its query count is checked here too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.contrib.sessions.backends import signed_cookies
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import DatabaseError
from django.test import Client, override_settings

from notifications import api, delivery, feed
from notifications.models import Audiences

from .conftest import CSRF, session_cookies
from .services import PrivateRedis, redis_layer

HEARTBEAT = 2.0


def streaming(make_server: Any, **env: str) -> Any:
    return make_server(NOTIFICATIONS_HEARTBEAT=str(HEARTBEAT), **env)


def ends_within_a_heartbeat(stream: Any, since: float) -> None:
    stream.wait_for(lambda s: s.ended, timeout=HEARTBEAT + 2)
    assert time.monotonic() - since <= HEARTBEAT + 0.5, "ended later than a heartbeat"


def change_password(user: Any) -> None:
    """What a password change in another session does to the user's row."""
    user.set_password("a new password")
    user.save()


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_password_change_ends_the_other_sessions_streams_within_a_heartbeat(
    browser, make_user, make_server
):
    srv = streaming(make_server)
    alice, bob = make_user(), make_user()
    tab = browser(alice, on=srv)
    streams = [tab.stream().connected(), tab.stream().connected()]
    bystander = browser(bob, on=srv).stream().connected()
    change_password(alice)  # (hashing takes a while: time from the commit)
    changed = time.monotonic()
    for stream in streams:
        ends_within_a_heartbeat(stream, changed)
    after = api.notify(alice, "after the password change")[0]
    again = tab.stream()
    again.wait_for(lambda s: s.ended)
    assert again.status == 403  # Django refuses the cookie too
    assert all(after.pk not in s.notification_ids() for s in streams)
    assert not bystander.ended


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_losing_staff_stops_staff_broadcasts_within_a_heartbeat(browser, make_user, make_server):
    srv = streaming(make_server)
    alice = make_user(staff=True)
    tab = browser(alice, on=srv)
    stream = tab.stream().connected()
    before = api.broadcast("for staff, before", audience="staff")
    stream.wait_for(lambda s: before.pk in s.notification_ids())

    alice.is_staff = False
    alice.save()
    removed = time.monotonic()
    ends_within_a_heartbeat(stream, removed)
    # The browser reconnects from its cursor, with its rights as they are now.
    again = tab.stream(last_event_id=stream.last_id).connected()
    staff_only = api.broadcast("for staff, after", audience="staff")
    everyone = api.broadcast("for everyone, after")
    again.wait_for(lambda s: everyone.pk in s.notification_ids())
    assert staff_only.pk not in stream.notification_ids() + again.notification_ids()


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_leaving_a_group_stops_its_broadcasts_within_a_heartbeat(browser, make_user, make_server):
    srv = streaming(make_server)
    editors = Group.objects.create(name="editors")
    alice = make_user(groups=[editors])
    tab = browser(alice, on=srv)
    stream = tab.stream().connected()
    before = api.broadcast("for editors, before", audience=editors)
    stream.wait_for(lambda s: before.pk in s.notification_ids())

    alice.groups.remove(editors)
    removed = time.monotonic()
    ends_within_a_heartbeat(stream, removed)
    again = tab.stream(last_event_id=stream.last_id).connected()
    for_group = api.broadcast("for editors, after", audience=editors)
    everyone = api.broadcast("for everyone, after")
    again.wait_for(lambda s: everyone.pk in s.notification_ids())
    assert for_group.pk not in stream.notification_ids() + again.notification_ids()


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_joining_a_group_brings_its_broadcasts_after_a_reconnect(browser, make_user, make_server):
    srv = streaming(make_server)
    editors = Group.objects.create(name="editors")
    alice = make_user()
    tab = browser(alice, on=srv)
    stream = tab.stream().connected()
    alice.groups.add(editors)
    ends_within_a_heartbeat(stream, time.monotonic())
    again = tab.stream(last_event_id=stream.last_id).connected()
    for_group = api.broadcast("for editors", audience=editors)
    again.wait_for(lambda s: for_group.pk in s.notification_ids())


def signed_cookie_browser(user: Any, srv: Any, browser: Any) -> Any:
    """A browser logged in with a signed-cookie session (the server's engine)."""
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies"):
        client = Client()
        client.force_login(user)
        cookie = client.cookies["sessionid"].value
    tab = browser(None, on=srv)
    tab.cookies = {"sessionid": cookie, "csrftoken": CSRF}
    return tab


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["password", "staff"])  # deactivation: test_stream.py
def test_with_signed_cookie_sessions_what_the_server_can_check_ends_the_stream(
    browser, make_user, make_server, change
):
    srv = streaming(make_server, DJANGO_SETTINGS_MODULE="tests.settings_signed_cookies")
    alice, bob = make_user(staff=True), make_user()
    tab = signed_cookie_browser(alice, srv, browser)
    stream = tab.stream().connected()
    bystander = signed_cookie_browser(bob, srv, browser).stream().connected()
    if change == "password":
        change_password(alice)
    else:
        alice.is_staff = False
        alice.save()
    ends_within_a_heartbeat(stream, time.monotonic())
    again = tab.stream()
    if change == "staff":
        again.connected()  # still logged in, with fewer rights
        staff_only = api.broadcast("for staff, after", audience="staff")
        everyone = api.broadcast("for everyone, after")
        again.wait_for(lambda s: everyone.pk in s.notification_ids())
        assert staff_only.pk not in again.notification_ids()
    else:
        again.wait_for(lambda s: s.ended)
        assert again.status == 403
    assert not bystander.ended


# -- the sweep, as a function ------------------------------------------------------------


def opened(user: Any, key: str | None = None) -> Audiences:
    """What a stream of ``user`` holds when it opens on session ``key``."""
    who = Audiences.of(user, key, user.get_session_auth_hash() if key else None)
    return who


def logged_in(user: Any) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.mark.django_db
def test_the_sweep_takes_three_queries_whatever_the_number_of_streams(django_assert_num_queries):
    editors = Group.objects.create(name="editors")
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"u{i}", password="x") for i in range(400))
    editors.user_set.add(*users[::2])
    keys = [logged_in(u) for u in users[:5]]
    few = [opened(u, k) for u, k in zip(users[:5], keys)]
    many = few + [opened(u) for u in users] + [opened(u) for u in users]  # 805 streams
    with django_assert_num_queries(3):  # sessions, users, groups
        assert feed.signed_out(few) == (set(), set())
    with django_assert_num_queries(3):
        assert feed.signed_out(many) == (set(), set())


@pytest.mark.django_db(transaction=True)
def test_a_group_change_of_many_users_keeps_their_checks_in_one_insert():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from notifications.models import ReadEvent
    from notifications.signout import login_checks

    editors = Group.objects.create(name="editors")
    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"u{i}", password="x") for i in range(300))
    with CaptureQueriesContext(connection) as queries:
        editors.user_set.add(*users)  # commits: the checks are kept after it
    table = ReadEvent._meta.db_table
    inserts = [q["sql"] for q in queries if q["sql"].startswith("INSERT") and table in q["sql"]]
    assert len(inserts) == 1
    rows = ReadEvent.objects.values_list("user_id", "id", "payload")
    kept, checks = login_checks(rows)
    assert kept == []
    assert sorted(int(c["user"]) for c in checks) == sorted(u.pk for u in users)


@pytest.mark.django_db
def test_the_sweep_accepts_a_hash_made_with_a_fallback_secret_key(settings):
    alice = get_user_model().objects.create_user("alice", password="pw")
    key = logged_in(alice)
    old = opened(alice, key)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key", [settings.SECRET_KEY]
    assert feed.signed_out([old]) == (set(), set())  # Django's get_user accepts it (and cycles the key)
    settings.SECRET_KEY_FALLBACKS = []
    assert feed.signed_out([old]) == ({key}, set())


@pytest.mark.django_db
def test_the_sweep_ends_a_signed_cookie_past_its_age(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    alice = get_user_model().objects.create_user("alice", password="pw")
    key = logged_in(alice)
    assert signed_cookies.SessionStore(session_key=key).load()  # a valid cookie
    who = opened(alice, key)
    assert feed.signed_out([who]) == (set(), set())
    settings.SESSION_COOKIE_AGE = -1
    assert feed.signed_out([who]) == ({key}, set())


# -- at once: a change of login ends the streams before anything more reaches them --

SLOW_SWEEP = {"NOTIFICATIONS_HEARTBEAT": "60", "NOTIFICATIONS_POLL_INTERVAL": "0.2"}


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_password_changed_on_the_site_ends_other_sessions_streams_before_the_next_notification(
    browser, make_user, make_server
):
    """
    The sweep runs every 30 s here: only the check the password change sends
    can end the streams in time. A notification committed right after the
    change must not reach them.
    """
    srv = make_server(**SLOW_SWEEP)
    alice = make_user()
    here, elsewhere = browser(alice, on=srv), browser(alice, on=srv)
    streams = [elsewhere.stream().connected(), elsewhere.stream().connected()]
    mine = here.stream().connected()
    answer = here.post(
        "/password/",
        data={"old_password": "pw", "new_password1": "a new passphrase", "new_password2": "a new passphrase"},
    )
    assert answer.status_code == 302, answer.text
    changed = time.monotonic()
    after = api.notify(alice, "right after the password change")[0]
    for stream in streams:
        stream.wait_for(lambda s: s.ended, timeout=5)
    assert time.monotonic() - changed < 5  # not the 30 s sweep
    assert all(after.pk not in s.notification_ids() for s in streams)
    refused = elsewhere.stream()
    refused.wait_for(lambda s: s.ended)
    assert refused.status == 403
    # The session that changed it stays logged in (update_session_auth_hash):
    # its stream ends too (it opened with the old hash) and reconnects at once.
    mine.wait_for(lambda s: s.ended, timeout=5)
    here.cookies = {**here.cookies, "sessionid": answer.cookies["sessionid"]}  # (a new key)
    again = here.stream(last_event_id=mine.last_id).connected()
    again.wait_for(lambda s: after.pk in s.notification_ids(), timeout=5)


def log_out(cookies: dict[str, str]) -> None:
    """Log the session of ``cookies`` out, as Django's logout view does, in this process."""
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = cookies[settings.SESSION_COOKIE_NAME]
    client.logout()


def leave_group(user: Any) -> None:
    user.groups.clear()


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", [change_password, log_out, leave_group], ids=["password", "logout", "group"])
def test_a_change_in_a_process_the_layer_does_not_reach_ends_the_streams_before_the_next_notification(
    browser, make_user, make_server, change
):
    """
    The change is made here, in the test's process, and the server has a
    channel layer of its own (in-memory): no check message can reach it, and
    its sweep runs every 30 s. The check kept in the database, read with the
    rows in one snapshot, must end the streams before the notification
    committed right after the change reaches them.
    """
    srv = make_server(REDIS_URL="", **SLOW_SWEEP)
    editors = Group.objects.create(name=f"editors-{change.__name__}")
    alice, bob = make_user(groups=[editors]), make_user()
    leaving, staying = browser(alice, on=srv), browser(alice, on=srv)
    ended = [leaving.stream().connected(), leaving.stream().connected()]
    others = staying.stream().connected()
    bystander = browser(bob, on=srv).stream().connected()
    if change is log_out:
        change(leaving.cookies)  # that session's streams end; the other one's stay
    else:
        ended.append(others)
        change(alice)
    changed = time.monotonic()
    after = api.notify(alice, "right after the change")[0]
    api.notify(bob, "for the bystander")
    for stream in ended:
        stream.wait_for(lambda s: s.ended, timeout=5)
    assert time.monotonic() - changed < 5  # not the 30 s sweep
    assert all(after.pk not in s.notification_ids() for s in ended)
    bystander.wait_for(lambda s: s.notifications(), timeout=5)
    if change is change_password:  # Django refuses that session now
        refused = staying.stream()
        refused.wait_for(lambda s: s.ended)
        assert refused.status == 403
    else:  # the session still logs in (groups: it resumes from its cursor)
        if change is leave_group:
            others = staying.stream(last_event_id=others.last_id).connected()
        others.wait_for(lambda s: after.pk in s.notification_ids(), timeout=5)
    # The kept checks reach no client, live or in a replay (which would reset).
    assert not any(s.of("read") or s.of("reset") for s in [*ended, others, bystander])


@pytest.mark.server
@pytest.mark.django_db(transaction=True)
def test_a_logout_ends_that_sessions_streams_before_the_next_notification(browser, make_user, make_server):
    srv = make_server(**SLOW_SWEEP)
    alice = make_user()
    leaving, staying = browser(alice, on=srv), browser(alice, on=srv)
    gone = [leaving.stream().connected(), leaving.stream().connected()]
    kept = staying.stream().connected()
    assert leaving.post("/logout/").status_code == 302
    left = time.monotonic()
    after = api.notify(alice, "right after the logout")[0]
    for stream in gone:
        stream.wait_for(lambda s: s.ended, timeout=5)
    assert time.monotonic() - left < 5
    kept.wait_for(lambda s: after.pk in s.notification_ids(), timeout=5)
    assert all(after.pk not in s.notification_ids() for s in gone)
    assert not kept.ended


def test_a_check_that_arrives_while_the_hub_reads_is_done_before_the_rows_go_out(monkeypatch):
    from notifications import db
    from notifications.finality import Sequence
    from notifications.hub import Hub, Subscription

    calls: list[str] = []

    async def scenario() -> Subscription:
        hub = Hub()
        hub.position = hub.read_position = Sequence(1)
        reservation = hub.reserve(7)
        assert reservation is not None and hub.registry.start(reservation)
        sub = Subscription(Audiences(7, False, frozenset(), "the-session", "old-hash"), Sequence(1), reservation)
        hub.registry.add(7, sub)

        async def run(fn, *args):
            calls.append(fn.__name__)
            if fn is feed.fetch:  # the password changes while the hub reads
                hub.on_message({"type": "notifications.check", "user": "7"})
                return feed.Fetched(Sequence(2), Sequence(1), [feed.Row(2, 2, 7, "user", None, '{"id": 2}')], [])
            assert fn is feed.signed_out and [w.user_id for w in args[0]] == [7]
            return {"the-session"}, set()

        monkeypatch.setattr(db, "run", run)
        await hub._fetch()
        return sub

    sub = asyncio.run(scenario())
    assert calls == ["fetch", "signed_out"]
    assert sub.closed_reason == "signed out" and not sub.pending


@pytest.mark.parametrize("kept", ["password", "logout"])
def test_a_check_kept_with_the_rows_is_done_before_they_go_out_and_reaches_no_client(monkeypatch, kept):
    """
    The read finds a kept check (before the rows in its snapshot) and a
    read event of the same user: the check is done first, and only the read
    event is for the client.
    """
    from notifications import db
    from notifications.finality import Sequence
    from notifications.hub import Hub, Reads, Subscription
    from notifications.signout import session_tag

    calls: list[str] = []
    check = '{"login":""}' if kept == "password" else f'{{"login":"{session_tag("the-session")}"}}'
    read = '{"ids":[1],"unread":false,"deleted":false,"unread_count":0,"unseen_count":0}'

    async def scenario() -> tuple[Subscription, Subscription]:
        hub = Hub()
        hub.position = hub.read_position = Sequence(1)
        subs = []
        for session in ("the-session", "another-session"):
            reservation = hub.reserve(7)
            assert reservation is not None and hub.registry.start(reservation)
            sub = Subscription(Audiences(7, False, frozenset(), session, "old-hash"), Sequence(1), reservation)
            hub.registry.add(7, sub)
            subs.append(sub)

        async def run(fn, *args):
            calls.append(fn.__name__)
            if fn is feed.fetch:
                row = feed.Row(3, 3, 7, "user", None, '{"id": 3}')
                return feed.Fetched(Sequence(3), Sequence(2), [row], [(7, 1, check), (7, 2, read)])
            assert fn is feed.signed_out
            return {"the-session", "another-session"}, set()

        monkeypatch.setattr(db, "run", run)
        await hub._fetch()
        return subs[0], subs[1]

    mine, other = asyncio.run(scenario())
    assert mine.closed_reason == "signed out" and not mine.pending
    if kept == "password":  # every login of the user is checked, before the row
        assert calls == ["fetch", "signed_out"]
        assert other.closed_reason == "signed out" and not other.pending
    else:  # that login ends at once; the others get the row and the read event
        assert calls == ["fetch"]
        assert other.closed_reason is None
        reads = [item for item in other.pending if isinstance(item, Reads)]
        assert [payload for r in reads for _, payload in r.events] == [read]


@pytest.mark.django_db(transaction=True)
def test_a_password_change_and_a_logout_stand_when_their_check_cannot_be_kept(monkeypatch):
    """The kept check fails (the database refuses the row): the change is made, logged, and told through the layer."""
    from notifications import signout
    from notifications.models import ReadEvent

    told: list[tuple[str, Any]] = []
    monkeypatch.setattr(delivery, "check_users", lambda ids: told.append(("check", sorted(ids))))
    monkeypatch.setattr(delivery, "end_login", lambda uid, key: told.append(("end", uid)))
    alice = get_user_model().objects.create_user("alice", password="pw")
    cookies = session_cookies(alice)
    logged: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    signout.logger.addHandler(handler)

    table = ReadEvent._meta.db_table

    def refused(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if sql.startswith("INSERT") and table in sql:
            raise DatabaseError("the database refused the row")
        return execute(sql, params, many, context)

    from django.db import connection

    try:
        with connection.execute_wrapper(refused):
            log_out(cookies)
            change_password(alice)
    finally:
        signout.logger.removeHandler(handler)
    alice.refresh_from_db()
    assert alice.check_password("a new password")
    assert not Session.objects.filter(session_key=cookies[settings.SESSION_COOKIE_NAME]).exists()
    assert told == [("end", alice.pk), ("check", [alice.pk])]
    assert logged == [signout.NOT_KEPT] * 2


@pytest.mark.django_db(transaction=True)
def test_a_logout_in_a_transaction_goes_on_when_the_database_refuses_its_check(monkeypatch):
    """
    A real database error (the table is not there), inside the request's
    transaction (ATOMIC_REQUESTS): on PostgreSQL an error aborts the whole
    transaction unless it happened in a savepoint, and the logout's session
    flush would fail after it.
    """
    from django.db import transaction

    from notifications.models import ReadEvent

    alice = get_user_model().objects.create_user("alice", password="pw")
    cookies = session_cookies(alice)
    monkeypatch.setattr(ReadEvent._meta, "db_table", "notifications_not_a_table")
    with transaction.atomic():
        log_out(cookies)
    assert not Session.objects.filter(session_key=cookies[settings.SESSION_COOKIE_NAME]).exists()


@pytest.mark.django_db(transaction=True)
def test_what_sends_a_login_check(monkeypatch):
    from django.db import transaction

    from notifications import delivery

    checked: list[list[Any]] = []
    monkeypatch.setattr(delivery, "check_users", lambda ids: checked.append(sorted(ids)))
    alice = get_user_model().objects.create_user("alice", password="pw")
    editors = Group.objects.create(name="editors")
    checked.clear()

    alice.last_login = None
    alice.save()  # (a login's last_login update, a profile edit): nothing
    assert checked == []
    with transaction.atomic():
        alice.set_password("another")
        alice.save()
        assert checked == []  # not before the commit
    assert checked == [[alice.pk]]
    alice.groups.add(editors)
    editors.user_set.remove(alice)
    assert checked == [[alice.pk], [alice.pk], [alice.pk]]


@pytest.fixture(params=["in-memory", "redis"])
def any_layer(request: Any, settings: Any) -> Iterator[str]:
    """Each kind of channel layer (Redis: a private server of this test's)."""
    if request.param == "in-memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
        yield request.param
        return
    redis = PrivateRedis().start()
    try:
        settings.CHANNEL_LAYERS = redis_layer(redis.url)
        yield request.param
    finally:
        redis.stop()


CHECKS = {
    "password": lambda: delivery.check_users([7]),  # set_password's on_commit
    "logout": lambda: delivery.end_login(7, "the-session"),
    "logout-signed-cookie": lambda: delivery.end_login(7, None),
}


@pytest.mark.parametrize("change", CHECKS)
def test_in_the_servers_process_a_login_check_reaches_the_hub_before_what_follows_it(any_layer, change):
    """
    A password change or a logout in a view of the server sends its check
    from the view's thread; the notification committed next is found by a
    database read whose result the loop takes later from another thread. The
    loop takes such hand-overs in order, so the check must reach the hub at
    its own hand-over, not later through the layer (Redis: from another
    thread, over the network), or that notification could go out to the
    ended login first. (This hub does not even listen to the layer here.)
    """
    from asgiref.sync import sync_to_async

    from notifications.hub import get_hub

    async def scenario() -> list[dict[str, Any]]:
        hub = get_hub()
        hub.registry.by_user[7] = {object()}  # user 7 has a stream here
        got: list[dict[str, Any]] = []
        hub.on_message = got.append  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        at_the_next_hand_over: asyncio.Future[list[dict[str, Any]]] = loop.create_future()

        def view() -> None:
            CHECKS[change]()
            # Handed over after it: the read that finds the next notification.
            loop.call_soon_threadsafe(lambda: at_the_next_hand_over.set_result(list(got)))

        await sync_to_async(view)()
        return await at_the_next_hand_over

    received = asyncio.run(scenario())
    assert [m["type"] for m in received] == ["notifications.check"]
    assert received[0]["user"] == "7"
    assert received[0].get("session") == ("the-session" if change == "logout" else None)
    assert delivery.flush(5)  # and the layer took it for the other processes


# -- a stream let in just before a change -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_replay_after_a_login_change_checks_the_logins_it_may_have_let_in_too_early():
    """
    Each stream was let in before the change; the replay runs after it. The
    replay's batch checks again the logins of users with a kept check: the
    session with the old password hash is out, the one kept by
    ``update_session_auth_hash`` and another user's are not.
    """
    User = get_user_model()
    alice, bob = User.objects.create_user("alice", password="pw"), User.objects.create_user("bob", password="pw")
    elsewhere, kept, bobs = logged_in(alice), logged_in(alice), logged_in(bob)
    stale, theirs = opened(alice, elsewhere), opened(bob, bobs)
    cursor = feed.cursor_now()
    assert [r.signed_out for r in feed.replay_many([(stale, cursor, 10), (theirs, cursor, 10)])] == [False, False]
    change_password(alice)
    alice.refresh_from_db()
    current = opened(alice, kept)  # (its session took the new hash, as update_session_auth_hash does)
    store = SessionStore(session_key=kept)
    store[HASH_SESSION_KEY] = alice.get_session_auth_hash()
    store.save()
    after = api.notify(alice, "right after the change")[0]
    results = feed.replay_many([(stale, cursor, 10), (current, cursor, 10), (theirs, cursor, 10)])
    assert [r.signed_out for r in results] == [True, False, False]
    assert after.pk in [nid for nid, _ in results[1].rows]


@pytest.mark.django_db(transaction=True)
def test_a_stream_let_in_before_a_password_change_and_replayed_after_it_sends_nothing():
    """
    The stream's login was accepted, then the password changed and a row
    was committed, then the stream subscribed and replayed (the hub has
    no other stream of alice: it never reads her check): it ends without a
    frame, and the row committed after the change never reaches it.
    """
    from notifications.hub import get_hub
    from notifications.stream import event_stream

    alice = get_user_model().objects.create_user("alice", password="pw")
    key = logged_in(alice)
    who = opened(alice, key)  # let in
    cursor = feed.cursor_now()
    change_password(alice)
    api.notify(alice, "right after the change")

    async def scenario() -> list[bytes]:
        hub = get_hub()
        reservation = hub.reserve(alice.pk)
        assert reservation is not None
        frames = [chunk async for chunk in event_stream(hub, who, reservation, cursor, reset=False)]
        hub._stop()
        return frames

    assert asyncio.run(scenario()) == []
