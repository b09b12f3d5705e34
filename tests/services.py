"""
Private Redis and PostgreSQL servers for failure tests: each test that stops a
service stops its own, never the machine's.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time

from .conftest import free_port


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() != b"PONG":
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found[-1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on its own port (run as the postgres user when root)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="notifications-pg-")
        self.data = os.path.join(self.dir, "data")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/notifications"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)

    def init(self) -> PrivatePostgres:
        shutil.chown(self.dir, "postgres") if os.geteuid() == 0 else None
        self._run(_pg_bin("initdb"), "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "notifications")
        return self

    def start(self) -> None:
        self._run(
            _pg_bin("pg_ctl"), "-D", self.data, "-w", "-l", os.path.join(self.dir, "log"),
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
            "start",
        )

    def stop(self) -> None:
        self._run(_pg_bin("pg_ctl"), "-D", self.data, "-w", "-m", "fast", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


PGBOUNCER_INI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pgbouncer.ini")


class PgBouncer:
    """
    Debian's pgbouncer in transaction pooling mode (tests/pgbouncer.ini, the
    README's configuration) on its own port, in front of the PostgreSQL on 5432.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="notifications-pgbouncer-")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PgBouncer:
        with open(PGBOUNCER_INI) as template:
            ini = template.read().replace("@PORT@", str(self.port)).replace("@DIR@", self.dir)
        with open(os.path.join(self.dir, "pgbouncer.ini"), "w") as out:
            out.write(ini)
        with open(os.path.join(self.dir, "users.txt"), "w") as out:
            out.write('"postgres" ""\n')
        command = ["pgbouncer", os.path.join(self.dir, "pgbouncer.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            shutil.chown(self.dir, "postgres")
            command[1:1] = ["-u", "postgres"]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode != 0:
            assert self.proc.poll() is None and time.monotonic() < deadline, "pgbouncer did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def pgbouncer_admin(host: str, port: int | str, command: str) -> list[list[str]]:
    """Run ``command`` on PgBouncer's admin console; its rows."""
    out = subprocess.run(
        ["psql", "-h", host, "-p", str(port), "-U", "postgres", "-At", "-F", "\t", "-c", command, "pgbouncer"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def pgbouncer_clients(host: str, port: int | str, database: str) -> int:
    """Client connections PgBouncer has open to ``database``."""
    rows = pgbouncer_admin(host, port, "SHOW CLIENTS")
    return sum(1 for row in rows if row[2] == database)


def pgbouncer_release(host: str, port: int | str, database: str) -> None:
    """Close PgBouncer's server connections to ``database``, so it can be dropped."""
    pgbouncer_admin(host, port, f"KILL {database}")
    pgbouncer_admin(host, port, f"RESUME {database}")

