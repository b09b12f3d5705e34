#!/usr/bin/env python3
"""
What passing the project's middleware costs the stream: the safe default
(``serve_streams``, the middleware runs, its thread is released before the
body streams) against the opt-out (NOTIFICATIONS_STREAM_MIDDLEWARE = False).

    .venv/bin/python benchmarks/stream_middleware_cost.py [--streams 1000] [--server uvicorn]

For each mode it starts one server process on 127.0.0.1 with the test
settings and a throw-away SQLite database, then measures:
  - one open at a time: median and p90 time to the ``open`` event (200 opens);
  - a burst: N streams opened at once, time until all are open;
  - idle: RSS and OS threads of the server per open idle stream.
Every phase is bounded in count and time; the servers are stopped by PID.
With PROFILE=/tmp/prefix (and py-spy on the PATH), each server's burst is
sampled into /tmp/prefix.<pid>.txt as collapsed stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# py-spy samples each server during its burst into <PROFILE>.<pid>.txt (collapsed stacks).
PROFILE = os.environ.get("PROFILE")
MODES = {
    "middleware (default)": "tests.settings",
    "opt-out": "tests.settings_stream_without_middleware",
}


def proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(env: dict[str, str], users: int) -> list[str]:
    """Migrate the database and log ``users`` users in; return their session keys."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    code = f"""
import django; django.setup()
from django.contrib.auth import get_user_model
from django.test import Client
keys = []
for i in range({users}):
    user = get_user_model().objects.create_user(f"bench{{i}}", password="x")
    client = Client(); client.force_login(user)
    keys.append(client.cookies["sessionid"].value)
print(" ".join(keys))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.split()


def start(env: dict[str, str], kind: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if kind == "uvicorn":
        command = [
            sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--backlog", "4096", "project.asgi:application",
        ]
    else:
        command = [
            sys.executable, "-m", "daphne", "-e",
            f"tcp:port={port}:interface=127.0.0.1:backlog=4096", "project.asgi:application",
        ]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


async def open_stream(port: int, key: str) -> tuple[asyncio.StreamWriter, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /notifications/stream/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: sessionid={key}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    seen = b""
    while b"event: open" not in seen:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        if not chunk:
            raise RuntimeError(f"closed: {seen[:200]!r}")
        seen += chunk
    return writer, time.perf_counter() - started


async def measure(port: int, pid: int, keys: list[str], streams: int) -> dict[str, float]:
    result: dict[str, float] = {}
    # One at a time (closing each): the latency of an open.
    times = []
    for i in range(200):
        writer, took = await open_stream(port, keys[i % len(keys)])
        times.append(took)
        writer.close()
    times.sort()
    result["open_median_ms"] = statistics.median(times) * 1000
    result["open_p90_ms"] = times[int(len(times) * 0.9)] * 1000
    await asyncio.sleep(1.0)
    rss0, threads0 = proc_status(pid, "VmRSS"), proc_status(pid, "Threads")
    # A burst, then idle.
    spy = None
    if PROFILE:
        spy = subprocess.Popen(
            ["py-spy", "record", "-p", str(pid), "-r", "200", "-t", "-f", "raw",
             "-o", f"{PROFILE}.{pid}.txt", "-d", "4", "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)
    started = time.perf_counter()
    opened = await asyncio.gather(
        *(open_stream(port, keys[i % len(keys)]) for i in range(streams))
    )
    result["burst_s"] = time.perf_counter() - started
    if spy is not None:
        spy.wait(30)
    await asyncio.sleep(2.0)
    result["rss_per_stream_kib"] = (proc_status(pid, "VmRSS") - rss0) / streams
    result["threads_added"] = proc_status(pid, "Threads") - threads0
    for writer, _ in opened:
        writer.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DJANGO_DEBUG": "0",
            "NOTIFICATIONS_MAX_STREAMS_PER_USER": "1000",
        }
        keys = prepare(env, 50)
        for mode, settings_module in MODES.items():
            proc, port = start({**env, "DJANGO_SETTINGS_MODULE": settings_module}, args.server)
            try:
                figures = asyncio.run(measure(port, proc.pid, keys, args.streams))
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            print(
                f"{mode:22} {args.server}: open {figures['open_median_ms']:.1f} ms median, "
                f"{figures['open_p90_ms']:.1f} ms p90; {args.streams} at once in "
                f"{figures['burst_s']:.2f} s; idle {figures['rss_per_stream_kib']:.1f} KiB "
                f"and {figures['threads_added']:+d} threads for {args.streams} streams",
                flush=True,
            )


if __name__ == "__main__":
    main()
