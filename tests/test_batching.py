"""
Streams that open together are authenticated together and replayed together.

``auth.stream_audiences`` must give, request by request, what the stream got
before batching: Django's own ``get_user(request)``, then None unless the user
is logged in and active, else ``Audiences.of(user, request.session.session_key)``.
That holds on the batched path (database sessions, ``ModelBackend``'s
``get_user``) and on the one-by-one path (other session engines, backends with
a ``get_user`` of their own, sessions Django flushes or cycles).

``feed.replay_many`` must give, stream by stream, what ``feed.replay`` gives.
It is checked on random feeds, cursors, limits and batches drawn from a seeded
``random.Random``, so a failure names its seed and replays identically.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, SESSION_KEY, get_user, get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import Group
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connection, connections
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications import api, auth, db, feed
from notifications.feed import Replay
from notifications.finality import Cursor, Position, Sequence
from notifications.finality import Snapshot as PgSnapshot
from notifications.models import Audiences, Notification, ReadEvent

from .conftest import rolled_back

MODEL = "django.contrib.auth.backends.ModelBackend"
ALLOW_ALL = "django.contrib.auth.backends.AllowAllUsersModelBackend"  # ModelBackend's get_user
NOT_CONFIGURED = "django.contrib.auth.backends.RemoteUserBackend"  # never in the settings here
PICKY = f"{__name__}.PickyBackend"
STAFF_ONLY = f"{__name__}.StaffOnlyBackend"

# The reference: replay() as it is now, even while a test swaps feed.replay for a spy.
reference_replay = feed.replay

Snapshot = tuple[int, bool, frozenset[int], str | None]


class PickyBackend(ModelBackend):
    """A ``get_user`` of its own: it refuses users whose name starts with "blocked"."""

    calls = 0

    def get_user(self, user_id: Any) -> Any:
        PickyBackend.calls += 1
        user = super().get_user(user_id)
        if user is not None and user.get_username().startswith("blocked"):
            return None
        return user


class StaffOnlyBackend(ModelBackend):
    """ModelBackend's get_user, which asks this user_can_authenticate: staff only."""

    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user) and user.is_staff)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# -- authentication helpers ------------------------------------------------------------


def engine() -> Any:
    return import_module(settings.SESSION_ENGINE)


def make_user(name: str, *, staff: bool = False, groups: tuple[Group, ...] = ()) -> Any:
    user = get_user_model().objects.create_user(name, password="pw", is_staff=staff)
    user.groups.set(groups)
    return user


def log_in(user: Any, backend: str = MODEL) -> str:
    """Log ``user`` in as a browser would; return its session cookie."""
    client = Client()
    client.force_login(user, backend=backend)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def stream_request(key: str | None, *, with_session: bool = False) -> HttpRequest:
    """A stream request carrying ``key`` as its session cookie, with ``request.session``
    as SessionMiddleware leaves it when ``with_session``, or no ``session`` at all."""
    request = RequestFactory().get("/notifications/stream/")
    if key is not None:
        request.COOKIES[settings.SESSION_COOKIE_NAME] = key
    if with_session:
        request.session = engine().SessionStore(key)
    return request


def snap(who: Audiences | None) -> Snapshot | None:
    """Audiences has no __eq__: compare what it holds."""
    if who is None:
        return None
    return (who.user_id, who.is_staff, frozenset(who.group_ids), who.session_key)


def audiences_of(user: Any, key: str) -> Snapshot:
    """What a stream of ``user`` on session ``key`` may see, spelled out."""
    groups = frozenset(Group.objects.filter(user=user).values_list("id", flat=True))
    return (user.pk, user.is_staff, groups, key)


def django_says(key: str | None) -> Snapshot | None:
    """What the stream got before batching: get_user(), then logged in and active."""
    request = stream_request(key, with_session=True)
    user = get_user(request)
    if not user.is_authenticated or not user.is_active:
        return None
    return snap(Audiences.of(user, request.session.session_key))


def django_says_undone(key: str | None) -> Snapshot | None:
    """``django_says()``, with what it writes (a flush, a cycled key) rolled back.
    Only for database-backed sessions."""
    result: Snapshot | None = None
    with rolled_back():
        result = django_says(key)
    return result


def session_exists(key: str) -> bool:
    return bool(engine().SessionStore().exists(key))


@dataclass
class Case:
    key: str | None
    expected: Snapshot | None
    flushed: bool = False  # get_user() flushes this session: it must be gone afterwards


