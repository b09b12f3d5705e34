"""
Turn a results.json written by run.py into RESULTS.md and results.png beside it.

    python benchmarks/report.py benchmarks/results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = {"floor": "floor (bare Django view)", "peer": "django-eventstream", "ours": "this project"}
ORDER = ("ours", "peer", "floor")


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
        "| server | N | opened (failed) | open rate | p50 | p99 | max | delivered / expected "
        "| RSS / stream | CPU / delivered | DB conns idle / max | storm caught up | storm lost / dup |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    results = sorted(report["results"], key=lambda r: (r["n"], ORDER.index(r["server"])))
    for r in results:
        o = r.get("open") or {}
        b = r.get("broadcast") or {}
        s = r.get("storm") or {}
        if not o:
            rows.append(
                f"| {NAMES[r['server']]} | {r['n']:,} | failed: {r.get('error', '?')} |" + " |" * 10
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
            f"| {ms(b.get('max_s'))} | {delivered} | {fmt(r.get('rss_per_stream_kib'), ' KiB', 1)} "
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


def versions(report: dict) -> list[str]:
    v = report["versions"]
    bench, peer, services = v.get("bench", {}), v.get("peer", {}), v.get("services", {})
    m = report["machine"]
    return [
        f"- Date: {report['date']}; command: `{report['command']}`; total {report.get('total_s', 0) / 60:.1f} min; "
        f"project at commit `{report.get('commit', '?')}`",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, Python {m['python']}",
        f"- ASGI server: {report['asgi_server']} (uvicorn {bench.get('uvicorn')}, uvloop {bench.get('uvloop')}, "
        f"httptools {bench.get('httptools')}); open-files limit {report['fd_limit']}",
        f"- This project and the floor: Django {bench.get('Django')}, channels {bench.get('channels')}, "
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
    ax2.axhline(64, color="grey", linestyle=":", linewidth=1)
    ax2.text(
        0.98,
        65,
        "target: 64 KiB",
        transform=ax2.get_yaxis_transform(),
        ha="right",
        va="bottom",
        color="grey",
        fontsize=8,
    )
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
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
        "## This project only: burst to one user, notify() to a 10,000-member group",
        "",
        *ours_extra(report),
        "",
    ]
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
        "after another (the next once the previous reached every stream or 15 s passed).",
        "- RSS / stream: (server RSS with N streams open and idle − RSS after a warm-up) / N. "
        "CPU / delivered: server CPU seconds during the broadcasts / frames delivered.",
        "- DB conns: PostgreSQL backends of the server's database (this project), SQLite handles open "
        "in the server process (peer); idle = N streams open and quiet (lowest–highest of 20 samples "
        "over 5 s), max = highest while opening "
        "and during the storm (sampled every 100 ms).",
        "- Storm: every client drops at once and reconnects at once with Last-Event-ID while 5 events "
        "are published 0.2 s apart; caught up = the last client is back and has every event (limit 90 s; "
        "a client retries a failed connect up to 5 times). Lost counts events missing at clients that "
        "got back. The floor keeps no history, so it only reconnects.",
        "- Middleware: the floor and the peer run with none; this project runs the demo project "
        "(`project/settings.py`, Django's default middleware) with its `asgi.py`, whose stream passes "
        "that middleware (`notifications.asgi.serve_streams`, the default install).",
        "- The load client is one Python process on the same 2 cores; its own time is in the latencies.",
        "",
    ]
    # RESULTS.md and results.png go next to the JSON they are made from.
    (source.parent / "RESULTS.md").write_text("\n".join(lines))
    plot(report, source.parent / "results.png")


if __name__ == "__main__":
    main()
