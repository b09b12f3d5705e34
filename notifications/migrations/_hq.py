"""
What the migrations need to take over a table written by django-notifications-hq
(or its community fork) safely. The migration loader skips this module (its name
starts with "_"); the migrations import it.

- ``RequireTableShape``: the first operation of every migration. It compares the
  table's columns with what the migration history says they are at that point
  and stops ``migrate`` with a message naming what it found when they differ, so
  an unknown table is never altered.
- ``repair_json_text``: before ``data`` becomes a JSON column, text that is not
  JSON (or JSON the database refuses) is kept, wrapped as
  ``{"unparsed_data": "<the text>"}``.
- ``fill_actor_display_and_url``: what the stream shows of rows written by hq,
  filled in batches.
"""

from __future__ import annotations

import json
from typing import Any

from django.apps import apps as global_apps
from django.core.management.base import CommandError
from django.db import transaction
from django.db.migrations.operations.base import Operation

TABLE = "notifications_notification"
BATCH = 2000
UNPARSED = "unparsed_data"

# Columns of this app's own table before its history was joined to hq's: a
# database migrated by a pre-release checkout records "0001_initial" only.
_OWN_SCHEMA_MARKERS = {"audience", "created", "actor_display"}
# Columns migrations add outside the model state (PostgreSQL's transaction ids).
_UNMODELLED = {"xact"}


class TableShapeError(CommandError):
    """The notifications table is not what the migration history expects."""


class RequireTableShape(Operation):
    """
    Stop the migration when ``notifications_notification`` does not have the
    columns the migration history expects before it (or exists before the first
    migration). Changes nothing, in either direction.
    """

    reversible = True
    reduces_to_sql = False

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
            exists = TABLE in tables
            found = (
                {c.name for c in connection.introspection.get_table_description(cursor, TABLE)}
                if exists
                else set()
            )
        found -= _UNMODELLED
        if (app_label, "notification") not in from_state.models:
            if exists:
                raise TableShapeError(
                    _message(found, set(), "before any migration of it", tables)
                )
            return
        model = from_state.apps.get_model(app_label, "Notification")
        expected = {f.column for f in model._meta.local_concrete_fields}
        if found != expected:
            raise TableShapeError(
                _message(found, expected, "at this point of its history", tables)
            )

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        pass

    def describe(self) -> str:
        return "Check that notifications_notification has the expected columns"


def _message(found: set[str], expected: set[str], when: str, tables: list[str]) -> str:
    if not found:
        shape = f"{TABLE} does not exist"
    else:
        shape = f"{TABLE} has the columns {', '.join(sorted(found))}"
        missing, extra = expected - found, found - expected
        if expected:
            shape += (
                f" (missing: {', '.join(sorted(missing)) or 'none'}; "
                f"unexpected: {', '.join(sorted(extra)) or 'none'})"
            )
    message = (
        f"Refusing to migrate the notifications app: {shape}, which matches neither "
        f"django-notifications-hq's nor this app's migration history {when}. "
        f"Nothing in {TABLE} was changed."
    )
    if expected and _OWN_SCHEMA_MARKERS <= found and "timestamp" not in found:
        # What a pre-release checkout's own migrations had made, by their tables.
        last = (
            "0017_transaction_ids"
            if "notifications_readevent" in tables
            else "0016_fill_actor_display_and_url"
        )
        message += (
            " The table looks like this app's own schema, migrated by a pre-release "
            "version that recorded only '0001_initial': record the rest with "
            f"`manage.py migrate notifications {last} --fake`, "
            "then run `manage.py migrate`."
        )
    else:
        message += " Compare it with the migrations in notifications/migrations/."
    return message


