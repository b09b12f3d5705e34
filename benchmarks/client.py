"""
The load client: opens N Server-Sent Events streams against one running server
and measures it. Run by ``run.py`` in the benchmark's virtualenv; writes one JSON
object to ``--out``.

Phases, each bounded in time:

1. warm-up: one stream, one event, closed again; then the server's idle RSS;
2. open N streams (at most ``--concurrency`` connecting at once): time, failures;
   then RSS, threads and database connections with N streams open and idle;
3. broadcast ``--events`` events one after another, each carrying its send time;
   latency = receive time - send time, over every (stream, event); this
   process's garbage collector is off meanwhile, so that its pauses are not
   counted against the server;
4. reconnect storm: every client drops and reconnects at once with
   ``Last-Event-ID`` while events are published; time until all caught up,
   loss and duplicates;
5. (this project only) a burst of notifications to one user, then ``notify()``
   to the group every benchmark user belongs to.

All traffic goes to the ``--url`` given (127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time
import uuid
from typing import Any

import aiohttp

CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the server process, seen from /proc -------------------------------------------


# ``pids``: the server's processes (one, or several behind nginx); figures are summed.


def _status(pids: list[int], field: str) -> int:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    total += int(line.split()[1])
                    break
    return total


def proc_rss_kib(pids: list[int]) -> int:
    return _status(pids, "VmRSS:")


def proc_threads(pids: list[int]) -> int:
    return _status(pids, "Threads:")


def proc_cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return total


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(latencies: list[float]) -> dict[str, Any]:
    values = sorted(latencies)
    return {
        "samples": len(values),
        "p50_s": percentile(values, 0.50),
        "p99_s": percentile(values, 0.99),
        "p999_s": percentile(values, 0.999),
        "max_s": values[-1] if values else None,
    }


def completion(per_event: list[dict[str, Any]]) -> dict[str, Any]:
    """Per broadcast: the time its last frame arrived; the median and the slowest broadcast."""
    last = sorted(e["last_s"] for e in per_event if e.get("last_s") is not None)
    return {
        "median_broadcast_s": percentile(last, 0.5),
        "slowest_broadcast_s": last[-1] if last else None,
        "slowest_broadcast_seq": max(
            (e for e in per_event if e.get("last_s") is not None),
            key=lambda e: e["last_s"],
            default={},
        ).get("seq"),
    }


# -- Redis and PostgreSQL load during a phase ------------------------------------------


class Load:
    """
    Snapshots of Redis ``INFO commandstats`` (the whole Redis server: other
    clients of it count too) and of PostgreSQL's ``pg_stat_database`` for the
    benchmark's database, taken around a phase; the deltas per second and per broadcast.
    """

    def __init__(self, redis_url: str | None, pg_db: str | None):
        self.redis_url, self.pg_db = redis_url, pg_db

    async def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {"t": time.monotonic()}
        if self.redis_url:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(self.redis_url)
            try:
                stats = await client.info("commandstats")
                snap["redis"] = {k: v["calls"] for k, v in stats.items()}
                snap["redis_clients"] = (await client.info("clients"))["connected_clients"]
            finally:
                await client.aclose()
        if self.pg_db:
            import psycopg

            async with await psycopg.AsyncConnection.connect(
                "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
            ) as conn:
                cur = await conn.execute(
                    "SELECT xact_commit + xact_rollback, tup_returned, tup_fetched, "
                    "(SELECT count(*) FROM pg_stat_activity WHERE datname = %s) "
                    "FROM pg_stat_database WHERE datname = %s",
                    (self.pg_db, self.pg_db),
                )
                row = await cur.fetchone()
                if row:
                    snap["pg"] = {
                        "xacts": row[0],
                        "tup_returned": row[1],
                        "tup_fetched": row[2],
                        "connections": row[3],
                    }
        return snap

    @staticmethod
    def delta(a: dict[str, Any], b: dict[str, Any], broadcasts: int) -> dict[str, Any]:
        seconds = max(b["t"] - a["t"], 1e-9)
        out: dict[str, Any] = {"seconds": seconds}
        if "redis" in a and "redis" in b:
            per = {k: b["redis"][k] - a["redis"].get(k, 0) for k in b["redis"]}
            per = {k.removeprefix("cmdstat_"): v for k, v in per.items() if v > 0}
            total = sum(per.values())
            out["redis_commands"] = total
            out["redis_commands_per_s"] = total / seconds
            out["redis_commands_per_broadcast"] = total / broadcasts if broadcasts else None
            out["redis_top"] = dict(sorted(per.items(), key=lambda kv: -kv[1])[:6])
            out["redis_clients"] = b.get("redis_clients")
        if "pg" in a and "pg" in b:
            xacts = b["pg"]["xacts"] - a["pg"]["xacts"]
            out["pg_xacts"] = xacts
            out["pg_xacts_per_s"] = xacts / seconds
            out["pg_xacts_per_broadcast"] = xacts / broadcasts if broadcasts else None
            out["pg_tup_returned_per_broadcast"] = (
                (b["pg"]["tup_returned"] - a["pg"]["tup_returned"]) / broadcasts
                if broadcasts
                else None
            )
            out["pg_connections"] = b["pg"]["connections"]
        return out


# -- database connections held by the server -----------------------------------------


class DbConnections:
    """Counts the server's database connections: PostgreSQL backends or SQLite handles."""

    def __init__(self, kind: str, pid: int, pg_db: str | None, sqlite_path: str | None):
        # pg_db: this project and the Channels peer; sqlite_path: django-eventstream
        self.kind, self.pid, self.pg_db, self.sqlite_path = kind, pid, pg_db, sqlite_path
        self._conn: Any = None

    async def count(self) -> int | None:
        if self.pg_db:
            import psycopg

            if self._conn is None:
                self._conn = await psycopg.AsyncConnection.connect(
                    "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True
                )
            cur = await self._conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                "AND application_name <> 'bench-publisher'",
                (self.pg_db,),
            )
            return (await cur.fetchone())[0]
        if self.sqlite_path:
            target = os.path.realpath(self.sqlite_path)
            count = 0
            try:
                for fd in os.listdir(f"/proc/{self.pid}/fd"):
                    try:
                        if os.readlink(f"/proc/{self.pid}/fd/{fd}") == target:
                            count += 1
                    except OSError:
                        pass
            except OSError:
                return None
            return count
        return 0

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


