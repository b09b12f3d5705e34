"""
Check W002 (the in-memory layer with several server processes) finds the
worker count wherever deployments set it: the environment, the server's
command line, its parent's, gunicorn's configuration, supervisord.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from notifications.checks import check_settings, several_processes

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer"}}
MANAGE = ["manage.py", "check"]


def found(argv=MANAGE, environ=None, parent=(), cwd=None):
    return several_processes(list(argv), environ or {}, list(parent), cwd=str(cwd) if cwd else None)


@pytest.mark.parametrize(
    "environ",
    [
        {"WEB_CONCURRENCY": "4"},
        {"UVICORN_WORKERS": "3"},
        {"GRANIAN_WORKERS": "2"},
        {"GUNICORN_CMD_ARGS": "--bind 0.0.0.0:8000 --workers 4"},
        {"GUNICORN_CMD_ARGS": "-w 4 -k uvicorn.workers.UvicornWorker"},
        {"GUNICORN_CMD_ARGS": "--workers=4"},
    ],
)
def test_worker_count_in_the_environment_is_found(environ):
    assert found(environ=environ)


@pytest.mark.parametrize(
    "argv",
    [
        ["/venv/bin/uvicorn", "project.asgi:application", "--workers", "4"],
        ["/venv/bin/uvicorn", "--workers=4", "project.asgi:application"],
        ["/venv/bin/gunicorn", "-w", "4", "-k", "uvicorn.workers.UvicornWorker", "project.asgi"],
        ["/venv/bin/gunicorn", "-w4", "project.asgi"],
        ["/usr/bin/python3", "-m", "gunicorn", "--workers", "3", "project.asgi"],
        ["/venv/bin/hypercorn", "-w", "2", "project.asgi:application"],
        ["/venv/bin/granian", "--interface", "asgi", "--workers", "2", "project.asgi:application"],
    ],
)
def test_workers_option_of_the_server_command_is_found(argv):
    assert found(argv=argv)
    assert found(parent=argv)  # a worker process started by that command


@pytest.mark.parametrize(
    "argv",
    [
        ["/venv/bin/uvicorn", "project.asgi:application"],
        ["/venv/bin/uvicorn", "--workers", "1", "project.asgi:application"],
        ["/venv/bin/daphne", "-b", "0.0.0.0", "project.asgi:application"],
        ["manage.py", "my_command", "-w", "4"],  # not a server: -w means something else
    ],
)
def test_one_process_is_not_several(argv, tmp_path):
    assert found(argv=argv, cwd=tmp_path) is None


def test_workers_in_the_gunicorn_configuration_are_found(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text('bind = "0.0.0.0:8000"\nworkers = 4\n')
    (tmp_path / "deploy.py").write_text("workers = 3  # two cores\n")
    assert found(argv=["gunicorn", "project.asgi"], cwd=tmp_path)
    assert "3" in found(argv=["gunicorn", "-c", "deploy.py", "project.asgi"], cwd=tmp_path)


def test_supervisord_program_with_several_processes_is_found():
    # Channels' documented daphne deployment: numprocs=4, process_name=asgi%(process_num)d
    assert found(environ={"SUPERVISOR_GROUP_NAME": "asgi", "SUPERVISOR_PROCESS_NAME": "asgi2"})
    assert found(environ={"SUPERVISOR_GROUP_NAME": "asgi", "SUPERVISOR_PROCESS_NAME": "asgi"}) is None


def test_w002_names_where_it_found_several_processes(monkeypatch, settings):
    settings.CHANNEL_LAYERS = IN_MEMORY
    monkeypatch.setattr(sys, "argv", ["/venv/bin/uvicorn", "project.asgi:application", "--workers", "4"])
    (message,) = [m for m in check_settings() if m.id == "notifications.W002"]
    assert "--workers 4" in message.msg and message.hint
    settings.CHANNEL_LAYERS = REDIS
    assert "notifications.W002" not in [m.id for m in check_settings()]


def test_manage_py_check_run_by_a_multi_worker_server_warns(tmp_path):
    # The check reads its parent's command line: a process started by
    # "uvicorn --workers 4" (here a stand-in script of that name) is one of several.
    script = tmp_path / "uvicorn"
    script.write_text(
        "import subprocess, sys\n"
        "sys.exit(subprocess.run([sys.executable, 'manage.py', 'check']).returncode)\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "tests.settings", "REDIS_URL": ""}
    result = subprocess.run(
        [sys.executable, str(script), "--workers", "4"],
        cwd=root, env=env, capture_output=True, text=True, timeout=60,
    )
    assert "notifications.W002" in result.stderr + result.stdout