# -- data ----------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_nul(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def storable_json(text: str) -> bool:
    """
    Is ``text`` JSON that every supported database stores in a JSON column?
    (Strict JSON: no NaN/Infinity, no NUL characters, no lone surrogates;
    PostgreSQL's jsonb refuses all three.)
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant)
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeEncodeError):
        return False
    return not _has_nul(value)


def repair_json_text(apps: Any, schema_editor: Any) -> None:
    """
    Wrap each ``data`` text that is not storable JSON as ``{"unparsed_data": text}``
    so the column can become JSON without losing it. Reads in id batches.
    """
    connection = schema_editor.connection
    qn = connection.ops.quote_name
    select = (
        f"SELECT {qn('id')}, {qn('data')} FROM {qn(TABLE)} "  # noqa: S608  # identifiers from quote_name; BATCH is a constant
        f"WHERE {qn('data')} IS NOT NULL AND {qn('id')} > %s ORDER BY {qn('id')}"
    )
    select += f" LIMIT {BATCH}"
    update = f"UPDATE {qn(TABLE)} SET {qn('data')} = %s WHERE {qn('id')} = %s"  # noqa: S608  # identifiers from quote_name, values as parameters
    last = 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(select, [last])
            rows = cursor.fetchall()
            if not rows:
                return
            last = rows[-1][0]
            bad = [(pk, text) for pk, text in rows if not storable_json(text)]
            if bad:
                cursor.executemany(
                    update,
                    [(json.dumps({UNPARSED: text.replace("\x00", "")}), pk) for pk, text in bad],
                )


def rewrite_once_on_postgresql(apps: Any, schema_editor: Any) -> None:
    """
    On PostgreSQL, widen ``id`` and replace NULL ``description``, object ids and
    ``data`` with their new defaults in one ALTER TABLE, which rewrites the table
    once; the operations after it then find nothing left to change. Elsewhere,
    nothing: those operations do the work.
    """
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    qn = connection.ops.quote_name
    changes = [
        (qn("id"), "bigint", qn("id")),
        (qn("description"), "text", f"COALESCE({qn('description')}, '')"),
        (qn("target_object_id"), "varchar(255)", f"COALESCE({qn('target_object_id')}, '')"),
        (
            qn("action_object_object_id"),
            "varchar(255)",
            f"COALESCE({qn('action_object_object_id')}, '')",
        ),
        (qn("data"), "jsonb", f"COALESCE({qn('data')}, '{{}}'::jsonb)"),
    ]
    schema_editor.execute(
        f"ALTER TABLE {qn(TABLE)} "
        + ", ".join(f"ALTER COLUMN {col} TYPE {kind} USING {expr}" for col, kind, expr in changes)
    )


def _real_model(content_type: Any) -> Any:
    """The installed model class a historical content type names, or None."""
    try:
        return global_apps.get_model(content_type.app_label, content_type.model)
    except LookupError:
        return None


def _displays(model: Any, object_ids: set[str]) -> dict[str, str]:
    """``str()`` of the objects of ``model`` with these ids, by id as text."""
    pks = []
    for object_id in object_ids:
        try:
            pks.append(model._meta.pk.to_python(object_id))
        except Exception:  # an id the model's key cannot hold names nothing  # noqa: S112  # an id the model cannot hold names no object: nothing to log
            continue
    return {str(pk): str(obj)[:255] for pk, obj in model._base_manager.in_bulk(pks).items()}


def fill_actor_display_and_url(apps: Any, schema_editor: Any) -> None:
    """
    For rows written before this app (``actor_display`` and ``url`` empty):
    name the actor as ``str(actor)`` does now, and take ``url`` from
    ``data["url"]`` (which stays in ``data``). One transaction per batch of ids,
    so an interrupted run resumes where it stopped.
    """
    if schema_editor.connection.vendor == "postgresql":
        _fill_on_postgresql(apps, schema_editor)
        return
    Notification = apps.get_model("notifications", "Notification")
    ContentType = apps.get_model("contenttypes", "ContentType")
    connection = schema_editor.connection
    db = connection.alias
    # Keyset by id alone (an index scan); rows already filled are skipped here.
    rows = Notification.objects.using(db).order_by("id")
    fields = ("id", "actor_content_type_id", "actor_object_id", "data", "actor_display", "url")
    models: dict[int, Any] = {}
    last = 0
    while True:
        page = list(rows.filter(id__gt=last).values_list(*fields)[:BATCH])
        if not page:
            return
        last = page[-1][0]
        batch = [row[:4] for row in page if not row[4] and not row[5]]
        wanted: dict[int, set[str]] = {}
        for _, type_id, object_id, _ in batch:
            if type_id is not None:
                wanted.setdefault(type_id, set()).add(object_id)
        names: dict[tuple[int, str], str] = {}
        for type_id, object_ids in wanted.items():
            if type_id not in models:
                content_type = ContentType.objects.using(db).filter(pk=type_id).first()
                models[type_id] = content_type and _real_model(content_type)
            if models[type_id] is not None:
                for object_id, name in _displays(models[type_id], object_ids).items():
                    names[(type_id, object_id)] = name
        changed = []
        for pk, type_id, object_id, data in batch:
            name = names.get((type_id, object_id), "")
            url = data.get("url") if isinstance(data, dict) else None
            url = url[:2000] if isinstance(url, str) else ""
            if name or url:
                changed.append((pk, name, url))
        with transaction.atomic(using=db):
            _update(connection, Notification, changed)


def _update(connection: Any, Notification: Any, changed: list[tuple[int, str, str]]) -> None:
    """Set (actor_display, url) by id."""
    if changed:
        Notification.objects.using(connection.alias).bulk_update(
            [Notification(id=pk, actor_display=name, url=url) for pk, name, url in changed],
            ["actor_display", "url"],
            batch_size=500,
        )


_NAMES = "notif_hq_actor_names"
_FILL_RANGE = 10_000


def _fill_on_postgresql(apps: Any, schema_editor: Any) -> None:
    """
    ``fill_actor_display_and_url`` in SQL: each distinct actor is named once (in
    Python, by ``str()``) into a temporary table, then one UPDATE per range of
    ids, each in its own transaction, sets the names and the urls.
    """
    ContentType = apps.get_model("contenttypes", "ContentType")
    connection = schema_editor.connection
    db = connection.alias
    table = connection.ops.quote_name(TABLE)
    pending = "n.actor_display = '' AND n.url = ''"
    named = (
        f"SELECT a.name FROM {_NAMES} a "  # noqa: S608  # identifiers from quote_name and constants; ids as parameters
        "WHERE a.ct = n.actor_content_type_id AND a.oid = n.actor_object_id"
    )
    is_url = "jsonb_typeof(n.data -> 'url') = 'string'"
    update = (
        f"UPDATE {table} AS n SET actor_display = COALESCE(({named}), ''), "  # noqa: S608  # identifiers from quote_name and constants
        f"url = CASE WHEN {is_url} THEN left(n.data ->> 'url', 2000) ELSE '' END "
        f"WHERE n.id BETWEEN %s AND %s AND {pending} "
        f"AND ({is_url} OR EXISTS ({named}))"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT actor_content_type_id, actor_object_id FROM {table} AS n "  # noqa: S608  # identifiers from quote_name and constants
            f"WHERE actor_content_type_id IS NOT NULL AND {pending}"
        )
        wanted: dict[int, list[str]] = {}
        for type_id, object_id in cursor.fetchall():
            wanted.setdefault(type_id, []).append(object_id)
        names: list[tuple[int, str, str]] = []
        for type_id, object_ids in wanted.items():
            content_type = ContentType.objects.using(db).filter(pk=type_id).first()
            model = content_type and _real_model(content_type)
            if model is None:
                continue
            for start in range(0, len(object_ids), BATCH):
                some = set(object_ids[start : start + BATCH])
                names.extend((type_id, oid, name) for oid, name in _displays(model, some).items())
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_NAMES} "
            "(ct integer, oid varchar(255), name varchar(255), PRIMARY KEY (ct, oid))"
        )
        try:
            for start in range(0, len(names), BATCH):
                rows = names[start : start + BATCH]
                cursor.execute(
                    f"INSERT INTO {_NAMES} VALUES " + ", ".join(["(%s, %s, %s)"] * len(rows)),  # noqa: S608  # a constant table name; values as parameters
                    [value for row in rows for value in row],
                )
            cursor.execute(f"ANALYZE {_NAMES}")
            cursor.execute(f"SELECT min(id), max(id) FROM {table}")  # noqa: S608  # identifiers from quote_name
            low, high = cursor.fetchone()
            for first in range(low or 0, (high or -1) + 1, _FILL_RANGE):
                with transaction.atomic(using=db):
                    cursor.execute(update, [first, first + _FILL_RANGE - 1])
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {_NAMES}")
