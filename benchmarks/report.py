"""
Turn a results.json written by run.py into RESULTS.md and results.png beside it.

    python benchmarks/report.py benchmarks/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = {
    "ours": "this project",
    "ours-fast": "ours-fast (stream skips middleware)",
    "ours-gc": "ours-gc (README's GC lines)",
    "channels": "Channels AsyncHttpConsumer",
    "peer": "django-eventstream",
    "floor": "Django floor",
    "raw": "raw ASGI floor",
}
ORDER = ("ours", "ours-gc", "ours-fast", "channels", "peer", "floor", "raw")


def fmt(value, unit="", digits=0, scale=1.0):
    if value is None:
        return "–"
    return f"{value * scale:,.{digits}f}{unit}"


def ms(value):
    return (
        fmt(value, " ms", 0, 1000)
        if value is None or value >= 0.0095
        else fmt(value, " ms", 1, 1000)
    )


def idle_conns(r: dict) -> str:
    low, high = r.get("db_connections_idle_min"), r.get("db_connections_idle")
    if low is None or low == high:
        return fmt(high)
    return f"{fmt(low)}–{fmt(high)}"


def table(report: dict) -> list[str]:
    rows = [
        "| server | N | opened (failed) | open rate | p50 | p99 | p99.9 | max "
        "| median broadcast | slowest broadcast | delivered / expected "
        "| RSS / stream | CPU / delivered | DB conns idle / max | storm caught up | storm lost / dup |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: |",
    ]
    results = sorted(report["results"], key=lambda r: (r["n"], ORDER.index(r["server"])))
    for r in results:
        o = r.get("open") or {}
        b = r.get("broadcast") or {}
        s = r.get("storm") or {}
        if not o:
            rows.append(
                f"| {NAMES[r['server']]} | {r['n']:,} | failed: {r.get('error', '?')} |" + " |" * 13
            )
            continue
        delivered = f"{b.get('delivered', 0):,} / {b.get('expected', 0):,}" if b else "–"
        if b and b["delivered"] != b["expected"]:
            delivered = f"**{delivered} LOSS**"
        db_max = max(
            (
                v
                for v in (o.get("db_connections_max"), s.get("db_connections_max"))
                if v is not None
            ),
            default=None,
        )
        if s and s.get("caught_up_s") is None:
            storm = f"**not within {s.get('reopen_s', 0):.0f} s**: {s.get('reopened', 0):,} of {s.get('clients', 0):,} back"
        elif s:
            storm = fmt(s.get("caught_up_s"), " s", 1)
        if s.get("resumable"):
            lost = s.get("lost_among_reconnected")
            if lost is None:  # older result files: only reconnected clients receive anything
                lost = s.get("reopened", 0) * s.get("events", 0) - s.get("delivered", 0)
            storm_loss = f"{lost} / {s.get('duplicates')}"
            if lost or s.get("duplicates"):
                storm_loss = f"**{storm_loss}**"
        elif s:
            storm += " (reconnect only)"
            storm_loss = "n/a"
        if not s:
            storm, storm_loss = "–", "–"
        rows.append(
            f"| {NAMES[r['server']]} | {r['n']:,} | {o['opened']:,} ({o['failed']}) "
            f"| {fmt(o.get('per_s'), '/s')} | {ms(b.get('p50_s'))} | {ms(b.get('p99_s'))} "
            f"| {ms(b.get('p999_s'))} | {ms(b.get('max_s'))} | {ms(b.get('median_broadcast_s'))} "
            f"| {ms(b.get('slowest_broadcast_s'))} | {delivered} | {fmt(r.get('rss_per_stream_kib'), ' KiB', 1)} "
            f"| {fmt(b.get('cpu_us_per_delivered'), ' µs', 0)} "
            f"| {idle_conns(r)} / {fmt(db_max)} | {storm} | {storm_loss} |"
        )
    return rows


def ours_extra(report: dict) -> list[str]:
    rows = [
        "| N | burst: delivered, in order | burst: all delivered after | group notify(): rows written in "
        "| group: delivered / connected | group: all delivered after |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        if r["server"] != "ours" or not r.get("burst"):
            continue
        bu, g = r["burst"], r.get("group") or {}
        order = "in order" if bu.get("in_order") else "**OUT OF ORDER**"
        rows.append(
            f"| {r['n']:,} | {bu['delivered']:,} / {bu['count']:,}, {order} | {fmt(bu.get('all_delivered_s'), ' s', 2)} "
            f"| {fmt(g.get('write_s'), ' s', 2)} ({g.get('members', 0):,} rows) "
            f"| {g.get('delivered', 0):,} / {g.get('connected', 0):,} | {fmt(g.get('all_delivered_s'), ' s', 2)} |"
        )
    return rows


def by(report: dict) -> dict[tuple[str, int], dict]:
    return {
        (r["server"], r["n"]): r
        for r in report["results"]
        if (r.get("broadcast") or {}).get("p99_s") is not None
    }


def ratio(a, b) -> str:
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.2f}x"


def costs(report: dict) -> list[str]:
    """Where the time goes: raw ASGI, + Django, + this app, + the middleware."""
    rows = [
        "| N | raw p99 | Django's cost (floor − raw) | this app's cost (ours-fast − floor) "
        "| middleware's cost (ours − ours-fast) | CPU / frame: raw | + Django | + app | + middleware "
        "| ours p99 / raw | ours CPU / raw | ours p99 / Channels | ours p99 / django-eventstream |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    table_ = by(report)

    def p99(kind: str, n: int):
        return (table_.get((kind, n)) or {}).get("broadcast", {}).get("p99_s")

    def cpu(kind: str, n: int):
        return (table_.get((kind, n)) or {}).get("broadcast", {}).get("cpu_us_per_delivered")

    def diff(a, b, f):
        return "–" if a is None or b is None else f(a - b)

    def us(v):
        return f"{v:+,.0f} µs" if abs(v) >= 1 else f"{v:+.1f} µs"

    def dms(v):
        return f"{v * 1000:+,.0f} ms" if abs(v) >= 0.0095 else f"{v * 1000:+.1f} ms"

    for n in sorted({n for _, n in table_}):
        rows.append(
            f"| {n:,} | {ms(p99('raw', n))} | {diff(p99('floor', n), p99('raw', n), dms)} "
            f"| {diff(p99('ours-fast', n), p99('floor', n), dms)} "
            f"| {diff(p99('ours', n), p99('ours-fast', n), dms)} "
            f"| {fmt(cpu('raw', n), ' µs', 0)} | {diff(cpu('floor', n), cpu('raw', n), us)} "
            f"| {diff(cpu('ours-fast', n), cpu('floor', n), us)} "
            f"| {diff(cpu('ours', n), cpu('ours-fast', n), us)} "
            f"| {ratio(p99('ours', n), p99('raw', n))} | {ratio(cpu('ours', n), cpu('raw', n))} "
            f"| {ratio(p99('ours', n), p99('channels', n))} | {ratio(p99('ours', n), p99('peer', n))} |"
        )
    return rows


def targets(report: dict, kind: str = "ours") -> list[str]:
    """The round-two targets, checked against this run's ``kind`` rows where it measured them."""
    table_ = by(report)
    results = {(r["server"], r["n"]): r for r in report["results"]}
    ours_ns = sorted(n for k, n in table_ if k == kind)
    if not ours_ns:
        return [f"{NAMES[kind]} was not measured in this run."]
    n = 10_000 if 10_000 in ours_ns else ours_ns[-1]
    note = "" if n == 10_000 else f" (measured at N={n:,}, not 10,000)"
    ours = table_[(kind, n)]
    b = ours["broadcast"]
    raw = (table_.get(("raw", n)) or {}).get("broadcast") or {}
    lines = []

    def check(ok, text):
        mark = "–" if ok is None else ("met" if ok else "**missed**")
        lines.append(f"- {mark}: {text}")

    r1 = b["p99_s"] / raw["p99_s"] if raw.get("p99_s") else None
    c1 = (
        b["cpu_us_per_delivered"] / raw["cpu_us_per_delivered"]
        if raw.get("cpu_us_per_delivered")
        else None
    )
    ours2k_b = (table_.get((kind, 2000)) or {}).get("broadcast") or {}
    raw2k_b = (table_.get(("raw", 2000)) or {}).get("broadcast") or {}
    if ours2k_b.get("p99_s") and raw2k_b.get("p99_s"):
        check(
            ours2k_b["p99_s"] <= 1.5 * raw2k_b["p99_s"],
            f"p99 ≤ 1.5x the raw ASGI floor's at 2,000 streams: "
            f"{ratio(ours2k_b['p99_s'], raw2k_b['p99_s'])}",
        )
    else:
        check(None, "p99 ≤ 1.5x the raw ASGI floor's at 2,000 streams: not measured in this run")
    check(
        None if r1 is None else r1 <= 2,
        f"p99 ≤ 2x the raw ASGI floor's{note}: {ratio(b['p99_s'], raw.get('p99_s'))}",
    )
    check(
        None if c1 is None else c1 <= 2,
        f"CPU per delivered frame ≤ 2x the raw floor's{note}: {ratio(b['cpu_us_per_delivered'], raw.get('cpu_us_per_delivered'))}",
    )
    slow, median = b.get("slowest_broadcast_s"), b.get("median_broadcast_s")
    check(
        None if not median else slow <= 2 * median,
        f"slowest of {b['events']} broadcasts ≤ 2x the median broadcast{note}: "
        f"{ms(slow)} against {ms(median)} ({ratio(slow, median)})",
    )
    def check_storm(storm: dict, limit_s: float, what: str) -> None:
        caught = storm.get("caught_up_s")
        lost, dup = storm.get("lost_among_reconnected"), storm.get("duplicates")
        check(
            caught is not None and caught <= limit_s and not lost and not dup,
            f"{what} ≤ {limit_s:g} s, 0 lost, 0 duplicated: "
            f"{fmt(caught, ' s', 1)}, {lost} lost, {dup} duplicated",
        )

    storm = ours.get("storm") or {}
    if storm:
        check_storm(storm, 10, f"reconnect storm caught up{note}")
        maxc = report["versions"].get("services", {}).get("postgresql_max_connections")
        dbmax = storm.get("db_connections_max")
        check(
            None if maxc is None or dbmax is None else dbmax < maxc,
            f"never above the database's connection limit: {dbmax} of {maxc}",
        )
    kib = ours.get("rss_per_stream_kib")
    check(kib is not None and kib <= 20, f"≤ 20 KiB per idle stream{note}: {fmt(kib, ' KiB', 1)}")
    big = results.get((kind, 20_000))
    if big:
        o = big.get("open") or {}
        check(
            o.get("opened") == 20_000 and o.get("failed") == 0,
            f"20,000 streams open in one process with zero loss: {o.get('opened')} opened",
        )
    else:
        check(None, "20,000 streams in one process: not measured in this run")
    peer = (table_.get(("peer", 2000)) or {}).get("broadcast") or {}
    ours2k = (table_.get((kind, 2000)) or {}).get("broadcast") or {}
    if peer and ours2k:
        check(
            ours2k["p99_s"] <= peer["p99_s"] / 3,
            f"round one: p99 ≤ 1/3 of django-eventstream's at 2,000 streams: "
            f"{ratio(ours2k['p99_s'], peer['p99_s'])}",
        )
    else:
        check(None, "round one's 1/3 of django-eventstream at 2,000 streams: not measured")
    storm2k = (table_.get((kind, 2000)) or {}).get("storm") or {}
    if storm2k:
        check_storm(storm2k, 5, "round one: reconnect storm of 2,000 clients caught up")
    else:
        check(None, "round one's storm of 2,000 clients: not measured")
    floor10k = (table_.get(("floor", 10_000)) or {}).get("broadcast") or {}
    ours10k = (table_.get((kind, 10_000)) or {}).get("broadcast") or {}
    if floor10k and ours10k:
        check(
            ours10k["p99_s"] <= 1.5 * floor10k["p99_s"],
            f"round one: p99 at 10,000 streams ≤ 1.5x the Django floor's: "
            f"{ratio(ours10k['p99_s'], floor10k['p99_s'])}",
        )
    else:
        check(None, "round one's 1.5x the Django floor at 10,000 streams: not measured")
    return lines


