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
from typing import Any

from .conftest import free_port


def redis_layer(url: str) -> dict[str, Any]:
    """A channel layer on ``url``, configured as the demo project configures its own."""
    return {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": url, "socket_timeout": 30, "socket_connect_timeout": 5}],
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }


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
    """Close PgBouncer's server connections to ``database`` (if it has any), so it can be dropped."""
    if database not in {row[0] for row in pgbouncer_admin(host, port, "SHOW DATABASES")}:
        return
    pgbouncer_admin(host, port, f"KILL {database}")
    pgbouncer_admin(host, port, f"RESUME {database}")


def _redis_cli(port: int, *args: str) -> str:
    return subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True, text=True, timeout=5
    ).stdout.strip()


class RedisSentinels:
    """
    One Redis master, one replica and three sentinels (quorum 2), each on its own
    port and in a temporary directory: a Redis that survives the death of its master.
    """

    MASTER_NAME = "notifications"

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="notifications-sentinel-")
        self.master_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> str:
        """The sentinels as REDIS_SENTINELS reads them."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def _spawn(self, port: int, command: list[str]) -> None:
        log = open(os.path.join(self.dir, f"{port}.log"), "ab")
        self.procs[port] = subprocess.Popen(command, stdout=log, stderr=log, cwd=self.dir)
        log.close()

    def start(self) -> RedisSentinels:
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir]
        self._spawn(self.master_port, ["redis-server", "--port", str(self.master_port), *common])
        self._spawn(
            self.replica_port,
            ["redis-server", "--port", str(self.replica_port), *common,
             "--replicaof", "127.0.0.1", str(self.master_port), "--dbfilename", "replica.rdb"],
        )
        for port in self.sentinel_ports:
            conf = os.path.join(self.dir, f"sentinel-{port}.conf")
            with open(conf, "w") as out:
                out.write(
                    f"bind 127.0.0.1\nport {port}\ndir {self.dir}\n"
                    f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
                    f"sentinel down-after-milliseconds {self.MASTER_NAME} 1000\n"
                    f"sentinel failover-timeout {self.MASTER_NAME} 10000\n"
                    f"sentinel parallel-syncs {self.MASTER_NAME} 1\n"
                )
            self._spawn(port, ["redis-sentinel", conf])
        # Ready when the replica is in sync and every sentinel knows it and the others.
        deadline = time.monotonic() + 30
        while not self._ready():
            assert time.monotonic() < deadline, f"sentinels not ready; logs in {self.dir}"
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        if "master_link_status:up" not in _redis_cli(self.replica_port, "info", "replication"):
            return False
        for port in self.sentinel_ports:
            info = _redis_cli(port, "sentinel", "master", self.MASTER_NAME).split("\n")
            fields = dict(zip(info[::2], info[1::2]))
            if fields.get("num-slaves") != "1" or fields.get("num-other-sentinels") != "2":
                return False
        return True

    def master(self) -> int | None:
        """The master's port, as the sentinels agree on it (None while they differ)."""
        answers = {_redis_cli(port, "sentinel", "get-master-addr-by-name", self.MASTER_NAME)
                   for port in self.sentinel_ports}
        if len(answers) != 1:
            return None
        return int(answers.pop().split("\n")[-1])

    def keys(self) -> int:
        """Keys in the current master."""
        return int(_redis_cli(self.master() or self.master_port, "dbsize") or 0)

    def kill_master(self) -> None:
        """SIGKILL the master: no goodbye to clients or replicas."""
        self.procs[self.master_port].kill()
        self.procs[self.master_port].wait(5)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
