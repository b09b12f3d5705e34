#!/usr/bin/env python3
"""
How long notify() takes to return while Redis is paused.

    python benchmarks/notify_paused.py              30 calls live, 30 paused (8 s pause)
    python benchmarks/notify_paused.py --calls 100 --pause 8

Starts a private redis-server on a free 127.0.0.1 port (stopped by its PID at the
end; the machine's Redis is never paused), migrates a throw-away SQLite database,
and times
``api.notify(user, ...)`` with the Redis channel layer of the demo project:

  live    Redis answering
  paused  during ``CLIENT PAUSE <pause>``, each call in autocommit (so its commit
          and poke are inside the timing)

then reports how long after the pause ended the queued pokes reached Redis.
Needs redis-server and redis-cli on PATH; run it with the project's virtualenv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while redis_cli(port, "ping") != "PONG":
        if time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit("redis-server did not start in 10 s")
        time.sleep(0.05)
    return proc


def redis_cli(port: int, *args: str) -> str:
    result = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=5)
    return result.stdout.strip()


def figures(label: str, durations: list[float]) -> str:
    ms = sorted(d * 1000 for d in durations) or [float("nan")]
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    return (
        f"{label:<8} n={len(ms):<4} median {statistics.median(ms):7.2f} ms   "
        f"p95 {p95:7.2f} ms   max {ms[-1]:7.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=30, help="notify() calls per phase (default 30)")
    parser.add_argument("--pause", type=float, default=8.0, help="seconds Redis is paused (default 8)")
    args = parser.parse_args()
    if not 1 <= args.calls <= 1000 or not 0.5 <= args.pause <= 60:
        parser.error("--calls must be 1..1000 and --pause 0.5..60 seconds")

    port = free_port()
    redis = start_redis(port)
    workdir = tempfile.mkdtemp(prefix="notify-paused-")
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir}/db.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    sys.path.insert(0, str(REPO))
    try:
        run(args, port)
    finally:
        redis.terminate()
        redis.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def run(args: argparse.Namespace, port: int) -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from notifications import api, delivery

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench-paused")
    flush = getattr(delivery, "flush", lambda timeout: True)

    # The part of each call that hands the poke over (the rest is the database).
    publishing: list[float] = []
    send = delivery._send

    def timed_send(messages):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            send(messages)
        finally:
            publishing.append(time.perf_counter() - started)

    delivery._send = timed_send

    api.notify(user, "warm-up")
    flush(5)
    live = []
    publishing.clear()
    for i in range(args.calls):
        started = time.perf_counter()
        api.notify(user, f"live {i}")
        live.append(time.perf_counter() - started)
    flush(5)
    live_publishing = list(publishing)
    publishing.clear()

    redis_cli(port, "CLIENT", "PAUSE", str(int(args.pause * 1000)))
    pause_ends = time.monotonic() + args.pause
    paused = []
    for i in range(args.calls):
        started = time.perf_counter()
        api.notify(user, f"paused {i}")
        paused.append(time.perf_counter() - started)
        if time.monotonic() > pause_ends - 0.5:
            break
    flush(args.pause + 15)
    delivered = time.monotonic() - pause_ends

    print(f"notify() call time, Redis channel layer, {connection.vendor}, pause {args.pause:g} s")
    print("whole notify() call (database write, commit, poke hand-over):")
    print(figures("live", live))
    print(figures("paused", paused))
    print("of which the poke hand-over (after commit):")
    print(figures("live", live_publishing))
    print(figures("paused", publishing))
    print(f"queued pokes reached Redis {delivered:+.2f} s after the pause ended")


if __name__ == "__main__":
    main()