class Sampler:
    """Samples the database connection count every 100 ms and keeps the maximum."""

    def __init__(self, db: DbConnections):
        self.db = db
        self.max: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.max = None
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        for _ in range(6000):  # 10 minutes at most
            value = await self.db.count()
            if value is not None:
                self.max = value if self.max is None else max(self.max, value)
            await asyncio.sleep(0.1)

    async def stop(self) -> int | None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        value = await self.db.count()
        if value is not None:
            self.max = value if self.max is None else max(self.max, value)
        return self.max


class Profiler:
    """py-spy recording the server during one phase (``--profile-dir``), or nothing."""

    def __init__(self, args: argparse.Namespace, phase: str):
        self.proc: asyncio.subprocess.Process | None = None
        self.args, self.phase = args, phase

    async def __aenter__(self) -> Profiler:
        if self.args.profile_dir:
            out = os.path.join(
                self.args.profile_dir, f"profile-{self.args.kind}-{self.args.n}-{self.phase}.txt"
            )
            self.proc = await asyncio.create_subprocess_exec(
                self.args.py_spy,
                "record",
                "--rate",
                os.environ.get("BENCH_PY_SPY_RATE", "100"),
                "--format",
                "raw",
                "--threads",
                "--gil",  # only the thread holding the GIL: where the time goes
                "--output",
                out,
                "--pid",
                str(self.args.pids[0]),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await asyncio.sleep(0.5)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# -- publishers ----------------------------------------------------------------------


class ProcessPublisher:
    """A publisher process speaking JSON lines (this project's or the peer's)."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str):
        self.argv, self.env, self.cwd = argv, env, cwd
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
            limit=1 << 20,
        )
        ready = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not ready:
            raise RuntimeError("the publisher process did not start")

    async def call(self, command: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        assert self.proc is not None
        self.proc.stdin.write((json.dumps(command) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the publisher process ended")
        return json.loads(line)

    async def broadcast(self, run: str, seq: int) -> dict[str, Any]:
        return await self.call({"cmd": "broadcast", "run": run, "seq": seq})

    async def close(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.write(b'{"cmd": "quit"}\n')
            await self.proc.stdin.drain()
            await asyncio.wait_for(self.proc.wait(), 10)
        except Exception:
            pass
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class HttpPublisher:
    """The floor's publisher: a POST into the server process."""

    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session, self.url = session, url

    async def start(self) -> None:
        pass

    async def broadcast(self, run: str, seq: int) -> dict[str, Any]:
        t = time.time()
        body = json.dumps({"t": t, "run": run, "seq": seq})
        async with self.session.post(self.url, data=body) as resp:
            await resp.read()
        return {"t": t, "write_s": time.time() - t}

    async def close(self) -> None:
        pass


# -- streams -------------------------------------------------------------------------


STREAM_PATHS = {
    "raw": "/stream/",
    "floor": "/stream/",
    "peer": "/events/",
    "channels": "/events/",
    "ours": "/notifications/stream/",
    "ours-fast": "/notifications/stream/",
    "ours-gc": "/notifications/stream/",
}
RESUMABLE = {"peer", "ours", "ours-fast", "ours-gc"}  # the others keep no history to resume from
OPEN_EVENTS = {b"open", b"stream-open"}
RESET_EVENTS = {b"reset", b"stream-reset", b"stream-error"}


class Phase:
    """What one measurement expects: a run tag, and who got which sequence number."""

    def __init__(self, name: str, expected_per_seq: int):
        self.run = f"{name}-{uuid.uuid4().hex[:8]}"
        self.expected_per_seq = expected_per_seq
        self.counts: dict[int, int] = {}
        self.latencies: list[float] = []
        self.duplicates = 0
        self.last_receive = 0.0
        self.first: dict[int, float] = {}  # seq -> earliest latency
        self.last: dict[int, float] = {}  # seq -> latest latency
        self.changed = asyncio.Event()


class Stream:
    __slots__ = ("idx", "headers", "last_id", "task", "opened", "seen", "order", "resp")

    def __init__(self, idx: int, headers: dict[str, str]):
        self.idx = idx
        self.headers = headers
        self.last_id: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.opened = False
        self.seen: set[int] = set()
        self.order: list[int] | None = None
        self.resp: aiohttp.ClientResponse | None = None


class Bench:
    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession):
        self.args = args
        self.session = session
        self.kind = args.kind
        self.stream_url = args.url + STREAM_PATHS[args.kind]
        self.phase: Phase | None = None
        self.opened = 0
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.server_closed = 0
        self.resets = 0
        self.settled = asyncio.Event()
        self.expect_open = 0
        self.old_runs: set[str] = set()
        self.replayed_old = 0  # frames of an earlier phase arriving again

    # -- one stream ------------------------------------------------------------------

    def _error(self, message: str) -> None:
        self.errors[message] = self.errors.get(message, 0) + 1

    async def run_stream(self, s: Stream, gate: asyncio.Semaphore | None, resume: bool) -> None:
        """Keep ``s`` connected: reconnect (with Last-Event-ID) if the server ends it."""
        attempts = 0
        while attempts < 5:
            attempts += 1
            outcome = await self._connect_once(s, gate, resume)
            if outcome == "ended":
                self.server_closed += 1
                resume = True
                await asyncio.sleep(0.5)
                continue
            if outcome == "failed" and attempts < 5:
                await asyncio.sleep(0.5)
                continue
            break
        if not s.opened:
            self.failed += 1
            self._settle()

    async def _connect_once(self, s: Stream, gate: asyncio.Semaphore | None, resume: bool) -> str:
        headers = dict(s.headers)
        if resume and s.last_id:
            headers["Last-Event-ID"] = s.last_id
        acquired = False
        if gate is not None:
            await gate.acquire()
            acquired = True
        try:
            resp = await self.session.get(self.stream_url, headers=headers)
        except Exception as exc:
            if acquired:
                gate.release()
            self._error(f"connect: {type(exc).__name__}")
            return "failed"
        s.resp = resp
        try:
            if resp.status != 200:
                self._error(f"HTTP {resp.status}")
                return "failed"
            buffer = b""
            while True:
                chunk = await resp.content.readany()
                if not chunk:
                    return "ended"
                now = time.time()
                buffer += chunk
                if b"\r" in buffer:
                    buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                while True:
                    end = buffer.find(b"\n\n")
                    if end < 0:
                        break
                    block, buffer = buffer[:end], buffer[end + 2 :]
                    if self._frame(s, block, now) and acquired:
                        gate.release()
                        acquired = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error(f"read: {type(exc).__name__}")
            return "failed" if not s.opened else "ended"
        finally:
            if acquired:
                gate.release()
            resp.close()
            s.resp = None

    def _frame(self, s: Stream, block: bytes, now: float) -> bool:
        """Handle one SSE frame; True when it is the stream's opening event."""
        event = b"message"
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if not line or line[0] == 58:  # ":" comment
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"data":
                data.append(value)
            elif name == b"event":
                event = value
            elif name == b"id":
                s.last_id = value.decode()
        if not data:
            return False
        if event in OPEN_EVENTS:
            if not s.opened:
                s.opened = True
                self.opened += 1
                self._settle()
            return True
        if event in RESET_EVENTS:
            self.resets += 1
            return False
        phase = self.phase
        if phase is None:
            return False
        try:
            body = json.loads(b"\n".join(data))
            payload = body.get("data") if self.kind.startswith("ours") else body
            if not isinstance(payload, dict):
                return False
            if payload.get("run") != phase.run:
                if payload.get("run") in self.old_runs:
                    self.replayed_old += 1
                return False
            seq = payload["seq"]
            sent = payload["t"]
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
        if seq in s.seen:
            phase.duplicates += 1
            return False
        s.seen.add(seq)
        if s.order is not None:
            s.order.append(seq)
        phase.counts[seq] = phase.counts.get(seq, 0) + 1
        latency = now - sent
        phase.latencies.append(latency)
        if seq not in phase.first:
            phase.first[seq] = latency
        phase.last[seq] = latency
        phase.last_receive = now
        phase.changed.set()
        return False

    def _settle(self) -> None:
        if self.opened + self.failed >= self.expect_open:
            self.settled.set()

    # -- phases ------------------------------------------------------------------------

    def start_phase(self, name: str, expected_per_seq: int, streams: list[Stream]) -> Phase:
        for s in streams:
            s.seen = set()
        if self.phase is not None and not self.phase.run.startswith("warmup"):
            self.old_runs.add(self.phase.run)
        self.phase = Phase(name, expected_per_seq)
        return self.phase

    async def wait_for(self, phase: Phase, done: Any, timeout: float) -> bool:
        """Wait until ``done()`` holds, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            phase.changed.clear()
            try:
                await asyncio.wait_for(phase.changed.wait(), min(remaining, 0.25))
            except TimeoutError:
                pass
        return True

    async def open_streams(
        self, streams: list[Stream], gate: asyncio.Semaphore | None, resume: bool, timeout: float
    ) -> tuple[bool, float]:
        self.opened = self.failed = 0
        self.expect_open = len(streams)
        self.settled = asyncio.Event()
        for s in streams:
            s.opened = False
        start = time.monotonic()
        for s in streams:
            s.task = asyncio.create_task(self.run_stream(s, gate, resume))
        try:
            await asyncio.wait_for(self.settled.wait(), timeout)
            complete = True
        except TimeoutError:
            complete = False
            # Give up on the streams still connecting, so the set of open
            # streams stays fixed for what is measured next.
            await self.drop([s for s in streams if not s.opened])
        return complete, time.monotonic() - start

    async def drop(self, streams: list[Stream]) -> None:
        tasks = [s.task for s in streams if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    pid = args.pids
    result: dict[str, Any] = {"server": args.kind, "n": args.n, "complete": False}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, connect=60, sock_read=None)
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )
    bench = Bench(args, session)
    streams: list[Stream] = []
    db = DbConnections(args.kind, pid[0], args.pg_db, args.sqlite)
    load = Load(args.redis_url, args.pg_db)
    sampler = Sampler(db)
    publisher: Any
    if args.kind in ("raw", "floor"):
        publisher = HttpPublisher(session, args.url + "/publish/")
    else:
        publisher = ProcessPublisher(json.loads(args.publisher), dict(os.environ), os.getcwd())
    await publisher.start()

    sessions = json.load(open(args.sessions)) if args.sessions else None

    def headers(i: int) -> dict[str, str]:
        h = {"Accept": "text/event-stream"}
        if sessions is not None:
            h["Cookie"] = f"sessionid={sessions[i]['session']}"
        return h

    try:
        # 1. warm-up, then the idle baseline
        warm = [Stream(0, headers(0))]
        ok, _ = await bench.open_streams(warm, None, False, 30)
        if not ok or bench.opened != 1:
            result["error"] = f"warm-up stream did not open: {bench.errors}"
            return result
        phase = bench.start_phase("warmup", 1, warm)
        await publisher.broadcast(phase.run, 0)
        await bench.wait_for(phase, lambda: phase.counts.get(0, 0) >= 1, 15)
        await bench.drop(warm)
        await asyncio.sleep(1.5)
        rss_idle = proc_rss_kib(pid)
        result["rss_idle_mib"] = rss_idle / 1024
        result["threads_idle"] = proc_threads(pid)

        # 2. open N streams
        streams = [Stream(i, headers(i)) for i in range(args.n)]
        gate = asyncio.Semaphore(args.concurrency)
        sampler.start()
        async with Profiler(args, "open"):
            complete, took = await bench.open_streams(streams, gate, False, args.open_timeout)
        db_max_open = await sampler.stop()
        open_n = bench.opened
        result["open"] = {
            "seconds": took,
            "per_s": open_n / took if took else None,
            "opened": open_n,
            "failed": args.n - open_n,
            "complete": complete,
            "errors": dict(bench.errors),
            "db_connections_max": db_max_open,
        }
        bench.errors.clear()
        await asyncio.sleep(2.0)
        rss_open = proc_rss_kib(pid)
        result["rss_open_mib"] = rss_open / 1024
        result["rss_per_stream_kib"] = (rss_open - rss_idle) / max(open_n, 1)
        result["threads_open"] = proc_threads(pid)
        if len(pid) > 1:  # how the streams spread over the processes (open files each)
            result["open_files_per_process"] = [len(os.listdir(f"/proc/{p}/fd")) for p in pid]
        # Sampled for 5 s: a process may open a connection for a moment (the
        # hub's periodic check); what matters is that none stays per stream.
        idle_samples = []
        for _ in range(20):
            idle_samples.append(await db.count())
            await asyncio.sleep(0.25)
        idle_samples = [v for v in idle_samples if v is not None]
        result["db_connections_idle"] = max(idle_samples, default=None)
        result["db_connections_idle_min"] = min(idle_samples, default=None)
        result["db_connections_idle_mean"] = (
            sum(idle_samples) / len(idle_samples) if idle_samples else None
        )
        held = open_n >= 0.99 * args.n
        result["held"] = held
        if open_n == 0:
            result["error"] = "no stream opened"
            return result

        # 3. broadcast fan-out latency. This process's own collector is off
        # meanwhile: with N streams open, one full collection here (0.3-0.5 s at
        # 10,000) would be counted as the server's latency, whichever server.
        phase = bench.start_phase("broadcast", open_n, streams)
        gc.collect()
        gc.disable()
        profiler = await Profiler(args, "broadcast").__aenter__()
        load0 = await load.snapshot()
        wall0 = time.time()
        cpu0, t0 = proc_cpu_s(pid), time.monotonic()
        per_event = []
        for seq in range(args.events):
            answer = await publisher.broadcast(phase.run, seq)
            await bench.wait_for(
                phase, lambda: phase.counts.get(seq, 0) >= open_n, args.event_timeout
            )
            per_event.append(
                {
                    "seq": seq,
                    "delivered": phase.counts.get(seq, 0),
                    "write_s": answer.get("write_s"),
                    "first_s": phase.first.get(seq),
                    "last_s": phase.last.get(seq),
                }
            )
            await asyncio.sleep(0.1)
        cpu1, t1 = proc_cpu_s(pid), time.monotonic()
        wall1 = time.time()
        gc.enable()
        load1 = await load.snapshot()
        await profiler.__aexit__()
        delivered = sum(phase.counts.values())
        expected = open_n * args.events
        result["broadcast"] = {
            **summary(phase.latencies),
            **completion(per_event),
            "window": [wall0, wall1],
            "load": Load.delta(load0, load1, args.events),
            "cpu_ms_per_broadcast": (cpu1 - cpu0) / args.events * 1000 if args.events else None,
            "events": args.events,
            "delivered": delivered,
            "expected": expected,
            "lost": expected - delivered,
            "duplicates": phase.duplicates,
            "cpu_s": cpu1 - cpu0,
            "wall_s": t1 - t0,
            "cpu_us_per_delivered": (cpu1 - cpu0) / delivered * 1e6 if delivered else None,
            "publisher_write_s_median": sorted(e["write_s"] or 0 for e in per_event)[
                len(per_event) // 2
            ],
            "first_delivery_s_median": sorted(e["first_s"] or 0 for e in per_event)[
                len(per_event) // 2
            ],
            "per_event": per_event,
        }
        if expected != delivered:
            print(
                f"!!! {args.kind} N={args.n}: broadcast lost {expected - delivered} of {expected} frames",
                file=sys.stderr,
            )

        # 4. reconnect storm
        if not args.no_storm:
            async with Profiler(args, "storm"):
                result["storm"] = await storm(args, bench, publisher, streams, open_n, sampler)

        # 5. this project only: burst to one user, notify() to a 10,000-member group
        if args.kind.startswith("ours") and not args.no_extra:
            async with Profiler(args, "burst"):
                result["burst"] = await burst(args, bench, publisher, streams)
            async with Profiler(args, "group"):
                result["group"] = await group_notify(args, bench, publisher, streams)
        result["server_closed_streams"] = bench.server_closed
        result["resets"] = bench.resets
        result["complete"] = True
        return result
    finally:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        result["client_cpu_s"] = usage.ru_utime + usage.ru_stime
        await bench.drop(streams)
        await publisher.close()
        await db.close()
        await session.close()


async def storm(
    args, bench: Bench, publisher, streams: list[Stream], open_n: int, sampler: Sampler
) -> dict[str, Any]:
    """All clients drop and reconnect at once; events are published meanwhile."""
    resumable = args.kind in RESUMABLE
    live = [s for s in streams if s.opened]
    phase = bench.start_phase("storm", len(live), streams)
    count = args.storm_events if resumable else 0
    sampler.start()
    cpu0, own0 = proc_cpu_s(args.pids), _own_cpu_s()
    t0 = time.time()
    await bench.drop(live)
    dropped_s = time.time() - t0

    async def publish() -> None:
        for seq in range(count):
            await publisher.broadcast(phase.run, seq)
            await asyncio.sleep(0.2)

    publishing = asyncio.create_task(publish())
    complete, reopen_s = await bench.open_streams(live, None, True, args.storm_timeout)
    reopened_at = time.time()
    await publishing
    remaining = max(1.0, args.storm_timeout - (time.time() - t0))
    caught = await bench.wait_for(
        phase,
        lambda: all(phase.counts.get(seq, 0) >= bench.opened for seq in range(count)),
        remaining,
    )
    db_max = await sampler.stop()
    cpu_s, client_cpu_s = proc_cpu_s(args.pids) - cpu0, _own_cpu_s() - own0
    delivered = sum(phase.counts.values())
    expected = len(live) * count
    back = [s for s in live if s.opened]
    # Loss among the clients that did get back within the time limit.
    lost_reconnected = sum(count - len(s.seen) for s in back)
    caught_up_s = None
    if caught and complete:  # every client back, and every event delivered to it
        caught_up_s = max(reopened_at, phase.last_receive) - t0
    if expected != delivered:
        print(
            f"!!! {args.kind} N={args.n}: storm lost {expected - delivered} of {expected}",
            file=sys.stderr,
        )
    return {
        "clients": len(live),
        "reopened": bench.opened,
        "reopen_failed": len(live) - bench.opened,
        "drop_s": dropped_s,
        "reopen_s": reopen_s,
        "replayed_old": bench.replayed_old,
        "events": count,
        "caught_up_s": caught_up_s,
        "delivered": delivered,
        "expected": expected,
        "lost": expected - delivered,
        "lost_among_reconnected": lost_reconnected,
        "duplicates": phase.duplicates,
        "db_connections_max": db_max,
        # Where the storm's time went: the server's CPU and the load client's
        # own, against the wall time until caught up (one core each at most).
        "cpu_s": cpu_s,
        "client_cpu_s": client_cpu_s,
        "errors": dict(bench.errors),
        "resumable": resumable,
    }


async def burst(args, bench: Bench, publisher, streams: list[Stream]) -> dict[str, Any]:
    """``--burst`` notifications to the first user, one notify() call each."""
    target = streams[0]
    phase = bench.start_phase("burst", 1, streams)
    target.order = []
    answer = await publisher.call(
        {
            "cmd": "burst",
            "run": phase.run,
            "user_id": json.load(open(args.sessions))[0]["user_id"],
            "count": args.burst,
        },
        timeout=300,
    )
    await bench.wait_for(phase, lambda: len(phase.counts) >= args.burst, 30)
    order = target.order
    target.order = None
    delivered = len(phase.counts)
    return {
        "count": args.burst,
        "write_s": answer["write_s"],
        "delivered": delivered,
        "lost": args.burst - delivered,
        "duplicates": phase.duplicates,
        "in_order": order == sorted(order),
        "all_delivered_s": (phase.last_receive - answer["t"]) if delivered else None,
    }


async def group_notify(args, bench: Bench, publisher, streams: list[Stream]) -> dict[str, Any]:
    """notify() to the group of every benchmark user; delivery to the connected ones."""
    connected = sum(1 for s in streams if s.opened)
    phase = bench.start_phase("group", connected, streams)
    answer = await publisher.call({"cmd": "group", "run": phase.run}, timeout=300)
    await bench.wait_for(phase, lambda: phase.counts.get(0, 0) >= connected, 60)
    delivered = phase.counts.get(0, 0)
    return {
        "members": answer["rows"],
        "write_s": answer["write_s"],
        "connected": connected,
        "delivered": delivered,
        "lost": connected - delivered,
        "duplicates": phase.duplicates,
        "all_delivered_s": (phase.last_receive - answer["t"]) if delivered else None,
        **{k: v for k, v in summary(phase.latencies).items() if k != "samples"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=sorted(STREAM_PATHS), required=True)
    parser.add_argument("--url", required=True, help="e.g. http://127.0.0.1:8103")
    parser.add_argument(
        "--pid", required=True, help="the server process, or its processes (comma-separated)"
    )
    parser.add_argument("--redis-url", help="Redis to read INFO commandstats from")
    parser.add_argument("--no-storm", action="store_true", help="skip the reconnect storm")
    parser.add_argument(
        "--no-extra", action="store_true", help="skip the burst and the group notify()"
    )
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--storm-events", type=int, default=5)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument(
        "--concurrency", type=int, default=50, help="streams connecting at once while opening"
    )
    parser.add_argument("--open-timeout", type=float, default=120)
    parser.add_argument("--event-timeout", type=float, default=15)
    parser.add_argument("--storm-timeout", type=float, default=90)
    parser.add_argument("--publisher", help="JSON argv of the publisher process")
    parser.add_argument("--sessions", help="JSON file of [{user_id, session}] (this project)")
    parser.add_argument("--pg-db", help="PostgreSQL database of the server")
    parser.add_argument("--sqlite", help="SQLite file of the server")
    parser.add_argument("--profile-dir", help="record the server with py-spy, one file per phase")
    parser.add_argument("--py-spy", default="py-spy")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    args.pids = [int(p) for p in args.pid.split(",")]
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(measure(args))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
