#!/usr/bin/env python3
"""
Benchmark this project against two peers and two floors, side by side, on this
machine, then the project alone in several processes behind nginx.

    python benchmarks/run.py                   everything: sizes 100 to 20,000, scale-out
    python benchmarks/run.py --quick           a development run, under 5 minutes
    python benchmarks/run.py --sizes 200 --events 20 --servers raw,floor,channels,ours
    python benchmarks/run.py --sizes 1000 --servers ours --gc-stats --gc-freeze
    python benchmarks/run.py --sizes 1000 --servers - --scale 2,4 --scale-n 1000

A run given --sizes or --servers skips the scale-out unless --scale asks for it.

Needs Python 3.11+, Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432
(user postgres, trust authentication). It sets up its own virtualenvs under
benchmarks/.work/ (git-ignored), creates a dedicated PostgreSQL database (dropped
at the end), and for each size runs each server alone, under the same ASGI server
(uvicorn, one process, uvloop + httptools), against the same Redis:

  raw        the physical limit: a bare ASGI app (no Django) putting one
             pre-encoded frame into every stream's queue
  floor      a minimal async Django view doing the same, served through the same
             stripped handler as this project's stream (no middleware): raw to
             floor is Django's cost
  channels   the stream as Channels' documentation has people write it: an
             AsyncHttpConsumer behind AuthMiddlewareStack joining a group per user
             (and one for broadcasts), channels-redis, the same users and cookies
  peer       django-eventstream 5.3 serving one broadcast channel, events stored in
             SQLite (DjangoModelStorage) and carried by its Redis support from a
             publisher process
  ours       this project (project/ settings) with PostgreSQL and the Redis channel
             layer, the safe default: the project's middleware runs for the stream;
             every stream is logged in as its own user; broadcasts come from
             notifications.api.broadcast() in a publisher process
  ours-fast  the same with the opt-out (the stream skips the middleware)
  ours-gc    ours with the README's garbage-collector lines in its asgi.py
             (gc.set_threshold, then gc.freeze() after start-up)

``--scale 2,4`` then runs this project in 2 and 4 uvicorn processes behind the
README's nginx configuration, main context and site (``--scale-n`` streams
spread over them, sharing PostgreSQL and Redis): delivery, latency, Redis
commands and PostgreSQL transactions per broadcast, CPU per broadcast summed over
the processes, and what nginx logged at warn level and above. RESULTS.md states
the kernel settings the run found (listen backlogs, local ports); it changes none.
``--gc-stats`` times every garbage collection in the servers (a benchmark-only
``sitecustomize``, benchmarks/gcstats/); ``--gc-freeze`` calls ``gc.freeze()`` in
this project's servers after start-up.

Writes benchmarks/results.json, benchmarks/RESULTS.md and benchmarks/results.png
(``--out`` puts them elsewhere). ``--ref HEAD`` measures a clean export of a commit
instead of the work tree, which others may be editing.
All traffic goes to 127.0.0.1; every phase is bounded in count and time; every
process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
BENCH_VENV = WORK / "venv-bench"
PEER_VENV = WORK / "venv-peer"
PG_DB = "bench_notifications"
PEER_SQLITE = WORK / "peer.sqlite3"
REDIS_DB_OURS = 14  # keys of the channel layer stay apart from anything else
REDIS_DB_PEER = 13
PORTS = {
    "raw": 8100,
    "floor": 8101,
    "peer": 8102,
    "ours": 8103,
    "channels": 8104,
    "ours-fast": 8105,
    "ours-gc": 8106,
}
SERVERS = ("raw", "floor", "channels", "peer", "ours", "ours-fast", "ours-gc")
OURS = ("ours", "ours-fast", "ours-gc")
USES_PG = {*OURS, "channels"}  # the same users, sessions and database
NGINX_PORT = 8110
SCALE_PORT0 = 8111  # processes behind nginx listen on 8111, 8112, ...
NGINX = "/usr/sbin/nginx"
# What the README's Deploying section ("Garbage collection with thousands of
# streams") puts at the end of asgi.py; the ours-gc row runs with it.
README_GC_THRESHOLD = "100000,10,10"
GROUP_MEMBERS = 10_000  # users created; notify() goes to a group of all of them
# Sessions are signed with it: the project and the Channels peer share it.
SECRET_KEY = "benchmark-only-not-secret-0d9c2b"
QUICK = {"sizes": [300], "events": 20, "burst": 200, "group_members": 1000}
DEFAULT_SIZES = "100,1000,2000,5000,10000,20000"

BENCH_REQUIREMENTS = [
    f"-r{REPO / 'requirements.txt'}",
    "uvicorn[standard]>=0.30",
    "aiohttp>=3.9,<4",
    "matplotlib>=3.8",
    "py-spy>=0.3",
]
PEER_REQUIREMENTS = [
    "django-eventstream>=5.3,<5.4",
    "Django>=5.2,<6",
    "uvicorn[standard]>=0.30",
    "redis>=5",
]
UVICORN = [
    "-m",
    "uvicorn",
    "--host",
    "127.0.0.1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--backlog",
    "4096",
    "--lifespan",
    "off",
    "--no-access-log",
    "--log-level",
    "warning",
    "--timeout-graceful-shutdown",
    "3",
]
UVICORN_FLAGS = " ".join(UVICORN[4:])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def raise_fd_limit() -> int:
    """Allow enough open files for 10,000 streams plus a reconnect storm, in every child."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (65536, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(wanted, hard)))
            return wanted
        except (ValueError, OSError):
            continue
    return soft