def build_cases(prefix: str, *, db_sessions: bool = True) -> dict[str, Case]:
    """
    One session (or cookie) per way a stream request can turn out, with the
    answer spelled out. Needs AUTHENTICATION_BACKENDS = [MODEL, ALLOW_ALL].
    ``db_sessions``: also the cases that edit the django_session table.
    """
    g1 = Group.objects.create(name=f"{prefix}-one")
    g2 = Group.objects.create(name=f"{prefix}-two")
    cases: dict[str, Case] = {}

    def valid(name: str, backend: str = MODEL, **kwargs: Any) -> None:
        user = make_user(f"{prefix}-{name}", **kwargs)
        key = log_in(user, backend)
        cases[name] = Case(key, audiences_of(user, key))

    valid("plain")
    valid("staff_one_group", staff=True, groups=(g1,))
    valid("two_groups", groups=(g1, g2))
    valid("allow_all_backend", backend=ALLOW_ALL, staff=True, groups=(g2,))

    cases["no_cookie"] = Case(None, None)
    cases["empty_cookie"] = Case("", None)
    cases["short_cookie"] = Case("abc", None)
    cases["long_cookie"] = Case("a" * 41, None)
    cases["unknown_session"] = Case("x" * 32, None)

    anonymous = engine().SessionStore()
    anonymous["cart"] = [1, 2]
    anonymous.save()
    cases["session_without_login"] = Case(anonymous.session_key, None)

    user = make_user(f"{prefix}-retired-backend", groups=(g1,))
    cases["backend_not_configured"] = Case(log_in(user, NOT_CONFIGURED), None)

    user = make_user(f"{prefix}-deleted", groups=(g1,))
    cases["user_deleted"] = Case(log_in(user), None)
    user.delete()

    for name, backend in (("inactive", MODEL), ("inactive_allow_all_backend", ALLOW_ALL)):
        user = make_user(f"{prefix}-{name}", staff=True, groups=(g1,))
        cases[name] = Case(log_in(user, backend), None)
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    user = make_user(f"{prefix}-password-changed", groups=(g2,))
    cases["password_changed"] = Case(log_in(user), None, flushed=True)
    user.set_password("changed")
    user.save()

    user = make_user(f"{prefix}-no-hash", groups=(g2,))
    no_hash = engine().SessionStore()
    no_hash[SESSION_KEY] = str(user.pk)
    no_hash[BACKEND_SESSION_KEY] = MODEL
    no_hash.save()
    cases["session_without_hash"] = Case(no_hash.session_key, None, flushed=True)

    if db_sessions:
        user = make_user(f"{prefix}-expired", groups=(g1,))
        key = log_in(user)
        Session.objects.filter(session_key=key).update(
            expire_date=timezone.now() - timedelta(seconds=1)
        )
        cases["session_expired"] = Case(key, None)
    return cases


CASE_NAMES = [
    "plain", "staff_one_group", "two_groups", "allow_all_backend", "no_cookie",
    "empty_cookie", "short_cookie", "long_cookie", "unknown_session",
    "session_without_login", "backend_not_configured", "user_deleted", "inactive",
    "inactive_allow_all_backend", "password_changed", "session_without_hash",
    "session_expired",
]


@pytest.fixture
def backends(settings: Any) -> None:
    settings.AUTHENTICATION_BACKENDS = [MODEL, ALLOW_ALL]


# -- stream_audiences: one request ------------------------------------------------------


def test_the_cases_cover_every_name(db: Any, backends: None) -> None:
    assert sorted(build_cases("names")) == sorted(CASE_NAMES)


