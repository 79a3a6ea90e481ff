"""`make bench`: every benchmark at a size that fits in under 15 minutes on 2 cores, one table, and
bench/results.json (issue 8).

Each benchmark runs as its own process (`bench/<name>.py`, as documented in docs/performance.md) and
writes bench/results/<name>.json; this reads those files and prints each figure beside its baseline and
goal. The sizes here are smaller than the issues' goals (say 100,000 members): the full-size runs are
the separate commands in docs/performance.md. A benchmark that fails or is missing is reported, and the
others still run.

    .venv/bin/python bench/run_all.py [--only member_writes,sync_batch]
"""

# ruff: noqa: T201  (a benchmark reports on stdout)
from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from harness import RESULTS, ROOT, loadavg, machine

#: (name, arguments, timeout in seconds): what `make bench` runs, in this order.
BENCHES: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("member_writes", ("--members", "1000", "--days", "30", "--accounts", "100", "--seconds", "10"), 170),
    ("sync_batch", ("--members", "1000", "--days", "30", "--batches", "3"), 170),
    ("nudge_tick", ("--members", "2000"), 120),
    ("safety_sweep", ("--members", "2000", "--days", "30"), 240),
    ("export", ("--members", "1000", "--days", "90"), 100),
    ("dashboard", ("--members", "300", "--days", "90", "--requests", "30"), 100),
    ("flag_latency", ("--members", "200", "--outage-members", "20"), 600),
)
#: A benchmark past its time gets SIGINT (its own clean-up runs: scratch database, servers), then this
#: long before its whole process group is killed.
GRACE_SECONDS = 30
SUMMARY = ROOT / "bench" / "results.json"


def _get(d: dict, *path: str, default=None):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return default
        d = d[key]
    return d


def rows_of(name: str, r: dict) -> list[tuple[str, str, str, str, str]]:
    """(figure, value, baseline, goal, met) rows for one benchmark's JSON."""

    def yes(ok: object) -> str:
        return "-" if ok is None else ("yes" if ok else "NO")

    if name == "member_writes":
        app, base = r["app"], r["baseline"]
        return [
            ("requests/s (drink log, craving, check-in)", f"{app['requests_per_second']:,.0f}",
             f"{base['requests_per_second']:,.0f} one-INSERT Flask", f"ratio >= {r['goal_ratio']}",
             f"{yes(r['met'])} ({r['ratio']:.2f})"),
            ("  p50 / p99 ms", f"{app['p50_ms']:.0f} / {app['p99_ms']:.0f}",
             f"{base['p50_ms']:.0f} / {base['p99_ms']:.0f}", "", ""),
        ]  # fmt: skip
    if name == "sync_batch":
        app, base = r["app"], r["baseline"]
        return [
            ("POST /sync of 500: entries/s", f"{app['entries_per_second']:,.0f}",
             f"{base['entries_per_second']:,.0f} executemany", f"ratio >= {r['goal_ratio']}",
             f"{yes(r['met'])} ({r['ratio']:.2f})"),
            ("  one batch p50 ms", f"{app['batch_p50_ms']:,.0f}", f"{base['batch_p50_ms']:,.0f}", "", ""),
        ]  # fmt: skip
    if name == "nudge_tick":
        rate, goal = r.get("nudges_per_second"), r.get("goal_nudges_per_second")
        return [
            (f"one tick, {r.get('members', 0):,} members: nudges/s", f"{rate:,}",
             f"{r.get('baseline_nudges_per_second', 0):,} raw SQL + HTTP", f">= {goal:,.0f}/s",
             yes(rate >= goal if rate is not None and goal else None)),
        ]  # fmt: skip
    if name == "safety_sweep":
        first, steady = r.get("sweep_first", {}), r.get("sweep_steady", {})
        base = _get(r, "baseline", "before_seconds", default=0)
        goal, event, goal_ms = r.get("goal_sweep_seconds"), r.get("one_event", {}), r.get("goal_event_p99_ms")
        members = _get(r, "population", "members", default=0)
        return [
            (f"sweep, {members:,} members: first / steady s",
             f"{first.get('seconds', 0):.1f} / {steady.get('seconds', 0):.1f}", f"{base:.2f} s plain SQL",
             f"<= {goal} s (at 100k)", "-"),
            ("  one new entry: scan p99 ms", f"{event.get('scan_p99_ms', 0):.1f}",
             f"rules alone {event.get('evaluate_p99_ms', 0):.1f}", f"<= {goal_ms} ms",
             yes(event.get("scan_p99_ms", 1e9) <= goal_ms if goal_ms else None)),
        ]  # fmt: skip
    if name == "export":
        members = _get(r, "population", "members", default=0)
        days = _get(r, "population", "days", default=0)
        return [
            (f"insurer export, {members:,} x {days} d: s", f"{_get(r, 'export', 'seconds', default=0):.2f}",
             f"{_get(r, 'baseline', 'mean_seconds', default=0):.2f} s GROUP BY",
             f"ratio <= {r.get('goal_ratio')}",
             f"{yes(r.get('ratio_met'))} ({r.get('ratio', 0):.1f})"),
            ("  peak RSS MB", f"{r.get('peak_rss_mb', 0):.0f}", "", f"<= {r.get('goal_peak_mb')}",
             yes(r.get("peak_met"))),
        ]  # fmt: skip
    if name == "dashboard" and isinstance(r.get("pages"), dict):
        pages = r["pages"]
        base = pages.get("baseline", {})
        return [
            (f"dashboard {page}: median / p99 ms", f"{p.get('median_ms', 0):.0f} / {p.get('p99_ms', 0):.0f}",
             f"{base.get('median_ms', 0):.0f} / {base.get('p99_ms', 0):.0f} bare Flask page", "", "-")
            for page, p in pages.items()
            if page != "baseline"
        ]  # fmt: skip
    if name == "flag_latency":
        overall, first = r["overall"], r["groups"]["burst_1"]
        outage, ping, goals = r["after_redis_returns"], r["baseline_ping_round_trip"], r["goals"]
        return [
            (f"flag latency, {r['members']} members: p50 / p99 s", f"{overall['p50_s']} / {overall['p99_s']}",
             f"{ping['p50_s']} / {ping['p99_s']} s ping task", f"p99 <= {goals['p99_s']:.0f} s",
             yes(overall["p99_s"] <= goals["p99_s"])),
            ("  first entry after a quiet spell: p50 s", f"{first['p50_s']}", "",
             f"<= {goals['first_entry_p50_s']:.0f} s", yes(first["p50_s"] <= goals["first_entry_p50_s"])),
            ("  written while Redis was down: max s after its return", f"{outage['max_s']}", "",
             f"<= {goals['after_redis_s']:.0f} s", yes(outage["max_s"] <= goals["after_redis_s"])),
            ("  never flagged; scans per entry, 50-entry bursts",
             f"{r['never_flagged']}; {r['scans_per_entry_burst_50']}", "", "0; <= 2 a window",
             yes(r["never_flagged"] == 0)),
        ]  # fmt: skip
    # Any other benchmark: its top-level figures as they are.
    shown = {
        k: v
        for k, v in r.items()
        if isinstance(v, (int, float, str)) and k not in ("load_before", "load_after")
    }
    return [(f"{name}: {k}", str(v), "", "", "") for k, v in list(shown.items())[:8]] or [
        (name, f"see bench/results/{name}.json", "", "", "")
    ]