def venv(path: Path, requirements: list[str]) -> Path:
    """Create ``path`` with ``requirements`` installed, unless it already has them."""
    python = path / "bin" / "python"
    stamp = path / ".installed"
    wanted = "\n".join(requirements)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"setting up {path.relative_to(REPO)}")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
        check=True,
    )
    stamp.write_text(wanted)
    return python


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        if not port_free(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start in {timeout} s")


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL after ``grace``."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process started in its own session, and its children (the publisher)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class Setup:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.source = export(args.ref) if args.ref else REPO
        self.bench_python = venv(BENCH_VENV, BENCH_REQUIREMENTS)
        self.peer_python = venv(PEER_VENV, PEER_REQUIREMENTS) if "peer" in args.servers else None
        self.sessions = WORK / "ours-sessions.json"
        self.pg_url = f"postgresql://postgres@127.0.0.1:5432/{PG_DB}"
        self.uses_pg = bool(USES_PG & set(args.servers)) or bool(args.scale)
        self.max_streams = 2 * max([*args.sizes, args.scale_n if args.scale else 0]) + 100
        (WORK / "logs").mkdir(parents=True, exist_ok=True)

    def env(self, kind: str, publisher: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.pop("BENCH_GC_STATS", None)
        env.pop("BENCH_GC_FREEZE", None)
        env.pop("BENCH_GC_THRESHOLD", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if kind in USES_PG:
            env.update(
                BENCH_REPO=str(self.source),
                DJANGO_SECRET_KEY=SECRET_KEY,
                REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB_OURS}",
                DATABASE_URL=self.pg_url
                + (
                    "?application_name=bench-publisher"
                    if publisher
                    else "?application_name=bench-server"
                ),
            )
        if kind in OURS:
            env.update(
                PYTHONPATH=os.pathsep.join([str(self.source), str(HERE)]),
                DJANGO_SETTINGS_MODULE="project.settings",
                DJANGO_DEBUG="0",
                # The default budget (10,000 per process) would turn away the
                # reconnecting half of a 10,000-client storm while the server
                # has not yet seen the old connections close. Listed in RESULTS.md.
                NOTIFICATIONS_MAX_STREAMS=str(self.max_streams),
            )
        elif kind == "floor":
            env["PYTHONPATH"] = str(self.source)  # notifications.asgi.StreamHandler
        elif kind == "peer":
            env.update(PEER_DB=str(PEER_SQLITE), PEER_REDIS_DB=str(REDIS_DB_PEER))
        return env

    def server_env(self, kind: str, tag: str) -> dict[str, str]:
        """The server's environment: ``env(kind)`` plus the GC options."""
        env = self.env(kind)
        if self.args.gc_stats:
            record_gc(env, "BENCH_GC_STATS", WORK / f"gc-{tag}.json")
        if kind == "ours-gc":
            env["BENCH_GC_THRESHOLD"] = README_GC_THRESHOLD
            env["BENCH_GC_FREEZE"] = "1"
        elif kind in OURS:
            if self.args.gc_freeze:
                env["BENCH_GC_FREEZE"] = "1"
            if self.args.gc_threshold:
                env["BENCH_GC_THRESHOLD"] = self.args.gc_threshold
        return env

    def settings_of(self, kind: str) -> dict[str, str]:
        """Every setting of ``kind`` that differs from its software's defaults, for RESULTS.md."""
        common = {"ASGI server": f"uvicorn {UVICORN_FLAGS}"}
        if kind == "raw":
            return {**common, "app": "bare ASGI, 256 frames queued per stream at most"}
        if kind == "floor":
            return {
                **common,
                "Django": "DEBUG=False, MIDDLEWARE=[], no apps, no database",
                "stream": "served by notifications.asgi.StreamHandler (no middleware, "
                "no thread-sensitive context per request); 256 frames queued per stream at most",
            }
        if kind == "peer":
            return {
                **common,
                "Django": "DEBUG=False, MIDDLEWARE=[]",
                "EVENTSTREAM_STORAGE_CLASS": "django_eventstream.storage.DjangoModelStorage",
                "EVENTSTREAM_REDIS": f"127.0.0.1:6379 db {REDIS_DB_PEER}",
                "database": "SQLite, journal_mode=WAL, synchronous=NORMAL, timeout 20 s",
            }
        if kind == "channels":
            return {
                **common,
                "Django": "DEBUG=False, MIDDLEWARE=[] (AuthMiddlewareStack on the consumer)",
                "CHANNEL_LAYERS": f"channels_redis RedisChannelLayer, hosts "
                f"[redis://127.0.0.1:6379/{REDIS_DB_OURS}], everything else default (so redis-py's "
                "pool of at most 100 connections per process, a command beyond them fails: "
                "failed connects are retried by the client)",
                "database": "PostgreSQL (users and sessions), Django's default connection settings",
            }
        out = {
            **common,
            "settings": "project/settings.py, DJANGO_DEBUG=0, DATABASE_URL PostgreSQL, "
            f"REDIS_URL redis://127.0.0.1:6379/{REDIS_DB_OURS}",
            "CHANNEL_LAYERS": "as project/settings.py: capacity 1000, expiry 30, group_expiry "
            "86400, max_connections 200, socket_timeout 30, health_check_interval 15",
            "NOTIFICATIONS_MAX_STREAMS": f"{self.max_streams} (default 10000): room for a "
            "reconnect storm's old and new connections",
            "application": "benchmarks/ours_asgi.py:safe = serve_streams(get_asgi_application()): "
            "the project's middleware runs for the stream"
            if kind == "ours"
            else "benchmarks/ours_asgi.py:fast = serve_streams(get_asgi_application(), "
            "middleware=False)",
        }
        if kind == "ours-gc":
            out["application"] = (
                "benchmarks/ours_asgi.py:safe, as the headline row, with the README's "
                f"garbage-collector lines: gc.set_threshold({README_GC_THRESHOLD}), then "
                "gc.freeze() after start-up"
            )
            return out
        gc_settings = []
        if self.args.gc_threshold:
            gc_settings.append(f"gc.set_threshold({self.args.gc_threshold}) (--gc-threshold)")
        if self.args.gc_freeze:
            gc_settings.append("gc.freeze() after start-up (--gc-freeze)")
        if gc_settings:
            out["gc"] = ", then ".join(gc_settings)
        return out

    def redis_flush(self, db: int) -> None:
        subprocess.run(
            [
                str(self.bench_python),
                "-c",
                f"import redis; redis.Redis(host='127.0.0.1', port=6379, db={db}).flushdb()",
            ],
            check=False,
        )

    def prepare(self) -> None:
        if self.uses_pg:
            users = max(
                self.args.group_members,
                *self.args.sizes,
                self.args.scale_n if self.args.scale else 0,
            )
            log(f"creating PostgreSQL database {PG_DB}, {users} users and sessions")
            tool = [str(self.bench_python), str(HERE / "ours_tool.py")]
            subprocess.run([*tool, "createdb", PG_DB], check=True, env=self.env("ours"))
            subprocess.run(
                [str(self.bench_python), "manage.py", "migrate", "--noinput", "-v", "0"],
                check=True,
                cwd=self.source,
                env=self.env("ours"),
            )
            subprocess.run(
                [*tool, "setup", str(users), str(self.sessions)], check=True, env=self.env("ours")
            )
        if "peer" in self.args.servers:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{PEER_SQLITE}{suffix}").unlink(missing_ok=True)
            subprocess.run(
                [str(self.peer_python), "peer_app.py", "migrate", "-v", "0"],
                check=True,
                cwd=HERE / "peer",
                env=self.env("peer"),
            )

    def cleanup(self) -> None:
        # The channel layer's group keys (a day's expiry) live in a Redis
        # database of their own: empty it.
        self.redis_flush(REDIS_DB_OURS)
        if self.uses_pg and not self.args.keep_db:
            subprocess.run(
                [str(self.bench_python), str(HERE / "ours_tool.py"), "dropdb", PG_DB],
                env=self.env("ours"),
                check=False,
            )

    def server_command(self, kind: str, port: int) -> tuple[list[str], Path]:
        flags = [*UVICORN, "--port", str(port)]
        if kind == "raw":
            return [str(self.bench_python), *flags, "raw_app:application"], HERE / "floor"
        if kind == "floor":
            return [str(self.bench_python), *flags, "floor_app:application"], HERE / "floor"
        if kind == "peer":
            return [str(self.peer_python), *flags, "peer_app:application"], HERE / "peer"
        if kind == "channels":
            return [str(self.bench_python), *flags, "channels_app:application"], HERE / "peer"
        app = "ours_asgi:fast" if kind == "ours-fast" else "ours_asgi:safe"
        return [str(self.bench_python), *flags, app], self.source

    def publisher(self, kind: str) -> list[str] | None:
        if kind in OURS:
            return [str(self.bench_python), str(HERE / "ours_tool.py"), "publish"]
        if kind == "peer":
            return [str(self.peer_python), str(HERE / "peer" / "peer_app.py"), "publish"]
        if kind == "channels":
            return [str(self.bench_python), str(HERE / "peer" / "channels_app.py"), "publish"]
        return None

    def start_server(self, kind: str, port: int, tag: str) -> tuple[subprocess.Popen, Any]:
        if not port_free(port):
            raise RuntimeError(f"port {port} is busy: stop what listens there or pick others")
        command, cwd = self.server_command(kind, port)
        logfile = open(WORK / "logs" / f"{tag}.log", "w")
        server = subprocess.Popen(
            command,
            cwd=cwd,
            env=self.server_env(kind, tag),
            stdout=logfile,
            stderr=subprocess.STDOUT,
        )
        return server, logfile

    def client(
        self, kind: str, n: int, url: str, pids: list[int], tag: str, extra: list[str]
    ) -> dict:
        out = WORK / f"result-{tag}.json"
        out.unlink(missing_ok=True)
        client = [
            str(self.bench_python),
            str(HERE / "client.py"),
            "--kind",
            kind,
            "--url",
            url,
            "--pid",
            ",".join(str(p) for p in pids),
            "--n",
            str(n),
            "--events",
            str(self.args.events),
            "--burst",
            str(self.args.burst),
            "--out",
            str(out),
            "--open-timeout",
            str(30 + n / 50),
            *extra,
        ]
        if self.args.profile:
            client += ["--profile-dir", str(WORK), "--py-spy", str(BENCH_VENV / "bin" / "py-spy")]
        publisher = self.publisher(kind)
        if publisher:
            client += ["--publisher", json.dumps(publisher)]
        if kind in USES_PG:
            client += [
                "--sessions",
                str(self.sessions),
                "--pg-db",
                PG_DB,
                "--redis-url",
                f"redis://127.0.0.1:6379/{REDIS_DB_OURS}",
            ]
        if kind == "peer":
            client += [
                "--sqlite",
                str(PEER_SQLITE),
                "--redis-url",
                f"redis://127.0.0.1:6379/{REDIS_DB_PEER}",
            ]
        cwd_client = HERE / "peer" if kind in ("peer", "channels") else self.source
        client_env = self.env(kind, publisher=True)
        if self.args.gc_stats:
            # The load client's own collections: a pause there delays frames too.
            record_gc(client_env, "BENCH_GC_STATS_CLIENT", WORK / f"gc-{tag}-client.json")
        proc = subprocess.Popen(client, cwd=cwd_client, env=client_env, start_new_session=True)
        try:
            proc.wait(self.args.run_timeout)
        except subprocess.TimeoutExpired:
            log(f"{tag}: over {self.args.run_timeout} s, stopped")
        finally:
            stop_group(proc)
        if out.exists():
            return json.loads(out.read_text())
        return {"server": kind, "n": n, "complete": False, "error": "client gave no result"}

    def run_one(self, kind: str, n: int) -> dict:
        port = PORTS[kind]
        tag = f"{kind}-{n}"
        if kind in USES_PG:
            self.redis_flush(REDIS_DB_OURS)
        server, logfile = self.start_server(kind, port, tag)
        try:
            wait_port(port, server)
            time.sleep(0.5)
            result = self.client(kind, n, f"http://127.0.0.1:{port}", [server.pid], tag, [])
        finally:
            stop(server)
            logfile.close()
        result["settings"] = self.settings_of(kind)
        if self.args.gc_stats:
            result["gc"] = gc_summary([WORK / f"gc-{tag}.json"], result)
            result["gc_client"] = gc_summary([WORK / f"gc-{tag}-client.json"], result)
        return result

    def run_scale(self, processes: int, n: int) -> dict:
        """``processes`` uvicorn processes of this project behind the README's nginx."""
        kind = "ours"
        tag = f"scale{processes}-{n}"
        ports = [SCALE_PORT0 + i for i in range(processes)]
        if not port_free(NGINX_PORT):
            raise RuntimeError(f"port {NGINX_PORT} is busy")
        self.redis_flush(REDIS_DB_OURS)
        servers = []
        nginx = None
        nginx_dir = WORK / f"nginx-{tag}"
        try:
            for i, port in enumerate(ports):
                servers.append(self.start_server(kind, port, f"{tag}-p{i}"))
            for (server, _), port in zip(servers, ports):
                wait_port(port, server)
            nginx_conf, nginx_settings = nginx_config(nginx_dir, ports, n)
            (nginx_dir / "error.log").unlink(missing_ok=True)
            nginx_log = open(WORK / "logs" / f"{tag}-nginx.log", "w")
            nginx = subprocess.Popen(
                [NGINX, "-p", str(nginx_dir), "-c", str(nginx_conf), "-g", "daemon off;"],
                stdout=nginx_log,
                stderr=subprocess.STDOUT,
            )
            wait_port(NGINX_PORT, nginx)
            time.sleep(0.5)
            result = self.client(
                kind,
                n,
                f"http://127.0.0.1:{NGINX_PORT}",
                [s.pid for s, _ in servers],
                tag,
                ["--no-storm", "--no-extra"],
            )
        finally:
            if nginx is not None:
                stop(nginx)
                nginx_log.close()
            for server, logfile in servers:
                stop(server)
                logfile.close()
        result["processes"] = processes
        result["nginx_log"] = nginx_warnings(nginx_dir / "error.log")
        result["settings"] = {
            **self.settings_of(kind),
            "processes": f"{processes} uvicorn processes on ports {ports[0]}-{ports[-1]}",
            **nginx_settings,
        }
        if self.args.gc_stats:
            result["gc"] = gc_summary(
                [WORK / f"gc-{tag}-p{i}.json" for i in range(processes)], result
            )
        return result


def readme_block(text: str, name: str) -> str:
    """The fenced block after ``<!-- deploy:NAME -->`` in README.md's text."""
    match = re.search(rf"<!-- deploy:{name} -->\n```\w*\n(.*?)```", text, re.S)
    if not match:
        raise RuntimeError(f"README.md has no deploy:{name} block")
    return match.group(1)


def nginx_config(directory: Path, ports: list[int], n: int) -> tuple[Path, dict[str, str]]:
    """
    The README's nginx configuration, as tests/test_deploy.py runs it: the main
    context (the ``deploy:nginx-main`` block: workers, their connections and
    open files) and the site (the ``deploy:nginx`` block) with its upstream
    servers replaced by ``ports``, in an nginx.conf of its own. Returns the file
    and the settings, for RESULTS.md.
    """
    text = (REPO / "README.md").read_text()
    main = readme_block(text, "nginx-main")
    site = readme_block(text, "nginx")
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+;\n", site, re.M)
    if not servers:
        raise RuntimeError("README.md's nginx block names no upstream server")
    indent = servers[0][: len(servers[0]) - len(servers[0].lstrip())]
    upstream = "".join(f"{indent}server 127.0.0.1:{p};\n" for p in ports)
    site = site.replace(servers[0], upstream, 1)
    for line in servers[1:]:
        site = site.replace(line, "", 1)
    site = re.sub(r"listen \d+(?=[ ;])", f"listen 127.0.0.1:{NGINX_PORT}", site)

    def directives(block: str) -> str:
        found = re.findall(r"^\s*(\w+ [^;#{}\n]+);", block, re.M)
        return ", ".join(d for d in found if not d.startswith(("proxy_", "gzip")))

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    workers = re.search(r"^\s*worker_processes (\w+);", main, re.M)
    workers = workers.group(1) if workers else "1"
    if workers == "auto":
        workers = f"auto = {os.cpu_count()}"
    added = {
        "nginx": f"README blocks deploy:nginx-main ({directives(main)}) and deploy:nginx "
        f"(listen, backlog and upstream as there, servers replaced; listening on "
        f"127.0.0.1:{NGINX_PORT}); access_log off; nginx {nginx_version()}, "
        f"{workers} workers, open-files hard limit {hard}; "
        f"{n:,} streams are {2 * n:,} connections over the workers",
    }
    temp = directory / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + main
        + f"error_log {directory}/error.log warn;\npid {directory}/nginx.pid;\n"
        + "http {\n  access_log off;\n"
        + "".join(
            f"  {k}_temp_path {temp}/{k};\n"
            for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + site
        + "\n}\n"
    )
    return conf, added


def nginx_version() -> str:
    done = subprocess.run([NGINX, "-v"], capture_output=True, text=True, check=False)
    found = re.search(r"nginx/([\d.]+)", done.stderr)
    return found.group(1) if found else "?"


def nginx_warnings(error_log: Path) -> dict[str, int]:
    """What nginx logged at warn level and above, counted by message (RESULTS.md)."""
    counts: dict[str, int] = {}
    try:
        lines = error_log.read_text().splitlines()
    except OSError:
        return counts
    for line in lines:
        found = re.match(r"\S+ \S+ \[(warn|error|crit|alert|emerg)\] \d+#\d+: (?:\*\d+ )?(.*)", line)
        if found:
            message = re.sub(r", client: .*", "", found.group(2))
            key = f"[{found.group(1)}] {message}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def record_gc(env: dict[str, str], variable: str, path: Path) -> None:
    """Have the process started with ``env`` time its collections into ``path``
    (benchmarks/gcstats/sitecustomize.py reads ``variable``)."""
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE / "gcstats"), env.get("PYTHONPATH")) if p
    )
    env[variable] = str(path)
    path.unlink(missing_ok=True)


