"""
Swapping django-notifications-hq for this app: a database written by hq 1.8.3
itself (in its own virtualenv, on Django 4.2), or by its community fork 1.12.3
(Django 5.2), is migrated by this app and every row is still there, through
the models, the JSON API and the stream. Runs on the suite's backend: SQLite,
or PostgreSQL when DATABASE_URL says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings

from .conftest import CSRF, Server
from .hq.legacy import (
    FLAVOURS,
    empty_database,
    execute,
    make_hq_database,
    read_rows,
    run_here,
    snapshot,
)
from .sse import Stream

pytestmark = pytest.mark.server


class Swapped:
    def __init__(self, flavour: str, url: str, before: list[dict[str, Any]], after: list[dict[str, Any]], server: Server):
        self.flavour = flavour
        self.url = url
        self.before = before
        self.after = after
        self.server = server
        self.by_id = {row["id"]: row for row in after}
        self.sessions: dict[str, dict[str, str]] = {}

    def login(self, username: str) -> dict[str, str]:
        if username not in self.sessions:
            _, key = self.server.script("session", username).split()
            self.sessions[username] = {settings.SESSION_COOKIE_NAME: key, "csrftoken": CSRF}
        return self.sessions[username]

    def api(self, username: str, path: str = "/notifications/api/?page_size=100") -> Any:
        response = httpx.get(self.server.url + path, cookies=self.login(username), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module", params=list(FLAVOURS))
def swapped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swapped]:
    tmp = tmp_path_factory.mktemp("hq")
    with empty_database(tmp) as url:
        before = make_hq_database(url, request.param)
        migrated = run_here(url, "manage.py", "migrate", "--noinput", check=False)
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        server = Server(env={"DATABASE_URL": url}).start()
        try:
            yield Swapped(request.param, url, before, read_rows(url), server)
        finally:
            server.stop()


def hq_rows(swapped: Swapped, **match: Any) -> list[dict[str, Any]]:
    return [r for r in swapped.before if all(r[k] == v for k, v in match.items())]


def test_every_hq_row_keeps_its_id_read_state_and_flags(swapped):
    assert [r["id"] for r in swapped.after] == [r["id"] for r in swapped.before]
    for old in swapped.before:
        new = swapped.by_id[old["id"]]
        for key in ("recipient", "unread", "deleted", "public", "emailed", "level", "verb"):
            assert new[key] == old[key], (key, old, new)
        assert new["description"] == (old["description"] or "")


def test_every_hq_row_keeps_its_actor_target_and_action_object(swapped):
    for old in swapped.before:
        new = swapped.by_id[old["id"]]
        for key in ("actor", "target", "action_object"):
            if old[key] is None:
                assert new[key] is None, (key, old, new)
            else:
                assert (new[key]["model"], new[key]["pk"]) == (old[key]["model"], old[key]["pk"])


def test_hq_timestamp_becomes_created_to_the_microsecond(swapped):
    for old in swapped.before:
        new = swapped.by_id[old["id"]]
        assert datetime.fromisoformat(new["created"]) == datetime.fromisoformat(old["timestamp"])


def test_hq_data_payloads_survive_and_unparsable_text_is_kept(swapped):
    if swapped.flavour.startswith("hq-"):  # its text column holds what is not JSON
        assert "{not json: " in [r["raw_data"] for r in swapped.before]
    for old in swapped.before:
        new = swapped.by_id[old["id"]]
        if old["raw_data"] is None:
            assert new["data"] == {}
        elif old["raw_data"] == "{not json: ":
            assert new["data"] == {"unparsed_data": old["raw_data"]}
        else:
            assert new["data"] == json.loads(old["raw_data"])
    nested = hq_rows(swapped, verb="commented on")[0]
    assert swapped.by_id[nested["id"]]["data"]["extra"] == {"n": [1, 2, {"ü": None}]}


def test_api_lists_each_live_hq_row_with_its_id_read_state_actor_and_time(swapped):
    for username in ("alice", "bob", "zofia"):
        listed = {n["id"]: n for n in swapped.api(username)["results"]}
        expected = hq_rows(swapped, recipient=username, deleted=False)
        assert sorted(listed) == sorted(r["id"] for r in expected)
        for old in expected:
            shown = listed[old["id"]]
            assert shown["unread"] is old["unread"]
            assert shown["verb"] == old["verb"]
            assert shown["level"] == old["level"]
            assert datetime.fromisoformat(shown["created"]) == datetime.fromisoformat(old["timestamp"])
            assert shown["actor"] == swapped.by_id[old["id"]]["actor"]["str"]


def test_api_unread_count_counts_hq_unread_rows(swapped):
    for username in ("alice", "bob", "zofia"):
        unread = hq_rows(swapped, recipient=username, deleted=False, unread=True)
        assert swapped.api(username)["unread_count"] == len(unread)


def test_url_comes_from_hq_data_url(swapped):
    row = hq_rows(swapped, verb="commented on")[0]
    listed = {n["id"]: n for n in swapped.api("bob")["results"]}
    assert listed[row["id"]]["url"] == "/posts/1/"


def test_soft_deleted_hq_rows_stay_deleted_and_hidden(swapped):
    deleted = hq_rows(swapped, deleted=True)
    assert deleted
    listed = {n["id"] for n in swapped.api("bob")["results"]}
    for old in deleted:
        assert swapped.by_id[old["id"]]["deleted"] is True
        assert old["id"] not in listed


def test_stream_replays_hq_rows_then_delivers_new_ones_live(swapped):
    cookies = swapped.login("bob")
    # A cursor before every row: no id on SQLite, no transaction on PostgreSQL.
    start = "1:1:" if swapped.url.startswith("postgres") else "0"
    stream = Stream(swapped.server.url, cookies=cookies, params={"last_event_id": start})
    try:
        stream.connected()
        expected = sorted(r["id"] for r in hq_rows(swapped, recipient="bob", deleted=False))
        stream.wait_for(lambda s: sorted(s.notification_ids()) == expected)
        replayed = {n["id"]: n for n in stream.notifications()}
        for old in hq_rows(swapped, recipient="bob", deleted=False):
            assert replayed[old["id"]]["unread"] is old["unread"]
            assert datetime.fromisoformat(replayed[old["id"]]["created"]) == datetime.fromisoformat(old["timestamp"])
        (new_id,) = map(int, swapped.server.script("notify", "bob", "after the swap").split())
        assert new_id > max(r["id"] for r in swapped.before)
        stream.wait_for(lambda s: new_id in s.notification_ids())
    finally:
        stream.close()


def test_migrations_after_the_swap_are_complete(swapped):
    result = run_here(swapped.url, "manage.py", "makemigrations", "--check", "--dry-run", "notifications")
    assert "No changes detected" in result.stdout


def test_fresh_database_goes_through_hq_history_to_this_schema(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    out = run_here(url, "manage.py", "migrate", "notifications", "--plan").stdout
    names = [line.split(".", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("notifications.")]
    assert names[:13] == [
        "0001_initial",
        "0002_auto_20150224_1134",
        "0003_notification_data",
        "0004_auto_20150826_1508",
        "0005_auto_20160504_1520",
        "0006_indexes",
        "0007_add_timestamp_index",
        "0008_index_together_recipient_unread",
        "0009_alter_notification_options_and_more",
        "0010_rename_notification_recipient_unread_notificatio_recipie_8bedf2_idx",
        "0011_replace_jsonfield_with_native",
        "0012_gfk_indexes",
        "0013_alter_notification_level",
    ]


def refuse(url: str) -> str:
    """Run migrate on ``url``; it must fail; return what it printed."""
    result = run_here(url, "manage.py", "migrate", "--noinput", check=False)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_hq_table_with_an_unknown_column_stops_migrate_unchanged(tmp_path):
    with empty_database(tmp_path) as url:
        make_hq_database(url)
        execute(url, "ALTER TABLE notifications_notification ADD COLUMN priority integer NULL")
        before = snapshot(url)
        message = refuse(url)
        assert "notifications_notification has the columns" in message
        assert "unexpected: priority" in message
        assert "Nothing in notifications_notification was changed" in message
        after = snapshot(url)
        assert after["columns"]["notifications_notification"] == before["columns"]["notifications_notification"]
        assert after["indexes"] == before["indexes"]
        assert after["rows"] == before["rows"]
        assert [m for m in after["applied"] if m[0] == "notifications"] == [
            m for m in before["applied"] if m[0] == "notifications"
        ]


def test_unknown_notifications_table_stops_the_first_migration(tmp_path):
    with empty_database(tmp_path) as url:
        execute(url, "CREATE TABLE notifications_notification (id integer PRIMARY KEY, body text)")
        execute(url, "INSERT INTO notifications_notification (id, body) VALUES (7, 'keep me')")
        message = refuse(url)
        assert "has the columns body, id" in message
        assert "before any migration of it" in message
        after = snapshot(url)
        assert after["rows"] == [["7", "keep me"]]
        assert not [m for m in after["applied"] if m[0] == "notifications"]


def test_table_of_a_pre_release_checkout_gets_told_how_to_record_its_migrations(tmp_path):
    """A database that ran this app's own first migration, recorded as hq's 0001_initial."""
    with empty_database(tmp_path) as url:
        run_here(url, "manage.py", "migrate", "--noinput")
        # That checkout's schema ends at 0017: later migrations came after it.
        run_here(url, "manage.py", "migrate", "notifications", "0017_transaction_ids")
        execute(url, "DELETE FROM django_migrations WHERE app = 'notifications' AND name <> '0001_initial'")
        message = refuse(url)
        assert "this app's own schema" in message
        assert "migrate notifications 0017_transaction_ids --fake" in message
        run_here(url, "manage.py", "migrate", "notifications", "0017_transaction_ids", "--fake")
        run_here(url, "manage.py", "migrate", "--noinput")
        applied = [m[1] for m in snapshot(url)["applied"] if m[0] == "notifications"]
        assert "0017_transaction_ids" in applied
