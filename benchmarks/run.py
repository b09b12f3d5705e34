#!/usr/bin/env python3
"""
Benchmark this project against django-eventstream and against the floor of
Django's ASGI path, side by side, on this machine.

    python benchmarks/run.py                   sizes 100,1000,2000,5000,10000 (~20 min)
    python benchmarks/run.py --quick           sizes 100,1000 (a few minutes)
    python benchmarks/run.py --sizes 100,2000 --servers ours,floor

Needs Python 3.11+, Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432
(user postgres, trust authentication). It sets up its own virtualenvs under
benchmarks/.work/ (git-ignored), creates a dedicated PostgreSQL database (dropped
at the end), and for each size runs each server alone, under the same ASGI server
(uvicorn, one process, uvloop + httptools), against the same Redis:

  floor  a minimal async Django view streaming pre-encoded frames from a
         process-local queue: no auth, no database, no channel layer
  peer   django-eventstream 5.3 serving one broadcast channel, events stored in
         SQLite (DjangoModelStorage) and carried by its Redis support from a
         publisher process
  ours   this project (project/ settings) with PostgreSQL and the Redis channel
         layer; every stream is logged in as its own user; broadcasts come from
         notifications.api.broadcast() in a publisher process

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
import resource
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = HERE / ".work"
BENCH_VENV = WORK / "venv-bench"
PEER_VENV = WORK / "venv-peer"
PG_DB = "bench_notifications"
PEER_SQLITE = WORK / "peer.sqlite3"
REDIS_DB_OURS = 14  # keys of the channel layer stay apart from anything else
REDIS_DB_PEER = 13
PORTS = {"floor": 8101, "peer": 8102, "ours": 8103}
SERVERS = ("floor", "peer", "ours")
GROUP_MEMBERS = 10_000  # users created; notify() goes to a group of all of them

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
        (WORK / "logs").mkdir(parents=True, exist_ok=True)

    def env(self, kind: str, publisher: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if kind == "ours":
            env.update(
                BENCH_REPO=str(self.source),
                PYTHONPATH=str(self.source),
                DJANGO_SETTINGS_MODULE="project.settings",
                DJANGO_DEBUG="0",
                REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB_OURS}",
                DATABASE_URL=self.pg_url
                + (
                    "?application_name=bench-publisher"
                    if publisher
                    else "?application_name=bench-server"
                ),
                # The default budget (10,000 per process) would turn away the
                # reconnecting half of a 10,000-client storm while the server
                # has not yet seen the old connections close.
                NOTIFICATIONS_MAX_STREAMS=str(2 * max(self.args.sizes) + 100),
            )
        elif kind == "peer":
            env.update(PEER_DB=str(PEER_SQLITE), PEER_REDIS_DB=str(REDIS_DB_PEER))
        return env

    def prepare(self) -> None:
        if "ours" in self.args.servers:
            log(f"creating PostgreSQL database {PG_DB}, {GROUP_MEMBERS} users and sessions")
            tool = [str(self.bench_python), str(HERE / "ours_tool.py")]
            subprocess.run([*tool, "createdb", PG_DB], check=True, env=self.env("ours"))
            subprocess.run(
                [str(self.bench_python), "manage.py", "migrate", "--noinput", "-v", "0"],
                check=True,
                cwd=self.source,
                env=self.env("ours"),
            )
            users = max(GROUP_MEMBERS, max(self.args.sizes))
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
        subprocess.run(
            [
                str(self.bench_python),
                "-c",
                f"import redis; redis.Redis(host='127.0.0.1', port=6379, db={REDIS_DB_OURS}).flushdb()",
            ],
            check=False,
        )
        if "ours" in self.args.servers and not self.args.keep_db:
            subprocess.run(
                [str(self.bench_python), str(HERE / "ours_tool.py"), "dropdb", PG_DB],
                env=self.env("ours"),
                check=False,
            )

    def server_command(self, kind: str) -> tuple[list[str], Path]:
        port = ["--port", str(PORTS[kind])]
        if kind == "floor":
            return [
                str(self.bench_python),
                *UVICORN,
                *port,
                "floor_app:application",
            ], HERE / "floor"
        if kind == "peer":
            return [str(self.peer_python), *UVICORN, *port, "peer_app:application"], HERE / "peer"
        return [str(self.bench_python), *UVICORN, *port, "project.asgi:application"], self.source

    def publisher(self, kind: str) -> list[str] | None:
        if kind == "ours":
            return [str(self.bench_python), str(HERE / "ours_tool.py"), "publish"]
        if kind == "peer":
            return [str(self.peer_python), str(HERE / "peer" / "peer_app.py"), "publish"]
        return None

    def run_one(self, kind: str, n: int) -> dict:
        port = PORTS[kind]
        if not port_free(port):
            raise RuntimeError(f"port {port} is busy: stop what listens there or pick others")
        command, cwd = self.server_command(kind)
        logfile = open(WORK / "logs" / f"{kind}-{n}.log", "w")
        server = subprocess.Popen(
            command, cwd=cwd, env=self.env(kind), stdout=logfile, stderr=subprocess.STDOUT
        )
        out = WORK / f"result-{kind}-{n}.json"
        out.unlink(missing_ok=True)
        try:
            wait_port(port, server)
            time.sleep(0.5)
            client = [
                str(self.bench_python),
                str(HERE / "client.py"),
                "--kind",
                kind,
                "--url",
                f"http://127.0.0.1:{port}",
                "--pid",
                str(server.pid),
                "--n",
                str(n),
                "--events",
                str(self.args.events),
                "--out",
                str(out),
                "--open-timeout",
                str(30 + n / 50),
            ]
            if self.args.profile:
                client += [
                    "--profile-dir",
                    str(WORK),
                    "--py-spy",
                    str(BENCH_VENV / "bin" / "py-spy"),
                ]
            publisher = self.publisher(kind)
            if publisher:
                client += ["--publisher", json.dumps(publisher)]
            if kind == "ours":
                client += ["--sessions", str(self.sessions), "--pg-db", PG_DB]
            if kind == "peer":
                client += ["--sqlite", str(PEER_SQLITE)]
            cwd_client = HERE / "peer" if kind == "peer" else self.source
            proc = subprocess.Popen(
                client, cwd=cwd_client, env=self.env(kind, publisher=True), start_new_session=True
            )
            try:
                proc.wait(self.args.run_timeout)
            except subprocess.TimeoutExpired:
                log(f"{kind} N={n}: over {self.args.run_timeout} s, stopped")
            finally:
                stop_group(proc)
            if out.exists():
                result = json.loads(out.read_text())
            else:
                result = {
                    "server": kind,
                    "n": n,
                    "complete": False,
                    "error": "client gave no result",
                }
            result["server_threads_end"] = None
            return result
        finally:
            stop(server)
            logfile.close()


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
    return {
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
        default="100,1000,2000,5000,10000",
        help="numbers of concurrent streams (default: %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="sizes 100,1000 only")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help="which of floor, peer, ours (default: all three)",
    )
    parser.add_argument(
        "--events", type=int, default=20, help="broadcast events per size (default: 20)"
    )
    parser.add_argument(
        "--peer-max-open-s",
        type=float,
        default=120,
        help="stop growing the peer once opening its streams takes longer (default: 120)",
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
    args.sizes = [100, 1000] if args.quick else [int(s) for s in args.sizes.split(",")]
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = set(args.servers) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers {sorted(unknown)}; choose from {', '.join(SERVERS)}")

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
        "asgi_server": "uvicorn, one process, --loop uvloop --http httptools --backlog 4096",
        "versions": versions(setup),
        "commit": commit_of(args),
        "sizes": args.sizes,
        "events": args.events,
        "results": [],
        "skipped": [],
    }
    peer_stopped_at = None
    try:
        setup.prepare()
        for n in args.sizes:
            for kind in args.servers:
                if kind == "peer" and peer_stopped_at is not None:
                    report["skipped"].append(
                        {"server": kind, "n": n, "why": f"did not hold at N={peer_stopped_at}"}
                    )
                    continue
                log(f"{kind}: N={n}")
                result = setup.run_one(kind, n)
                report["results"].append(result)
                log(brief(result))
                opened_s = (result.get("open") or {}).get("seconds") or 0
                if kind == "peer" and (
                    not result.get("held")
                    or not result.get("complete")
                    or opened_s > args.peer_max_open_s
                ):
                    peer_stopped_at = n
                Path(args.out).write_text(json.dumps(report, indent=1))
    finally:
        setup.cleanup()
        report["total_s"] = time.monotonic() - started
        Path(args.out).write_text(json.dumps(report, indent=1))
    subprocess.run([str(setup.bench_python), str(HERE / "report.py"), args.out], check=True)
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
    if b:
        parts.append(
            f"p50 {b['p50_s'] * 1000:.0f} ms p99 {b['p99_s'] * 1000:.0f} ms "
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