def gc_threshold(text: str) -> str:
    """``--gc-threshold``: three positive integers, comma-separated."""
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(
            "give three positive integers: T0,T1,T2 (e.g. 50000,20,10)"
        )
    return ",".join(str(int(p)) for p in parts)


def gc_summary(files: list[Path], result: dict) -> dict:
    """Collections per generation, in the whole run and during the broadcasts."""
    records = []
    for f in files:
        try:
            records += json.loads(f.read_text())["records"]
        except (OSError, ValueError, KeyError):
            pass
    if not records:
        return {"error": "no GC records (the server did not exit cleanly?)"}
    window = (result.get("broadcast") or {}).get("window")

    def per_generation(rows: list) -> dict:
        out = {}
        for gen in (0, 1, 2):
            durations = sorted(r[2] for r in rows if r[1] == gen)
            if durations:
                out[str(gen)] = {
                    "count": len(durations),
                    "total_ms": sum(durations) * 1000,
                    "max_ms": durations[-1] * 1000,
                    "p50_ms": durations[len(durations) // 2] * 1000,
                    "collected": sum(r[3] for r in rows if r[1] == gen),
                }
        return out

    summary = {"run": per_generation(records)}
    if window:
        during = [r for r in records if window[0] <= r[0] <= window[1]]
        summary["broadcast"] = per_generation(during)
        summary["broadcast_s"] = window[1] - window[0]
    return summary


def export(ref: str) -> Path:
    """A clean copy of the project at git ``ref``, so edits in the work tree cannot disturb a run."""
    target = WORK / "src"
    subprocess.run(["rm", "-rf", str(target)], check=True)
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref], cwd=REPO, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def commit_of(args: argparse.Namespace) -> str:
    if args.ref:
        return subprocess.run(
            ["git", "rev-parse", "--short", args.ref], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    return subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()


def versions(setup: Setup) -> dict:
    code = (
        "import json, importlib.metadata as m, sys\n"
        "names = sys.argv[1:]\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    common = ["Django", "uvicorn", "uvloop", "httptools", "asgiref"]
    bench = json.loads(
        subprocess.run(
            [
                str(setup.bench_python),
                "-c",
                code,
                *common,
                "channels",
                "channels-redis",
                "redis",
                "psycopg",
                "aiohttp",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    out = {"bench": bench}
    if setup.peer_python:
        out["peer"] = json.loads(
            subprocess.run(
                [str(setup.peer_python), "-c", code, *common, "django-eventstream", "redis"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    services = subprocess.run(
        [
            str(setup.bench_python),
            "-c",
            "import json, psycopg, redis\n"
            "pg = psycopg.connect('postgresql://postgres@127.0.0.1:5432/postgres')\n"
            "v = pg.execute('show server_version').fetchone()[0]\n"
            "mc = pg.execute('show max_connections').fetchone()[0]\n"
            "r = redis.Redis(host='127.0.0.1', port=6379).info('server')['redis_version']\n"
            "print(json.dumps({'postgresql': v, 'postgresql_max_connections': int(mc), 'redis': r}))\n",
        ],
        capture_output=True,
        text=True,
    )
    if services.returncode == 0:
        out["services"] = json.loads(services.stdout)
    return out


# The kernel's side of many connections at once (listen backlogs, local ports
# for nginx's upstream connections), for RESULTS.md: the runs change none of them.
KERNEL_SETTINGS = (
    "net.core.somaxconn",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "fs.file-max",
)


def machine() -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(x for x in open("/proc/meminfo") if x.startswith("MemTotal")).split()[1]
    except (OSError, StopIteration):
        mem = "0"
    kernel = {}
    for name in KERNEL_SETTINGS:
        try:
            kernel[name] = " ".join(Path("/proc/sys", *name.split(".")).read_text().split())
        except OSError:
            kernel[name] = "?"
    return {
        "kernel_settings": kernel,
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(int(mem) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="numbers of concurrent streams (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a development run under 5 minutes: every server at {QUICK['sizes']} streams, "
        f"{QUICK['events']} broadcasts, a burst of {QUICK['burst']}, a group of "
        f"{QUICK['group_members']}, scale-out to 2 processes with {QUICK['sizes'][-1]} streams",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"which of {', '.join(SERVERS)}; '-' for none (default: all)",
    )
    parser.add_argument(
        "--events", type=int, default=100, help="broadcast events per size (default: 100)"
    )
    parser.add_argument(
        "--scale",
        help="process counts for the scale-out runs behind nginx; '-' for none "
        "(default: 2,4, or none when --sizes or --servers is given)",
    )
    parser.add_argument(
        "--scale-n",
        type=int,
        help="streams spread over the processes in the scale-out runs "
        "(default: 10000, or the largest of --sizes when given)",
    )
    parser.add_argument(
        "--burst",
        type=int,
        default=1000,
        help="notifications in the burst to one user (this project; default: %(default)s)",
    )
    parser.add_argument(
        "--group-members",
        type=int,
        default=GROUP_MEMBERS,
        help="users created, all in the group notify() writes to (default: %(default)s)",
    )
    parser.add_argument(
        "--gc-stats",
        action="store_true",
        help="time every garbage collection in the servers, per generation",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="this project's servers call gc.freeze() after start-up",
    )
    parser.add_argument(
        "--gc-threshold",
        metavar="T0,T1,T2",
        type=gc_threshold,
        help="this project's servers call gc.set_threshold(T0, T1, T2) at start-up",
    )
    parser.add_argument(
        "--peer-max-open-s",
        type=float,
        default=120,
        help="stop growing a peer once opening its streams takes longer (default: 120)",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=600,
        help="seconds one server at one size may take (default: 600)",
    )
    parser.add_argument(
        "--ref",
        help="measure this git commit (exported to benchmarks/.work/src) "
        "instead of the work tree as it is",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record each server with py-spy, per phase, into benchmarks/.work/profile-SERVER-N-PHASE.txt",
    )
    parser.add_argument(
        "--out",
        default=str(HERE / "results.json"),
        help="results JSON; RESULTS.md and results.png are written beside it",
    )
    args = parser.parse_args()
    explicit = {a.split("=")[0] for a in sys.argv[1:]}
    if args.quick:
        if "--sizes" not in explicit:
            args.sizes = ",".join(str(n) for n in QUICK["sizes"])
        if "--events" not in explicit:
            args.events = QUICK["events"]
        if "--scale" not in explicit:
            args.scale = "2"
        if "--scale-n" not in explicit:
            args.scale_n = QUICK["sizes"][-1]
        if "--burst" not in explicit:
            args.burst = QUICK["burst"]
        if "--group-members" not in explicit:
            args.group_members = QUICK["group_members"]
    if args.scale_n is None:
        args.scale_n = (
            max(int(s) for s in args.sizes.split(",") if s.isdigit())
            if "--sizes" in explicit and any(s.isdigit() for s in args.sizes.split(","))
            else 10_000
        )
    if args.scale is None:
        args.scale = "-" if explicit & {"--sizes", "--servers"} else "2,4"
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
        args.scale = [int(s) for s in args.scale.split(",") if s and s != "-"]
    except ValueError:
        parser.error("--sizes and --scale take comma-separated whole numbers")
    if not args.sizes or min(args.sizes) < 1 or any(p < 1 for p in args.scale):
        parser.error("--sizes needs at least one size; sizes and process counts are 1 or more")
    if args.events < 1:
        parser.error("--events must be 1 or more")
    args.servers = [s for s in args.servers.split(",") if s and s != "-"]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")
    if args.scale and not Path(NGINX).exists():
        parser.error(f"--scale needs nginx at {NGINX}; pass --scale - to skip it")

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fds = raise_fd_limit()
    WORK.mkdir(exist_ok=True)
    setup = Setup(args)
    started = time.monotonic()
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/run.py", *sys.argv[1:]]),
        "machine": machine(),
        "fd_limit": fds,
        "asgi_server": f"uvicorn, one process, {UVICORN_FLAGS}",
        "versions": versions(setup),
        "commit": commit_of(args),
        "sizes": args.sizes,
        "events": args.events,
        "gc_stats": args.gc_stats,
        "gc_freeze": args.gc_freeze,
        "gc_threshold": args.gc_threshold,
        "results": [],
        "scale": [],
        "skipped": [],
    }
    stopped_at: dict[str, int] = {}  # a peer that did not hold is not grown further
    try:
        setup.prepare()
        for n in args.sizes:
            for kind in args.servers:
                if kind in stopped_at:
                    report["skipped"].append(
                        {"server": kind, "n": n, "why": f"did not hold at N={stopped_at[kind]}"}
                    )
                    continue
                if n + 1024 > fds:
                    why = f"open-files limit {fds} is too low for {n} streams"
                    report["skipped"].append({"server": kind, "n": n, "why": why})
                    log(f"{kind}: N={n} skipped: {why}")
                    continue
                log(f"{kind}: N={n}")
                result = setup.run_one(kind, n)
                report["results"].append(result)
                log(brief(result))
                opened_s = (result.get("open") or {}).get("seconds") or 0
                if kind in ("peer", "channels") and (
                    not result.get("held")
                    or not result.get("complete")
                    or opened_s > args.peer_max_open_s
                ):
                    stopped_at[kind] = n
                Path(args.out).write_text(json.dumps(report, indent=1))
        for processes in args.scale:
            log(f"scale-out: {processes} processes behind nginx, N={args.scale_n}")
            result = setup.run_scale(processes, args.scale_n)
            report["scale"].append(result)
            log(brief(result))
            Path(args.out).write_text(json.dumps(report, indent=1))
    finally:
        setup.cleanup()
        report["total_s"] = time.monotonic() - started
        Path(args.out).write_text(json.dumps(report, indent=1))
    subprocess.run([str(setup.bench_python), str(HERE / "report.py"), args.out], check=True)
    print((Path(args.out).resolve().parent / "RESULTS.md").read_text(), flush=True)
    out = Path(args.out).resolve().parent
    log(f"done in {report['total_s']:.0f} s: {out / 'RESULTS.md'}, {out / 'results.png'}")


def brief(r: dict) -> str:
    if r.get("error") and not r.get("open"):
        return f"  failed: {r['error']}"
    o, b = r.get("open") or {}, r.get("broadcast") or {}
    parts = [
        f"opened {o.get('opened')}/{r['n']} in {o.get('seconds', 0):.1f} s",
        f"rss/stream {r.get('rss_per_stream_kib', 0):.0f} KiB",
    ]
    if b and b.get("p50_s") is not None:
        parts.append(
            f"p50 {b['p50_s'] * 1000:.0f} ms p99 {b['p99_s'] * 1000:.0f} ms "
            f"p99.9 {b['p999_s'] * 1000:.0f} ms slowest/median broadcast "
            f"{(b.get('slowest_broadcast_s') or 0) * 1000:.0f}/"
            f"{(b.get('median_broadcast_s') or 0) * 1000:.0f} ms "
            f"delivered {b['delivered']}/{b['expected']}"
        )
    st = r.get("storm")
    if st:
        parts.append(
            f"storm {st.get('caught_up_s')} s lost {st.get('lost')} dup {st.get('duplicates')}"
        )
    return "  " + ", ".join(parts)


if __name__ == "__main__":
    main()
