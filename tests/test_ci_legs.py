"""
CI runs the browser tests and django-notifications-hq's own suite in the SQLite
leg of each version only (``SAME_IN_THE_SQLITE_LEG`` in ``.ci/run``): they run
on the embedded default whatever the leg's database and channel layer are. If
that stops being true, they would test something the PostgreSQL legs no longer
run, and these tests fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

pytest.importorskip("playwright")


def test_the_browser_tests_server_runs_on_sqlite_and_the_in_memory_layer_whatever_the_leg(monkeypatch, tmp_path):
    from .browser.demo import DemoServer

    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")
    monkeypatch.setenv("REDIS_SENTINELS", "127.0.0.1:26379")
    monkeypatch.setenv("DATABASE_TRANSACTION_POOLING", "1")
    server = DemoServer(tmp_path / "db.sqlite3", 0, {})
    assert server.env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'db.sqlite3'}"
    # project/settings.py: the in-memory layer without them
    assert "REDIS_URL" not in server.env and "REDIS_SENTINELS" not in server.env


def test_hqs_own_suite_runs_on_sqlite_and_the_in_memory_layer_whatever_the_leg():
    source = Path(ROOT / "tests" / "hq" / "suite_settings.py").read_text()
    tree = ast.parse(source)
    assigned = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    databases = ast.literal_eval(assigned["DATABASES"])
    layers = ast.literal_eval(assigned["CHANNEL_LAYERS"])
    assert {db["ENGINE"] for db in databases.values()} == {"django.db.backends.sqlite3"}
    assert {layer["BACKEND"] for layer in layers.values()} == {"channels.layers.InMemoryChannelLayer"}
    # Nothing else in the module reads the environment for them.
    assert "DATABASE_URL" not in source and "REDIS_URL" not in source