@pytest.mark.parametrize("with_session", [False, True], ids=["no-session-attr", "session-attr"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_one_request_gets_what_django_gives(
    db: Any, backends: None, name: str, with_session: bool
) -> None:
    case = build_cases("one")[name]
    assert django_says_undone(case.key) == case.expected  # the case says what Django says

    [who] = auth.stream_audiences([stream_request(case.key, with_session=with_session)])

    assert snap(who) == case.expected
    if case.flushed:
        assert case.key is not None and not session_exists(case.key)
    elif case.expected is not None:
        assert case.key is not None and session_exists(case.key)


def through_middleware(key: str | None) -> HttpRequest:
    """A stream request as SessionMiddleware and AuthenticationMiddleware leave it."""
    request = stream_request(key)
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    AuthenticationMiddleware(lambda r: HttpResponse()).process_request(request)
    return request


@pytest.mark.parametrize("session_read", [False, True], ids=["batched", "auser"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_behind_djangos_middleware_the_stream_gets_what_auser_gives(
    transactional_db: Any, backends: None, name: str, session_read: bool
) -> None:
    """
    ``stream_user`` asks ``request.auser()`` unless the batched path must give
    the same answer: nothing in the request has read the session yet.
    """
    case = build_cases("mw")[name]
    request = through_middleware(case.key)
    if session_read:  # a middleware looked at the session: only auser() knows now
        request.session.get("anything")

    who = asyncio.run(auth.stream_user(request))

    assert snap(who) == case.expected
    if not session_read and case.expected is not None:
        assert not request.session.accessed  # answered on the batched path


def in_another_thread(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a fresh thread, as the stream handler's middleware thread
    runs it, closing the connections it opened there as that thread does."""

    def run() -> Any:
        try:
            return fn(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result(timeout=20)


@pytest.mark.parametrize("way", ["prefetched", "in-thread", "auser"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_in_the_middleware_thread_the_stream_gets_what_auser_gives(
    transactional_db: Any, backends: None, name: str, way: str
) -> None:
    """
    ``stream_user_in_thread`` (the stream handler's thread, after the
    project's middleware) gives what ``auser()`` gives: from the prefetch
    made before the middleware ran, from a batch of its own, or from the
    user once the session was read. It never waits on the event loop: the
    loop given here is not even running.
    """
    case = build_cases("th")[name]
    request = stream_request(case.key)
    loop = asyncio.new_event_loop()
    try:
        prefetched: Any = auth.UNDECIDED
        if way == "prefetched":
            prefetched = asyncio.run(auth.prefetch(request))
        SessionMiddleware(lambda r: HttpResponse()).process_request(request)
        AuthenticationMiddleware(lambda r: HttpResponse()).process_request(request)
        if way == "auser":
            request.session.get("anything")

        who = in_another_thread(auth.stream_user_in_thread, request, loop, prefetched)
    finally:
        loop.close()

    assert snap(who) == case.expected
    if case.flushed:
        assert case.key is not None and not session_exists(case.key)
    if way == "prefetched" and not case.flushed:
        assert not isinstance(prefetched, auth.Undecided), "the prefetch settled nothing"


def test_a_prefetch_never_changes_a_session(transactional_db: Any, backends: None) -> None:
    """What Django would flush or cycle is left undecided for the middleware's thread."""
    cases = build_cases("pf")
    for name in ("password_changed", "session_without_hash"):
        key = cases[name].key
        assert key is not None
        assert asyncio.run(auth.prefetch(stream_request(key))) is auth.UNDECIDED
        assert session_exists(key), name


def test_a_prefetch_for_a_middleware_that_decides_otherwise_is_not_used(
    transactional_db: Any,
) -> None:
    alice, bob = make_user("pf-alice"), make_user("pf-bob", staff=True)
    request = stream_request(log_in(alice))
    prefetched = asyncio.run(auth.prefetch(request))
    assert snap(prefetched) is not None and snap(prefetched)[0] == alice.pk  # type: ignore[index]
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    request.user = bob  # type: ignore[attr-defined]  # a single-sign-on middleware, say

    loop = asyncio.new_event_loop()
    try:
        who = in_another_thread(auth.stream_user_in_thread, request, loop, prefetched)
    finally:
        loop.close()
    assert snap(who) == (bob.pk, True, frozenset(), None)


def test_a_prefetch_with_the_database_down_fails_only_the_stream(transactional_db: Any) -> None:
    request = stream_request(log_in(make_user("pf-down")))
    down = DatabaseError("down")
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    AuthenticationMiddleware(lambda r: HttpResponse()).process_request(request)
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(DatabaseError):
            in_another_thread(auth.stream_user_in_thread, request, loop, down)
    finally:
        loop.close()


# -- db.Batched called from threads ------------------------------------------------------


class Recorder:
    """A batch function: doubles each number, fails on "bad", records batch sizes."""

    def __init__(self, first_batch_delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.first_batch_delay = first_batch_delay
        self.threads: set[str] = set()

    def __call__(self, args: list[Any]) -> list[Any]:
        self.threads.add(threading.current_thread().name)
        if not self.sizes and self.first_batch_delay:
            time.sleep(self.first_batch_delay)
        self.sizes.append(len(args))
        if "boom" in args:
            raise RuntimeError("the whole batch failed")
        return [ValueError(arg) if arg == "bad" else arg * 2 for arg in args]


def call_together(batched: db.Batched, args: list[Any], loop: Any) -> list[Any]:
    """Call ``batched`` from one thread per argument, all at once; results or exceptions."""
    start = threading.Barrier(len(args))

    def one(arg: Any) -> Any:
        start.wait()
        try:
            return batched.call_from_thread(arg, loop)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(len(args)) as pool:
        return list(pool.map(one, args, timeout=20))


def test_calls_from_threads_are_coalesced_on_a_lane() -> None:
    fn = Recorder(first_batch_delay=0.2)
    loop = asyncio.new_event_loop()
    try:
        results = call_together(db.Batched(fn), list(range(40)), loop)
    finally:
        loop.close()
    assert results == [i * 2 for i in range(40)]
    assert sum(fn.sizes) == 40
    assert len(fn.sizes) <= 3, fn.sizes  # the first call, then the rest waiting behind it
    assert all(name.startswith("notifications-db-") for name in fn.threads), fn.threads


def test_a_failed_call_fails_alone_and_a_failed_batch_leaves_the_next_working() -> None:
    fn = Recorder()
    batched = db.Batched(fn)
    loop = asyncio.new_event_loop()
    try:
        results = call_together(batched, [1, "bad", 3], loop)
        assert results[0] == 2 and results[2] == 6
        assert isinstance(results[1], ValueError)
        failed = call_together(batched, ["boom", 5], loop)
        assert all(isinstance(r, RuntimeError) for r in failed) or (
            # the two calls went in separate batches: only boom's failed
            isinstance(failed[0], RuntimeError) and failed[1] == 10
        )
        assert batched.call_from_thread(7, loop) == 14
    finally:
        loop.close()


def test_the_user_a_middleware_decided_is_the_streams_user(transactional_db: Any) -> None:
    alice, bob = make_user("alice"), make_user("bob", staff=True)
    request = through_middleware(log_in(alice))

    async def auser() -> Any:
        return bob  # say, a single-sign-on header

    request.auser = auser  # type: ignore[attr-defined]
    who = asyncio.run(auth.stream_user(request))
    # Not the session's login: no session to end the stream with.
    assert snap(who) == (bob.pk, True, frozenset(), None)


def test_an_inactive_user_from_a_middleware_may_not_stream(transactional_db: Any) -> None:
    carol = make_user("carol")
    carol.is_active = False
    carol.save()
    request = through_middleware(None)

    async def auser() -> Any:
        return carol

    request.auser = auser  # type: ignore[attr-defined]
    assert asyncio.run(auth.stream_user(request)) is None


def test_no_requests(db: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        assert auth.stream_audiences([]) == []


@pytest.mark.parametrize("with_session", [False, True], ids=["no-session-attr", "session-attr"])
def test_a_hash_from_a_fallback_secret_key_still_authenticates(
    db: Any, with_session: bool
) -> None:
    group = Group.objects.create(name="rotated")
    user = make_user("rotated", staff=True, groups=(group,))
    old_key = log_in(user)  # its session hash is made with the current SECRET_KEY
    secret = settings.SECRET_KEY
    with override_settings(SECRET_KEY=secret + "-rotated", SECRET_KEY_FALLBACKS=[secret]):
        [who] = auth.stream_audiences([stream_request(old_key, with_session=with_session)])

        # Django cycles the session key: the stream belongs to the new one.
        assert who is not None
        assert snap(who) == audiences_of(user, who.session_key or "")
        assert who.session_key not in (None, old_key)
        assert not session_exists(old_key)
        assert who.session_key is not None and session_exists(who.session_key)
        assert engine().SessionStore(who.session_key)[SESSION_KEY] == str(user.pk)


def test_without_the_fallback_the_rotated_session_is_anonymous(db: Any) -> None:
    user = make_user("rotated-away")
    key = log_in(user)
    with override_settings(SECRET_KEY=settings.SECRET_KEY + "-rotated", SECRET_KEY_FALLBACKS=[]):
        assert auth.stream_audiences([stream_request(key)]) == [None]
        assert django_says_undone(key) is None


# -- stream_audiences: many requests -----------------------------------------------------


def test_a_mixed_batch_gets_what_django_gives_each_request(
    db: Any, backends: None, django_assert_max_num_queries: Any
) -> None:
    rng = random.Random(2024)
    secret = settings.SECRET_KEY
    rotated_group = Group.objects.create(name="mixed-rotated")
    rotated = make_user("mixed-rotated", groups=(rotated_group,))
    rotated_key = log_in(rotated)  # before the rotation: verifies on the fallback key only

    with override_settings(SECRET_KEY=secret + "-rotated", SECRET_KEY_FALLBACKS=[secret]):
        cases = build_cases("mixed")
        groups = list(Group.objects.all())
        for i in range(10):
            user = make_user(
                f"mixed-more-{i}",
                staff=rng.random() < 0.5,
                groups=tuple(rng.sample(groups, rng.choice([0, 1, 2]))),
            )
            key = log_in(user)
            cases[f"more_{i}"] = Case(key, audiences_of(user, key))
        # Two requests sharing one cookie, twice (a good one and a flushed one).
        names = [*cases, "two_groups", "password_changed", "rotated"]
        rng.shuffle(names)
        assert len(names) == 30

        keys = [rotated_key if name == "rotated" else cases[name].key for name in names]
        for name, cookie in zip(names, keys):
            if name != "rotated":
                assert django_says_undone(cookie) == cases[name].expected, name
        requests = [stream_request(key, with_session=rng.random() < 0.5) for key in keys]

        results = auth.stream_audiences(requests)

        assert len(results) == len(requests)
        for name, who in zip(names, results):
            if name == "rotated":
                assert who is not None and who.session_key not in (None, rotated_key)
                assert snap(who) == audiences_of(rotated, who.session_key or "")
            else:
                assert snap(who) == cases[name].expected, name
        for name, case in cases.items():
            if case.flushed:
                assert case.key is not None and not session_exists(case.key), name
            elif case.expected is not None:
                assert case.key is not None and session_exists(case.key), name
        assert not session_exists(rotated_key)

        # The same batch again, now that the flushes and the key cycle are done:
        # the good sessions still go together, in a few queries.
        again = [k for name, k in zip(names, keys) if name != "rotated"]
        with django_assert_max_num_queries(3):
            results = auth.stream_audiences([stream_request(k) for k in again])
        expected = [cases[name].expected for name in names if name != "rotated"]
        assert [snap(who) for who in results] == expected


@pytest.mark.parametrize("size", [5, 50])
def test_a_batch_takes_a_few_queries_whatever_its_size(
    db: Any, size: int, django_assert_max_num_queries: Any
) -> None:
    rng = random.Random(size)
    groups = [Group.objects.create(name=f"many-{i}") for i in range(3)]
    expected = []
    for i in range(size):
        user = make_user(
            f"many-{i}", staff=i % 3 == 0, groups=tuple(rng.sample(groups, i % 3))
        )
        key = log_in(user)
        expected.append(audiences_of(user, key))
    requests = [stream_request(who[3]) for who in expected]

    # One query for the sessions, one for the users, one for their groups.
    with django_assert_max_num_queries(3):
        results = auth.stream_audiences(requests)

    assert [snap(who) for who in results] == expected


def test_the_query_count_does_not_grow_with_the_batch(db: Any) -> None:
    group = Group.objects.create(name="growth")
    keys = [log_in(make_user(f"growth-{i}", groups=(group,) * (i % 2))) for i in range(50)]
    counts = []
    for size in (2, 5, 50):
        with CaptureQueriesContext(connection) as queries:
            results = auth.stream_audiences([stream_request(key) for key in keys[:size]])
        assert all(who is not None for who in results)
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2] <= 3


def test_a_backend_with_its_own_get_user_is_asked_one_by_one(db: Any) -> None:
    group = Group.objects.create(name="picky")
    welcome = make_user("welcome", staff=True, groups=(group,))
    blocked = make_user("blocked-one", groups=(group,))
    moved = make_user("moved", groups=(group,))
    plain = make_user("picky-plain")
    with override_settings(AUTHENTICATION_BACKENDS=[PICKY, MODEL]):
        welcome_key = log_in(welcome, PICKY)
        blocked_key = log_in(blocked, PICKY)
        blocked_by_model_key = log_in(blocked, MODEL)  # ModelBackend lets them in
        stale_key = log_in(moved, PICKY)
        moved.set_password("changed")  # get_user() will flush that session
        moved.save()
        plain_key = log_in(plain, MODEL)
        keys = [welcome_key, blocked_key, blocked_by_model_key, stale_key, plain_key, welcome_key]
        expected = [
            audiences_of(welcome, welcome_key),
            None,
            audiences_of(blocked, blocked_by_model_key),
            None,
            audiences_of(plain, plain_key),
            audiences_of(welcome, welcome_key),
        ]
        for key, answer in zip(keys, expected):
            assert django_says_undone(key) == answer

        PickyBackend.calls = 0
        results = auth.stream_audiences([stream_request(key) for key in keys])

        assert [snap(who) for who in results] == expected
        assert PickyBackend.calls >= 4  # its get_user decided each picky request
        assert not session_exists(stale_key)
        assert session_exists(welcome_key) and session_exists(blocked_key)


def test_a_backend_with_its_own_user_can_authenticate(
    db: Any, django_assert_max_num_queries: Any
) -> None:
    staff = make_user("only-staff", staff=True)
    member = make_user("only-member")
    with override_settings(AUTHENTICATION_BACKENDS=[STAFF_ONLY, MODEL]):
        keys = [log_in(staff, STAFF_ONLY), log_in(member, STAFF_ONLY), log_in(member, MODEL)]
        expected = [audiences_of(staff, keys[0]), None, audiences_of(member, keys[2])]
        assert [django_says_undone(key) for key in keys] == expected

        with django_assert_max_num_queries(3):  # still the batched path
            results = auth.stream_audiences([stream_request(key) for key in keys])

        assert [snap(who) for who in results] == expected
        assert all(session_exists(key) for key in keys)


@pytest.mark.parametrize(
    "session_engine",
    [
        "django.contrib.sessions.backends.signed_cookies",
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.backends.cached_db",
    ],
)
@pytest.mark.parametrize("with_session", [False, True], ids=["no-session-attr", "session-attr"])
def test_other_session_engines(
    db: Any, backends: None, settings: Any, session_engine: str, with_session: bool
) -> None:
    settings.SESSION_ENGINE = session_engine
    cases = build_cases(f"engine-{session_engine.rsplit('.', 1)[1]}", db_sessions=False)
    names = sorted(cases) + ["plain"]
    for name in names:
        if not cases[name].flushed:  # a flush in the cache is not rolled back
            assert django_says_undone(cases[name].key) == cases[name].expected, name

    results = auth.stream_audiences(
        [stream_request(cases[name].key, with_session=with_session) for name in names]
    )

    assert [snap(who) for who in results] == [cases[name].expected for name in names]
    if not session_engine.endswith("signed_cookies"):  # nothing to flush on the server
        for name, case in cases.items():
            if case.flushed:
                assert case.key is not None and not session_exists(case.key), name


def test_a_cookie_the_database_cannot_compare_fails_only_its_own_request(db: Any) -> None:
    user = make_user("beside-a-bad-cookie")
    key = log_in(user)
    bad = "\x00" + "a" * 31  # django.http.cookie.parse_cookie('sessionid="\\000aaa..."')

    results = auth.stream_audiences([stream_request(key), stream_request(bad)])

    assert snap(results[0]) == audiences_of(user, key)
    assert results[1] is None or isinstance(results[1], Exception)


# -- replay_many --------------------------------------------------------------------------

LIMITS = (1, 2, 5, 500)
Request = tuple[Audiences, Cursor, int]


@dataclass
class World:
    audiences: list[Audiences]  # real users, then made-up ones (odd flags, no such user)
    ids: list[int]  # every notification id, deleted and expired ones included
    positions: list[Position]  # where the database was, before and after each write


def build_world(rng: random.Random) -> World:
    """Users (staff or not, in 0 to 2 groups), personal rows, broadcasts to
    everyone, staff and groups (some expired, one deleted), read, unread and
    deleted or hidden states: all drawn from ``rng``."""
    groups = [Group.objects.create(name=f"feed-{i}") for i in range(3)]
    users = [
        make_user(
            f"feed-{i}",
            staff=rng.random() < 0.4,
            groups=tuple(rng.sample(groups[:2], rng.choice([0, 0, 1, 2]))),
        )
        for i in range(8)
    ]
    outsider = make_user("feed-outsider", groups=(groups[0],))  # never streams here
    everyone = [*users, outsider]
    now = timezone.now()
    positions = [feed.position_now()[0]]
    for i in range(90):
        fields: dict[str, Any] = {
            "description": rng.choice(["", "<b>&amp;</b>", "plain", "\u2028 é"]),
            "level": rng.choice(["success", "info", "warning", "error"]),
            "data": rng.choice([None, {"n": i}, {"nested": {"list": [i, "x"]}}]),
            "actor": rng.choice([None, None, users[0]]),
        }
        kind = rng.random()
        if kind < 0.45:
            api.notify(rng.choice(everyone), f"personal {i}", **fields)
        elif kind < 0.55:
            api.notify(rng.sample(everyone, rng.randint(2, 5)), f"several {i}", **fields)
        elif kind < 0.6:
            api.notify(rng.choice(groups[:2]), f"group fan-out {i}", **fields)
        else:
            audience: Any = rng.choice(["all", "all", "staff", *groups])
            expires = rng.choice(
                [None, None, now - timedelta(hours=1), now + timedelta(days=1)]
            )
            api.broadcast(f"broadcast {i}", audience=audience, expires_at=expires, **fields)
        positions.append(feed.position_now()[0])
    broadcast_ids = list(Notification.objects.broadcasts().values_list("id", flat=True))
    Notification.objects.filter(id=rng.choice(broadcast_ids)).update(deleted=True)  # by an admin
    for user in everyone:
        visible = sorted(api.visible(user).values_list("id", flat=True))
        read = rng.sample(visible, len(visible) // 3)
        api.mark_read(user, read)
        api.delete(user, rng.sample(visible, len(visible) // 6))
        api.mark_unread(user, rng.sample(read, len(read) // 4))
    who = [Audiences.of(user) for user in users]
    ghost = max(u.pk for u in everyone) + 1000
    who += [
        Audiences(users[0].pk, not who[0].is_staff, frozenset({groups[2].pk})),
        Audiences(outsider.pk, True, frozenset({groups[0].pk, groups[1].pk})),
        Audiences(ghost, True, frozenset({groups[1].pk, 10**9})),
        Audiences(ghost + 1, False, frozenset()),
    ]
    ids = sorted(Notification.objects.values_list("id", flat=True))
    forget_read_events()
    return World(who, ids, positions)


def forget_read_events() -> None:
    """
    Here only the replayed rows are compared: read-state changes after a
    cursor have their own rules (a replay that misses rows and read changes
    resets; tests/test_read_replay.py), so the feeds keep their read state
    but not the events that changed it.
    """
    ReadEvent.objects.all().delete()


def future(position: Position) -> Position:
    """A position this database has not reached (a cursor from elsewhere)."""
    if isinstance(position, Sequence):
        return Sequence(position.last + 5)
    return PgSnapshot(position.xmax + 10**12, position.xmax + 10**12)  # xids are cluster-wide: far ahead


def random_cursor(rng: random.Random, world: World) -> Cursor:
    """
    A position the database went through, or one it has not reached; or, as in
    the middle of a batch, one position plus part of a later one.
    """
    positions = world.positions
    i = rng.randrange(len(positions))
    done = positions[i]
    if rng.random() < 0.1:
        return Cursor(future(positions[-1]))
    if rng.random() < 0.3:
        window = positions[rng.randrange(i, len(positions))]
        through = rng.choice([0, *world.ids, world.ids[-1] + 3])
        return Cursor(done).within(window, through) if window != done else Cursor(done)
    return Cursor(done)


def random_request(rng: random.Random, world: World) -> Request:
    return (rng.choice(world.audiences), random_cursor(rng, world), rng.choice(LIMITS))


def copy(request: Request) -> Request:
    return request  # cursors are immutable


def describe(batch: list[Request]) -> str:
    return "; ".join(
        f"user {who.user_id} staff={who.is_staff} groups={sorted(who.group_ids)} "
        f"cursor={cursor} limit={limit}"
        for who, cursor, limit in batch
    )


def assert_same_as_replay(batch: list[Request], note: str = "") -> list[Replay]:
    """replay_many(batch) == [replay(*r) for r in batch], and no cursor is changed."""
    expected = [reference_replay(*copy(request)) for request in batch]
    cursors = [str(cursor) for _, cursor, _ in batch]
    got = feed.replay_many(batch)
    assert len(got) == len(batch)
    for index, (mine, theirs) in enumerate(zip(got, expected)):
        # Positions differ when other transactions ran in between (xids are
        # cluster-wide on PostgreSQL); what each stream gets may not.
        assert (mine.rows, mine.overflow, mine.usable) == (
            theirs.rows,
            theirs.overflow,
            theirs.usable,
        ), f"{note} request {index} of: {describe(batch)}"
        assert mine.end.covers(theirs.end)  # replay_many ran after the reference
    assert [str(cursor) for _, cursor, _ in batch] == cursors
    return got


@pytest.fixture
def world(transactional_db: Any) -> World:
    return build_world(random.Random(0))


@pytest.fixture
def replay_calls(monkeypatch: Any) -> list[Request]:
    """Every call of feed.replay(), which replay_many() uses when it falls back."""
    calls: list[Request] = []

    def spy(who: Audiences, cursor: Cursor, limit: int, end: Position | None = None, **given: Any) -> Replay:
        # (``given``: what replay_many() read for the batch already, the read events)
        calls.append((who, cursor, limit))
        return reference_replay(who, cursor, limit, end)

    monkeypatch.setattr(feed, "replay", spy)
    return calls


@pytest.mark.parametrize("seed", range(4))
def test_replay_many_is_replay_for_each_stream(transactional_db: Any, seed: int) -> None:
    rng = random.Random(seed)
    world = build_world(rng)
    note = f"seed {seed}:"
    results: list[Replay] = []
    for _ in range(30):  # random batches: duplicated users are likely
        batch = [random_request(rng, world) for _ in range(rng.randint(2, 14))]
        results += assert_same_as_replay(batch, note)
    for who in world.audiences:  # a batch of one
        results += assert_same_as_replay([(who, random_cursor(rng, world), 2)], note)
    # One user, many cursors and limits; the same request twice.
    who = rng.choice(world.audiences[:8])
    batch = [(who, random_cursor(rng, world), limit) for limit in LIMITS * 3]
    results += assert_same_as_replay([*batch, batch[0]], note)
    # Everyone from the start, with room for all, then with room for one.
    for limit in (500, 1):
        start = Cursor(world.positions[0])
        results += assert_same_as_replay([(w, start, limit) for w in world.audiences], note)

    # The random feeds do reach the cases that matter.
    rendered = [json.loads(data) for replay in results for _, data in replay.rows]
    assert any(replay.overflow for replay in results)
    assert any(replay.rows and not replay.overflow for replay in results)
    assert any(not replay.rows for replay in results)
    assert any(not replay.usable for replay in results)
    assert any(row["broadcast"] and not row["unread"] for row in rendered)  # a read receipt
    assert any(row["broadcast"] and row["unread"] for row in rendered)
    assert any(not row["broadcast"] and not row["unread"] for row in rendered)


def test_a_hidden_broadcast_a_read_one_and_a_deleted_row_are_replayed_alike(transactional_db: Any) -> None:
    start = Cursor(feed.position_now()[0])
    group = Group.objects.create(name="plain-feed")
    staff = make_user("plain-staff", staff=True, groups=(group,))
    other = make_user("plain-other")
    mine = api.notify(staff, "mine")[0]
    theirs = api.notify(other, "theirs")[0]
    everyone = api.broadcast("everyone")
    after_everyone = Cursor(feed.position_now()[0])
    for_staff = api.broadcast("staff", audience="staff")
    for_group = api.broadcast("group", audience=group)
    api.broadcast("expired", expires_at=timezone.now() - timedelta(minutes=1))
    gone = api.notify(staff, "gone")[0]
    api.mark_read(staff, [everyone.pk, mine.pk])
    api.delete(staff, [for_group.pk, gone.pk])
    forget_read_events()
    batch = [
        (Audiences.of(staff), start, 500),
        (Audiences.of(other), start, 500),
        (Audiences.of(staff), after_everyone, 500),
    ]

    results = assert_same_as_replay(batch)

    def seen(replay: Replay) -> list[tuple[int, bool]]:
        return [(nid, json.loads(data)["unread"]) for nid, data in replay.rows]

    assert seen(results[0]) == [(mine.pk, False), (everyone.pk, False), (for_staff.pk, True)]
    assert seen(results[1]) == [(theirs.pk, True), (everyone.pk, True)]
    assert seen(results[2]) == [(for_staff.pk, True)]


def test_a_batch_of_one_is_replay(world: World) -> None:
    rng = random.Random(1)
    for _ in range(20):
        assert_same_as_replay([random_request(rng, world)])


def test_past_batch_rows_each_stream_is_replayed_on_its_own(
    world: World, monkeypatch: Any, replay_calls: list[Request]
) -> None:
    monkeypatch.setattr(feed, "BATCH_ROWS", 3)
    rng = random.Random(3)
    start = Cursor(world.positions[0])
    batch = [(rng.choice(world.audiences), start, rng.choice(LIMITS)) for _ in range(6)]
    batch.append(batch[0])

    assert_same_as_replay(batch)

    assert len(replay_calls) == len(batch)


def test_any_batch_rows_gives_the_same_replays(
    world: World, monkeypatch: Any, replay_calls: list[Request]
) -> None:
    """Around whatever candidate count the threshold is checked against, no row is lost."""
    rng = random.Random(4)
    batch = [(rng.choice(world.audiences), random_cursor(rng, world), 500) for _ in range(4)]
    batch.append((world.audiences[0], Cursor(world.positions[0]), 500))
    fell_back = []
    for batch_rows in range(0, len(world.ids) + 2):
        monkeypatch.setattr(feed, "BATCH_ROWS", batch_rows)
        replay_calls.clear()
        assert_same_as_replay(batch, f"BATCH_ROWS={batch_rows}:")
        fell_back.append(bool(replay_calls))
    assert fell_back[0] and not fell_back[-1]  # both paths were taken


def test_a_batch_of_40_streams_takes_four_queries(
    world: World, django_assert_max_num_queries: Any, replay_calls: list[Request]
) -> None:
    """
    Where the database is, the rows after the earliest cursor, their receipts,
    and these users' read events.
    """
    rng = random.Random(40)
    batch = [random_request(rng, world) for _ in range(40)]
    expected = [reference_replay(*copy(request)) for request in batch]
    replay_calls.clear()

    with django_assert_max_num_queries(4):
        got = feed.replay_many(batch)

    assert [(r.rows, r.overflow, r.usable) for r in got] == [(r.rows, r.overflow, r.usable) for r in expected]
    assert replay_calls == []
    assert sum(len(replay.rows) for replay in got) > 40


def test_no_streams(db: Any) -> None:
    assert feed.replay_many([]) == []
