"""Member writes through the real stack, beside the least a Flask + psycopg write costs (issue 8).

    .venv/bin/python bench/member_writes.py [--members 2000] [--days 30] [--accounts 200] [--seconds 15]

1. A scratch database (DATABASE_URL's server, else 127.0.0.1:5432), migrated, with a simulated
   population (`companion simulate`) so tables and indexes are not empty; `--accounts` more members
   with a live access token and a six-times-a-day plan with open dose slots.
2. A private redis-server (rate limits and task messages; the shared one stays untouched).
3. The app under gunicorn on loopback as `companion up` runs it (2 workers x 4 threads, its gthread
   worker), the rate limit raised out of the way (its Redis round trip still happens); beside it, under
   the same gunicorn settings, bench/minimal_app.py: parse the JSON, one INSERT, one commit, 201.
4. The load: a third each `PUT /drink-logs/{date}`, `POST /cravings`, `POST /medication-checkins`, random
   members, over processes x threads keep-alive `http.client` connections; the baseline gets the same
   bytes. Each server is loaded twice, alternately (baseline, app, baseline, app), for --seconds each,
   after a warm-up; requests/s over both runs, p50/p99 over all requests.
5. Figures on stdout and in bench/results/member_writes.json. Goal: app / baseline requests/s >= 0.6.
"""

# ruff: noqa: T201  (a benchmark reports on stdout)
from __future__ import annotations

import argparse
import random
import uuid
from datetime import UTC, datetime, time, timedelta

import psycopg
from harness import (
    BENCH_TIMES,
    PLAN_DAYS,
    Request,
    bench_members,
    cpu_snapshot,
    cpu_used,
    dumps,
    gunicorn,
    loadavg,
    machine,
    private_redis,
    run_load,
    scratch_database,
    write_results,
)

from companion import simulate
from companion.domain import localtime, plans
from companion.runtime import sqlalchemy_url

GOAL_RATIO = 0.6
#: p99 of member writes at half the baseline's closed-loop rate (open loop), ms.
GOAL_P99_MS = 50


KINDS = ("drink_log", "craving", "checkin")


def build_requests(members, slots, n: int, now: datetime, rng: random.Random, kinds=KINDS) -> list[Request]:
    """`n` requests, as many of each of `kinds`, each one a new record (a new craving id, a dose slot taken
    from `slots`) or a day's log changed; `Request` = (kind, method, path, body, token)."""
    out: list[Request] = []
    for i in range(n):
        m = rng.choice(members)
        kind = kinds[i % len(kinds)]
        if kind == "drink_log":
            today = localtime.local_date(now, m.zone)
            day = today - timedelta(days=rng.randrange(0, 50))
            body = {"standard_drinks": f"{rng.randrange(0, 80) / 10:.1f}"}
            out.append((kind, "PUT", f"/api/v1/drink-logs/{day}", dumps(body), m.token))
        elif kind == "craving":
            at = now - timedelta(minutes=rng.randrange(5, 60 * 24 * 10))
            body = {"id": str(uuid.uuid4()), "recorded_at": at.isoformat(), "intensity": rng.randrange(0, 11)}
            out.append((kind, "POST", "/api/v1/cravings", dumps(body), m.token))
        else:
            if not slots[m.id]:
                continue
            slot = slots[m.id].pop()
            body = {
                "id": str(uuid.uuid4()),
                "plan_id": str(m.plan_id),
                "scheduled_for": slot.isoformat(),
                "status": "taken",
                "taken_at": (slot + timedelta(minutes=5)).isoformat(),
            }
            out.append((kind, "POST", "/api/v1/medication-checkins", dumps(body), m.token))
    return out