def scale_connects(report: dict) -> list[str]:
    """Per scale-out run: the failed tries while opening, and what nginx logged (warn and up)."""
    lines = []
    for r in report.get("scale") or []:
        if "nginx_log" not in r:
            continue
        errors = (r.get("open") or {}).get("errors") or {}
        tries = ", ".join(f"{v} {k}" for k, v in errors.items()) or "none"
        logged = "; ".join(f"{v} × {k}" for k, v in r["nginx_log"].items()) or "nothing"
        lines.append(
            f"- {r['processes']} processes, opening {r['n']:,} streams (5 tries each): "
            f"failed tries: {tries}. nginx logged at warn and above: {logged}."
        )
    return [*lines, ""] if lines else []


def scale(report: dict) -> list[str]:
    rows = [
        "| processes | N | opened (failed) | delivered / expected | p50 | p99 | slowest broadcast "
        "| CPU per broadcast (all processes) | Redis commands / broadcast | Redis commands/s "
        "| PostgreSQL xacts / broadcast | PostgreSQL xacts/s | PostgreSQL connections "
        "| open files per process |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: |",
    ]
    runs = list(report.get("scale") or [])
    n_scale = runs[0]["n"] if runs else None
    one = next((r for r in report["results"] if r["server"] == "ours" and r["n"] == n_scale), None)
    if one:
        runs = [{**one, "processes": "1 (no nginx)"}, *runs]
    for r in runs:
        o, b = r.get("open") or {}, r.get("broadcast") or {}
        load = b.get("load") or {}
        if not o:
            rows.append(
                f"| {r.get('processes')} | {r['n']:,} | failed: {r.get('error', '?')} |" + " |" * 11
            )
            continue
        delivered = f"{b.get('delivered', 0):,} / {b.get('expected', 0):,}" if b else "–"
        if b and b["delivered"] != b["expected"]:
            delivered = f"**{delivered} LOSS**"
        rows.append(
            f"| {r.get('processes')} | {r['n']:,} | {o['opened']:,} ({o['failed']}) | {delivered} "
            f"| {ms(b.get('p50_s'))} | {ms(b.get('p99_s'))} | {ms(b.get('slowest_broadcast_s'))} "
            f"| {fmt(b.get('cpu_ms_per_broadcast'), ' ms', 1)} "
            f"| {fmt(load.get('redis_commands_per_broadcast'), '', 1)} "
            f"| {fmt(load.get('redis_commands_per_s'), '/s')} "
            f"| {fmt(load.get('pg_xacts_per_broadcast'), '', 1)} "
            f"| {fmt(load.get('pg_xacts_per_s'), '/s')} | {fmt(load.get('pg_connections'))} "
            f"| {', '.join(f'{x:,}' for x in r.get('open_files_per_process') or []) or '–'} |"
        )
    return rows