def run(script: Path, bench_args: tuple[str, ...], timeout: int) -> str:
    """Run one benchmark in its own process group, so nothing it started outlives it."""
    child = subprocess.Popen([sys.executable, str(script), *bench_args], cwd=ROOT, start_new_session=True)
    try:
        code = child.wait(timeout)
        return "ok" if code == 0 else f"failed (exit {code})"
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        return f"timed out after {timeout} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated benchmark names")
    args = parser.parse_args()
    chosen = set(args.only.split(",")) if args.only else None
    box, load_start, started = machine(), loadavg(), time.perf_counter()
    print(
        f"machine: {box['nproc']} cpus ({box['cpu']}), {box['memory_mb']} MB, load {load_start}", flush=True
    )
    summary: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": box,
        "benchmarks": {},
    }
    for name, bench_args, timeout in BENCHES:
        if chosen and name not in chosen:
            continue
        script = ROOT / "bench" / f"{name}.py"
        entry: dict = {"command": f".venv/bin/python bench/{name}.py {' '.join(bench_args)}"}
        summary["benchmarks"][name] = entry
        if not script.exists():
            print(f"\n== {name}: skipped, bench/{name}.py is not there (yet)", flush=True)
            entry["status"] = "missing"
            continue
        print(f"\n== {name}: {entry['command']}", flush=True)
        (RESULTS / f"{name}.json").unlink(missing_ok=True)
        t0 = time.perf_counter()
        entry["status"] = run(script, bench_args, timeout)
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        result = RESULTS / f"{name}.json"
        if result.exists():  # written by this run (removed above), even if it overran while cleaning up
            entry["results"] = json.loads(result.read_text())
        print(f"== {name}: {entry['status']} in {entry['seconds']} s", flush=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["load_average_start"], summary["load_average_end"] = load_start, loadavg()
    SUMMARY.write_text(json.dumps(summary, indent=2, default=str) + "\n")

    table = [("figure", "value", "baseline (same run)", "goal", "met?")]
    for name, entry in summary["benchmarks"].items():
        if "results" not in entry:
            table.append((name, entry["status"], "", "", "-"))
            continue
        try:
            table += rows_of(name, entry["results"])
        except (KeyError, TypeError, ValueError) as exc:  # another engineer changed the file's shape
            table.append((name, f"unreadable figures ({exc!r})", "", "", "-"))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    print()
    for k, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print(
        f"\nmake bench: {summary['seconds'] / 60:.1f} min,"
        f" load {load_start} -> {summary['load_average_end']};"
        f" sizes are smaller than the issues' goals (full-size commands: docs/performance.md);"
        f" figures in {SUMMARY.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