def open_slots(m, now: datetime) -> list[datetime]:
    start = (now - timedelta(days=PLAN_DAYS)).date()
    plan = plans.Plan(m.plan_id, "acamprosate", 333, tuple(time.fromisoformat(t) for t in BENCH_TIMES), start)
    today = localtime.local_date(now, m.zone)
    found = []
    for k in range(PLAN_DAYS - 1):  # within the 60-day backfill, all in the past
        found += [s.scheduled_for for s in plans.dose_slots(plan, today - timedelta(days=k + 1), m.zone)]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000, help="simulated population around the load")
    parser.add_argument("--days", type=int, default=30, help="days of simulated history")
    parser.add_argument("--accounts", type=int, default=200, help="members sending the load")
    parser.add_argument("--seconds", type=float, default=15.0, help="per measured run (two per server)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="connections per client process")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=KINDS, help="one kind of write instead of the mix")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    kinds = (args.only,) if args.only else KINDS

    box, load_start = machine(), loadavg()
    print(f"machine: {box['nproc']} cpus ({box['cpu']}), load {load_start}", flush=True)
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(args.seed)
    with (
        scratch_database("companion_bench_writes", keep=args.keep) as (url, pg),
        private_redis() as redis_url,
    ):
        done = simulate.simulate(pg, members=args.members, days=args.days, seed=args.seed, now=now)
        print(f"simulated {args.members:,} members x {args.days} days in {done.seconds:.0f} s", flush=True)
        members = bench_members(pg, args.accounts, now)
        with psycopg.connect(pg, autocommit=True) as conn:
            from minimal_app import TABLE_SQL

            conn.execute(TABLE_SQL)
        per_run = int(args.seconds * 700)
        slots = {m.id: open_slots(m, now) for m in members}
        warm = build_requests(members, slots, 300, now, rng, kinds)
        app_runs = [build_requests(members, slots, per_run, now, rng, kinds) for _ in range(4)]
        env = {
            "DATABASE_URL": sqlalchemy_url(url),
            "REDIS_URL": redis_url,
            "RATELIMIT_DEFAULT": "1000000 per minute",
            "SECRET_KEY": "bench",
            "BENCH_MIN_DB": pg,
        }
        load = {"processes": args.processes, "threads": args.threads, "seconds": args.seconds}
        with (
            gunicorn("companion.wsgi:app", env, ready_path="/healthz") as app_addr,
            gunicorn("minimal_app:app", {**env, "PYTHONPATH": "bench"}, ready_path="/ready") as base_addr,
        ):
            run_load(*app_addr, warm, **{**load, "seconds": 5})
            run_load(*base_addr, warm, **{**load, "seconds": 5})
            runs = {"app": [], "baseline": []}

            def measured(addr: tuple[str, int], requests: list[Request]) -> dict:
                before = cpu_snapshot(addr[1], pg)
                run = run_load(*addr, requests, **load)
                used = cpu_used(before, cpu_snapshot(addr[1], pg))
                done = max(1, sum(r["requests"] for r in run["by_kind"].values()))
                run["cpu_ms_per_request"] = {group: round(s * 1000 / done, 2) for group, s in used.items()}
                return run

            for k in range(2):
                runs["baseline"].append(measured(base_addr, app_runs[k]))
                runs["app"].append(measured(app_addr, app_runs[k]))
                print(
                    f"round {k + 1}: baseline {runs['baseline'][-1]['requests_per_second']:,.0f}/s, "
                    f"app {runs['app'][-1]['requests_per_second']:,.0f}/s",
                    flush=True,
                )
            # Open loop at half the baseline's rate: the latency a phone sees when the server is not
            # saturated (the goal's p99), for both servers on the same schedule.
            half_rate = sum(r["requests_per_second"] for r in runs["baseline"]) / len(runs["baseline"]) / 2
            paced = {
                name: run_load(*addr, app_runs[2], **load, rate=half_rate)
                for name, addr in (("baseline", base_addr), ("app", app_addr))
            }
            print(
                f"at {half_rate:,.0f}/s: baseline p99 {paced['baseline']['p99_ms']:.1f} ms,"
                f" app p99 {paced['app']['p99_ms']:.1f} ms"
                f" ({paced['app']['requests_per_second']:,.0f}/s done)",
                flush=True,
            )
            # Not a goal: the app's own latency at half of its own capacity (what sizing a fleet reads).
            own_half = sum(r["requests_per_second"] for r in runs["app"]) / len(runs["app"]) / 2
            own_paced = run_load(*app_addr, app_runs[3], **load, rate=own_half)
            print(f"at {own_half:,.0f}/s (half its own rate): app p99 {own_paced['p99_ms']:.1f} ms")
        load_end = loadavg()

    def combined(rs: list[dict]) -> dict:
        total = sum(r["requests"] for r in rs)
        return {
            "requests": total,
            "requests_per_second": round(total / sum(r["seconds"] for r in rs), 1),
            "p50_ms": round(sum(r["p50_ms"] * r["requests"] for r in rs) / total, 2),
            "p99_ms": max(r["p99_ms"] for r in rs),
            "errors": sum(r["errors"] for r in rs),
            "cpu_ms_per_request": {
                group: round(sum(r["cpu_ms_per_request"][group] * r["requests"] for r in rs) / total, 2)
                for group in rs[0]["cpu_ms_per_request"]
            },
            "runs": rs,
        }

    app, base = combined(runs["app"]), combined(runs["baseline"])
    ratio = app["requests_per_second"] / base["requests_per_second"]
    figures = {
        "benchmark": "member writes through gunicorn (issue 8)",
        "command": f".venv/bin/python bench/member_writes.py --members {args.members} --days {args.days}"
        f" --accounts {args.accounts} --seconds {args.seconds}"
        + (f" --only {args.only}" if args.only else ""),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": box,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "gunicorn": "2 workers x 4 threads (companion.gunicorn_worker, gthread), as companion up",
        "load": load,
        "mix": f"only {args.only}"
        if args.only
        else "1/3 PUT /drink-logs/{date}, 1/3 POST /cravings, 1/3 POST /medication-checkins",
        "app": app,
        "baseline": base | {"what": "bench/minimal_app.py: parse JSON, one INSERT, commit"},
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "met": ratio >= GOAL_RATIO,
        "at_half_baseline_rate": {
            "rate": round(half_rate, 1),
            "app": {k: paced["app"][k] for k in ("requests_per_second", "p50_ms", "p99_ms", "errors")},
            "baseline": {
                k: paced["baseline"][k] for k in ("requests_per_second", "p50_ms", "p99_ms", "errors")
            },
            "goal_p99_ms": GOAL_P99_MS,
            "met": paced["app"]["p99_ms"] <= GOAL_P99_MS and paced["app"]["errors"] == 0,
        },
        "at_half_its_own_rate": {
            "rate": round(own_half, 1),
            "app": {k: own_paced[k] for k in ("requests_per_second", "p50_ms", "p99_ms", "errors")},
        },
    }
    path = write_results("member_writes", figures)
    print()
    header = f"{'':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    print(f"{header}  CPU ms a request: server, postgres")
    for name, r in ((f"app ({args.only or '3 kinds'})", app), ("baseline (one INSERT)", base)):
        cpu = r["cpu_ms_per_request"]
        print(
            f"{name:28} {r['requests_per_second']:9,.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}"
            f" {r['errors']:7}  {cpu['server']:.2f}, {cpu['postgres']:.2f}"
        )
    for kind, r in app["runs"][-1]["by_kind"].items():
        print(f"  {kind:26} {'':9} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}")
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(
        f"ratio app / baseline: {ratio:.2f} (goal >= {GOAL_RATIO}: {verdict});"
        f" load {load_start} -> {load_end}"
    )
    paced_app = figures["at_half_baseline_rate"]
    verdict = "met" if paced_app["met"] else "NOT met"
    print(
        f"p99 at half the baseline's rate ({paced_app['rate']:,.0f}/s, open loop): app"
        f" {paced_app['app']['p99_ms']:.1f} ms, baseline {paced_app['baseline']['p99_ms']:.1f} ms"
        f" (goal <= {GOAL_P99_MS} ms: {verdict})"
    )
    own = figures["at_half_its_own_rate"]
    print(
        f"p99 at half its own rate ({own['rate']:,.0f}/s, open loop, not a goal): app"
        f" {own['app']['p99_ms']:.1f} ms, p50 {own['app']['p50_ms']:.1f} ms"
    )
    print(f"figures in {path.relative_to(path.parents[2])}")


if __name__ == "__main__":
    main()