def gc_table(report: dict) -> list[str]:
    rows = [
        "| server | N | during the broadcasts: gen 0 count / total / max | gen 1 | gen 2 "
        "| objects gen 2 freed | whole run: gen 2 count / total / max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    found = False
    measured = []
    for r in [*report["results"], *(report.get("scale") or [])]:
        name = NAMES.get(r["server"], r["server"])
        if r.get("processes"):
            name += f", {r['processes']} processes"
        measured.append((name, r, r.get("gc")))
        if r.get("gc_client"):
            measured.append((f"{name}: load client", r, r["gc_client"]))
    for name, r, g in measured:
        if not g:
            continue
        found = True
        if g.get("error"):
            rows.append(f"| {name} | {r['n']:,} | {g['error']} | | | | |")
            continue

        def cell(gen: dict | None) -> str:
            if not gen:
                return "0"
            return f"{gen['count']:,} / {gen['total_ms']:,.0f} ms / {gen['max_ms']:.1f} ms"

        during = g.get("broadcast") or {}
        rows.append(
            f"| {name} | {r['n']:,} | {cell(during.get('0'))} | {cell(during.get('1'))} "
            f"| {cell(during.get('2'))} | {(during.get('2') or {}).get('collected', '–')} "
            f"| {cell(g['run'].get('2'))} |"
        )
    return rows if found else []


def settings_list(report: dict) -> list[str]:
    lines = []
    seen = set()
    for r in [*report["results"], *(report.get("scale") or [])]:
        key = (r["server"], r.get("processes"))
        if key in seen or not r.get("settings"):
            continue
        seen.add(key)
        name = NAMES.get(r["server"], r["server"])
        if r.get("processes"):
            name += f", {r['processes']} processes behind nginx"
        lines.append(f"- **{name}**: " + "; ".join(f"{k}: {v}" for k, v in r["settings"].items()))
    return lines


def versions(report: dict) -> list[str]:
    v = report["versions"]
    bench, peer, services = v.get("bench", {}), v.get("peer", {}), v.get("services", {})
    m = report["machine"]
    return [
        f"- Date: {report['date']}; command: `{report['command']}`; total {report.get('total_s', 0) / 60:.1f} min; "
        f"project at commit `{report.get('commit', '?')}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}"
        + (
            "; kernel settings (as found, not changed): "
            + ", ".join(f"{k} {v}" for k, v in m["kernel_settings"].items())
            if m.get("kernel_settings")
            else ""
        ),
        f"- ASGI server: {report['asgi_server']} (uvicorn {bench.get('uvicorn')}, uvloop {bench.get('uvloop')}, "
        f"httptools {bench.get('httptools')}); open-files limit {report['fd_limit']}",
        f"- This project, the Channels peer and the floors: Django {bench.get('Django')}, channels {bench.get('channels')}, "
        f"channels-redis {bench.get('channels-redis')}, psycopg {bench.get('psycopg')}",
        f"- Peer: django-eventstream {peer.get('django-eventstream', '–')}, Django {peer.get('Django', '–')}, "
        f"redis-py {peer.get('redis', '–')}",
        f"- Services: PostgreSQL {services.get('postgresql', '?')} (max_connections "
        f"{services.get('postgresql_max_connections', '?')}), Redis {services.get('redis', '?')}; "
        f"load client: aiohttp {bench.get('aiohttp')} on uvloop, one process",
    ]


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind in ORDER:
        points = sorted(
            (r["n"], r["broadcast"]["p99_s"], r.get("rss_per_stream_kib"))
            for r in report["results"]
            if r["server"] == kind
            and r.get("broadcast")
            and r["broadcast"].get("p99_s") is not None
        )
        if not points:
            continue
        ns = [p[0] for p in points]
        ax1.plot(ns, [p[1] * 1000 for p in points], marker="o", label=NAMES[kind])
        ax2.plot(ns, [p[2] for p in points], marker="o", label=NAMES[kind])
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="concurrent streams (N)",
        ylabel="broadcast p99 latency (ms)",
        title="Fan-out latency, p99",
    )
    ax2.set(
        xscale="log",
        xlabel="concurrent streams (N)",
        ylabel="server RSS per open stream (KiB)",
        title="Memory per stream",
    )
    ax2.axhline(20, color="grey", linestyle=":", linewidth=1)
    ax2.text(
        0.98,
        21,
        "target: 20 KiB",
        transform=ax2.get_yaxis_transform(),
        ha="right",
        va="bottom",
        color="grey",
        fontsize=8,
    )
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(
        f"One uvicorn process, {report['machine']['cores']} cores — {report['date'][:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else HERE / "results.json")
    report = json.loads(source.read_text())
    lines = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run.py` (see `benchmarks/run.py --help`); the raw figures are in "
        "`benchmarks/results.json`. Each server ran alone, one after the other, under the same ASGI server "
        "against the same Redis, driven by the same load client.",
        "",
        *versions(report),
        "",
        "![p99 latency and memory per stream](results.png)",
        "",
        "## Streams, broadcast fan-out, reconnect storm",
        "",
        *table(report),
        "",
        "## Where the time goes",
        "",
        "Differences of p99 latency and of server CPU per delivered frame between neighbouring "
        "rows of the same size: the raw ASGI floor is the physical limit of one uvicorn process, "
        "the Django floor adds Django's request handling, ours-fast adds this app, the headline row "
        "adds the project's middleware for the stream.",
        "",
        *costs(report),
        "",
        "## Targets",
        "",
        "The headline row (this project, the default install):",
        "",
        *targets(report),
        "",
        *(
            [
                "With the README's garbage-collector lines (ours-gc, otherwise the same install):",
                "",
                *targets(report, "ours-gc"),
                "",
            ]
            if any(r["server"] == "ours-gc" for r in report["results"])
            else []
        ),
        "## This project only: burst to one user, notify() to a group of every benchmark user",
        "",
        *ours_extra(report),
        "",
    ]
    if report.get("scale"):
        lines += [
            "## Scale-out: this project in several processes behind nginx",
            "",
            "The README's nginx configuration in front of uvicorn processes of this project "
            "(same flags as above) sharing PostgreSQL and Redis; the streams are spread over the "
            "processes by nginx. CPU per broadcast is summed over the processes. Redis commands "
            "come from `INFO commandstats` deltas over the broadcasts (the whole Redis server: "
            "anything else using it counts too); PostgreSQL transactions from `pg_stat_database` "
            "of the benchmark's database, connections from `pg_stat_activity` (publisher included).",
            "",
            *scale(report),
            "",
            *scale_connects(report),
        ]
    gc_rows = gc_table(report)
    if gc_rows:
        lines += [
            "## Garbage collection in the servers",
            "",
            "Every collection timed by a `gc.callbacks` hook (benchmarks/gcstats/sitecustomize.py, "
            "`--gc-stats`): count / total time / longest pause, per generation."
            + (
                f" This project's servers called `gc.set_threshold({report['gc_threshold']})` "
                "at start-up (`--gc-threshold`)."
                if report.get("gc_threshold")
                else ""
            )
            + (
                " This project's servers called `gc.freeze()` after start-up (`--gc-freeze`)."
                if report.get("gc_freeze")
                else ""
            )
            + " Client: the load client's own collections during the broadcasts.",
            "",
            *gc_rows,
            "",
        ]
    lines += ["## Settings that differ from each server's defaults", "", *settings_list(report), ""]
    if report.get("skipped"):
        lines += [
            "Skipped: "
            + "; ".join(f"{s['server']} at N={s['n']:,} ({s['why']})" for s in report["skipped"]),
            "",
        ]
    lines += [
        "## How to read it",
        "",
        f"- Latency: send time (in the payload, taken just before the publish call) to the time the "
        f"client parsed the frame, over every stream and each of {report['events']} broadcasts sent one "
        "after another (the next once the previous reached every stream or 15 s passed). "
        "p99.9 and max are over every (stream, broadcast); a broadcast's completion time is when "
        "its last frame arrived (median and slowest broadcast).",
        "- RSS / stream: (server RSS with N streams open and idle − RSS after a warm-up) / N. "
        "CPU / delivered: server CPU seconds during the broadcasts / frames delivered.",
        "- DB conns: PostgreSQL backends of the server's database (this project, the Channels peer), "
        "SQLite handles open in the server process (django-eventstream); idle = N streams open and quiet (lowest–highest of 20 samples "
        "over 5 s), max = highest while opening "
        "and during the storm (sampled every 100 ms).",
        "- Storm: every client drops at once and reconnects at once with Last-Event-ID while 5 events "
        "are published 0.2 s apart; caught up = the last client is back and has every event (limit 90 s; "
        "a client retries a failed connect up to 5 times). Lost counts events missing at clients that "
        "got back. The floors and the Channels peer keep no history, so they only reconnect.",
        "- Middleware: the floors and django-eventstream run with none, the Channels peer with "
        "`AuthMiddlewareStack`; this project runs the demo project (`project/settings.py`, Django's "
        "default middleware) with the middleware running for the stream (headline row and "
        "`ours-gc`, which adds the README's garbage-collector lines) and, as "
        "`ours-fast`, with the stream skipping it (`NOTIFICATIONS_STREAM_MIDDLEWARE = False`).",
        "- The load client is one Python process on the same 2 cores; its own time is in the latencies. "
        "Its garbage collector is off during the broadcasts (it collects before them and after): "
        "with N streams open, a full collection in the client would be counted as any server's latency.",
        "",
    ]
    # RESULTS.md and results.png go next to the JSON they are made from.
    (source.parent / "RESULTS.md").write_text("\n".join(lines))
    plot(report, source.parent / "results.png")


if __name__ == "__main__":
    main()
