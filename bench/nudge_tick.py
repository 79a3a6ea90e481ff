"""Benchmark: one dispatcher tick for N members whose reminder is due, planned and delivered to the local
fake push gateway, beside a baseline measured in the same run (issue 4).

    .venv/bin/python bench/nudge_tick.py --members 100000 [--workers 4] [--dispatchers 2] [--threads 200]
        [--in-flight 1]
        [--planned-ahead] [--keep]

1. A scratch database on DATABASE_URL's server (else the local 127.0.0.1:5432 one), migrated to head.
2. N members bulk-inserted across five zones, each with one Android phone and a log time equal to
   the tick's minute on their own wall clock: every member has a log reminder due at the tick.
3. The fake gateway (tests/fake_push.py `serve_lean`: FCM HTTP v1's success path on asyncio, so the
   fake is not what is measured) in its own process, counting requests per nudge.
4. The tick, timed from beat's task until the last push is answered, on W pool processes (a Celery
   worker's --concurrency) taking tasks from one shared queue, as a worker takes them from Redis:
   `nudges.dispatch_due` (the beat task's body: plan every member set-based, claim FOR UPDATE SKIP
   LOCKED; a tick with more than a batch of work asks for helpers, NUDGE_DISPATCHERS in all, queued as
   tasks) and `nudges.deliver` of DELIVER_BATCH ids (record each group of T pushes as leaving, send them
   at once over the FCM client on the process's event loop, record the answers; --in-flight groups at
   once; both default to the code's PUSH_CONCURRENCY and IN_FLIGHT_GROUPS).
   A multiprocessing queue stands in for Redis, so the figure is the code's, not the broker's.
   By default the timed tick also plans every member (the issue's figure); --planned-ahead plans them
   in an untimed tick 45 minutes earlier, as beat's earlier ticks would, and times claim + delivery.
5. The baseline, same run, same rows: one raw `INSERT ... SELECT ... ON CONFLICT DO NOTHING` of the N
   rows into a copy of the nudges table (its indexes included), plus N raw HTTP posts of the same FCM
   request to the same gateway over keep-alive `http.client` connections, W processes x B threads
   (--baseline-threads, 16 as in the first runs).
6. Checks: the gateway saw exactly one request per nudge, and every row is `sent`. One table on
   stdout, figures in bench/results/nudge_tick.json; the scratch database is dropped unless --keep.

The machine is shared: the load average at start and end is printed beside the figures.
"""

# ruff: noqa: T201  (a benchmark reports on stdout)
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import platform
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from harness import loadavg

from companion import migrate
from companion.nudges import delivery_tx as delivery
from companion.population import Lines, Numbers, Rows, copy_lines, skip_fk_triggers
from companion.runtime import (
    LOCAL_HOST,
    LOCAL_POSTGRES_PORT,
    drop_database,
    ensure_database,
    libpq_url,
    sqlalchemy_url,
    with_database,
)

ROOT = Path(__file__).resolve().parent.parent
GOAL = 5000.0  # nudges per second on 2 cores (issue 4)
RESULTS = ROOT / "bench" / "results" / "nudge_tick.json"
ZONES = ("America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Sydney", "Pacific/Auckland")
FCM_PROJECT = "companion-bench"
#: --planned-ahead: the untimed planning tick runs this long before the timed one.
PLANNED_AHEAD = timedelta(minutes=45)
FCM_BEARER = "test-fcm-bearer"


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends_cpu(url: str) -> dict[int, float]:
    """CPU seconds used so far by each PostgreSQL backend connected to the scratch database (the server
    runs on this machine; a backend that cannot be read is left out)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    found = {}
    for pid in pids:
        try:
            found[pid] = process_cpu(pid)
        except (OSError, IndexError, ValueError):
            continue
    return found


# --- the gateway process -------------------------------------------------------------------------------


def serve_gateway(urls: Any) -> None:
    sys.path.insert(0, str(ROOT))  # tests/ is the repository's, not an installed package
    from tests.fake_push import serve_lean

    serve_lean(urls)


def gateway_stats(url: str, path: str = "/_stats") -> dict[str, int]:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("GET", path)
    stats = json.loads(connection.getresponse().read())
    connection.close()
    return stats


# --- the worker processes (a Celery worker's pool: `nudges.dispatch_due` and `nudges.deliver` tasks) -------


def task_worker(
    database_url: str,
    redis_url: str,
    gateway_url: str,
    threads: int,
    in_flight: int,
    dispatchers: int,
    tick: str,
    tasks,
    ready,
    done,
):
    """One pool process: takes tasks from the shared queue (Redis's stand-in) until told to stop.

    ("dispatch", helper): `nudges.dispatch_due` (its helpers and its deliveries are queued as tasks);
    ("deliver", ids): `nudges.deliver`. Reports pushes, the dispatcher ticks and CPU by kind of task."""
    from companion.app import create_app
    from companion.config import Config
    from companion.notifications import build_channels
    from companion.nudges import dispatcher_tx as services

    delivery.PUSH_CONCURRENCY, delivery.IN_FLIGHT_GROUPS = threads, in_flight
    app = create_app(
        Config.from_env(
            database_url=database_url,
            redis_url=redis_url,
            log_level="WARNING",
            nudge_dispatchers=dispatchers,
        )
    )
    channels = build_channels(
        {
            "COMPANION_FCM_PROJECT_ID": FCM_PROJECT,
            "COMPANION_FCM_ACCESS_TOKEN": FCM_BEARER,
            "COMPANION_FCM_BASE_URL": gateway_url,
            "COMPANION_PUSH_TIMEOUT_SECONDS": 30,
        }
    )
    at = datetime.fromisoformat(tick)

    def hand_out(ids) -> None:
        for start in range(0, len(ids), services.DELIVER_BATCH):
            tasks.put(("deliver", [str(i) for i in ids[start : start + services.DELIVER_BATCH]]))

    def ask_helpers(count: int) -> None:
        for _ in range(count):
            tasks.put(("dispatch", True))

    report: dict[str, Any] = {"pushes": 0, "cpu": {"dispatch": 0.0, "deliver": 0.0}, "ticks": []}
    ready.put(os.getpid())
    with app.app_context():
        while True:
            task = tasks.get()
            if task is None:
                tasks.task_done()
                break
            kind, arg = task
            cpu = time.process_time()  # every thread: the event loop's pushes included
            if kind == "dispatch":
                ran = services.dispatch_due(
                    now=lambda: at, send=hand_out, helpers=ask_helpers, helper=arg, budget=timedelta(hours=1)
                )
                report["ticks"].append(
                    {"slot": ran.slot, "planned": ran.planned, "claimed": ran.claimed, "ended": time.time()}
                )
            else:
                ids = [uuid.UUID(i) for i in arg]
                delivered = delivery.deliver(
                    ids, channels=channels, lease=timedelta(minutes=5), now=lambda: at, claimed=True
                )
                report["pushes"] += sum(delivered.pushes.values())
            report["cpu"][kind] += time.process_time() - cpu
            tasks.task_done()
    done.put(report)


# --- the baseline's raw HTTP posts ---------------------------------------------------------------------


def raw_posts(gateway_url: str, count: int, threads: int, offset: int, ready, go, results) -> None:
    host, port = gateway_url.removeprefix("http://").split(":")
    path = f"/v1/projects/{FCM_PROJECT}/messages:send"
    headers = {"Authorization": f"Bearer {FCM_BEARER}", "Content-Type": "application/json"}
    local = threading.local()

    def post(n: int) -> int:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        body = json.dumps(
            {
                "message": {
                    "token": f"raw-{n}",
                    "notification": {
                        "title": "Time for your check-in",
                        "body": "Take a moment to check in on your day.",
                    },
                    "data": {"nudge_id": f"raw-{n}"},
                    "android": {"priority": "high", "collapse_key": f"raw-{n}", "ttl": "3600s"},
                }
            }
        )
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    ready.put(os.getpid())
    go.wait()  # timed from here: a process's start-up is not the baseline's work (nor ours: see task_worker)
    with ThreadPoolExecutor(threads) as pool:
        statuses = list(pool.map(post, range(offset, offset + count)))
    results.put(sum(1 for s in statuses if s == 200))


# --- seeding -------------------------------------------------------------------------------------------


def seed(url: str, members: int, tick: datetime) -> None:
    """`members` members, each with an Android phone, in ZONES in turn, each reminded to log at the tick's
    wall time in their zone (so every reminder is due at the tick)."""
    walls = [(zone, tick.astimezone(ZoneInfo(zone)).time().replace(tzinfo=None)) for zone in ZONES]
    now = datetime.now(UTC)
    lines = Lines()
    rows = Rows(lines, Numbers())
    for i in range(1, members + 1):
        member_id = uuid.uuid4()
        zone, wall = walls[i % len(ZONES)]
        rows.user(member_id, email=f"bench-{i}@bench.invalid", role="member", created_at=now)
        rows.member(
            member_id,
            timezone=zone,
            country="US",
            sex="unspecified",
            goal_type="abstain",
            outcome_sharing=False,
            log_time=wall,
            enrolled_at=now,
            updated_at=now,
            # One log reminder a member, whatever the date: on a month's first Sunday every member would
            # also be due a PACS reminder (twice the nudges the baselines send, and "exactly once: NO").
            muted_kinds=("pacs_reminder",),
        )
        rows.device(
            uuid.uuid4(),
            member_id=member_id,
            platform="android",
            push_token=f"bench-{member_id}",
            created_at=now,
        )
    with psycopg.connect(libpq_url(url)) as conn:
        skip_fk_triggers(conn)
        copy_lines(conn, lines.by_table())
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE users, members, devices")


def baseline_insert(url: str, tick: datetime) -> float:
    """The same rows, raw: one INSERT ... SELECT into a copy of `nudges` with its indexes."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE baseline_nudges (LIKE nudges INCLUDING ALL)")
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO baseline_nudges (id, member_id, kind, dedupe_key, local_date, local_slot, zone, "
            "due_at, expires_at, template, status, attempts, send_round, created_at) "
            "SELECT gen_random_uuid(), m.id, 'log_reminder', "
            "'log_reminder:' || (%(t)s AT TIME ZONE m.timezone)::date, "
            "(%(t)s AT TIME ZONE m.timezone)::date, "
            "m.log_time, m.timezone, %(t)s, %(t)s + interval '4 hours', "
            "'log_reminder', 'pending', 0, 0, now() FROM members m "
            "ON CONFLICT (member_id, dedupe_key) DO NOTHING",
            {"t": tick},
        )
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE baseline_nudges")
    return seconds


def plan_ahead(url: str, redis_url: str, at: datetime) -> None:
    """Beat's tick at `at`: plans every member's next hour, claims nothing (nothing is due yet)."""
    from companion.app import create_app
    from companion.config import Config
    from companion.nudges import dispatcher_tx as services

    app = create_app(Config.from_env(database_url=url, redis_url=redis_url, log_level="WARNING"))
    with app.app_context():
        ran = services.dispatch_due(
            now=lambda: at, send=lambda ids: None, helpers=lambda n: None, budget=timedelta(hours=1)
        )
    app.extensions["engine"].dispose()
    assert ran.claimed == 0 and ran.planned > 0, ran


# --- the run -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, default=4, help="pool processes (a worker's --concurrency, 4 in compose)"
    )
    parser.add_argument(
        "--dispatchers", type=int, default=2, help="dispatchers at once (NUDGE_DISPATCHERS, default 2)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=delivery.PUSH_CONCURRENCY,
        help="pushes per group (nudges.delivery_tx.PUSH_CONCURRENCY)",
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=delivery.IN_FLIGHT_GROUPS,
        help="groups in flight per delivery task (nudges.delivery_tx.IN_FLIGHT_GROUPS)",
    )
    parser.add_argument(
        "--baseline-threads", type=int, default=16, help="http.client threads per baseline process"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument(
        "--planned-ahead",
        action="store_true",
        help="plan the reminders in an untimed tick 45 min before (the steady state); "
        "by default the timed tick plans them too (the issue's figure)",
    )
    args = parser.parse_args()

    from companion.nudges import dispatcher_tx as services

    server = (
        os.environ.get("DATABASE_URL")
        or f"postgresql+psycopg://postgres@{LOCAL_HOST}:{LOCAL_POSTGRES_PORT}/postgres"
    )
    url = sqlalchemy_url(with_database(server, f"companion_bench_nudges_{os.getpid()}"))
    redis_url = (
        os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )  # the app needs one; nothing is sent
    load_start = loadavg()
    ensure_database(url, recreate=True)
    context = mp.get_context("spawn")
    processes: list[Any] = []
    try:
        migrate.upgrade(url)
        urls = context.Queue()
        gateway = context.Process(target=serve_gateway, args=(urls,), daemon=True)
        gateway.start()
        processes.append(gateway)
        gateway_url = urls.get(timeout=60)
        tick = datetime.now(UTC).replace(second=0, microsecond=0)
        seeding = time.perf_counter()
        seed(url, args.members, tick)
        seeded = time.perf_counter() - seeding

        if args.planned_ahead:  # the steady state: earlier ticks planned the reminders (untimed)
            plan_ahead(url, redis_url, tick - PLANNED_AHEAD)
        tasks, ready, done = context.JoinableQueue(), context.Queue(), context.Queue()
        for _ in range(args.workers):
            worker = context.Process(
                target=task_worker,
                args=(
                    url,
                    redis_url,
                    gateway_url,
                    args.threads,
                    args.in_flight,
                    args.dispatchers,
                    tick.isoformat(),
                    tasks,
                    ready,
                    done,
                ),
            )
            worker.start()
            processes.append(worker)
        for _ in range(args.workers):
            ready.get(timeout=120)

        gateway_cpu = process_cpu(gateway.pid)
        postgres_before = backends_cpu(url)
        started = time.perf_counter()
        started_wall = time.time()
        tasks.put(("dispatch", False))  # beat's tick
        tasks.join()  # every task done, and every task they queued
        finished = time.perf_counter()
        gateway_cpu = process_cpu(gateway.pid) - gateway_cpu
        # Backends opened during the tick started from nothing; those open before count from then.
        postgres_cpu = sum(cpu - postgres_before.get(pid, 0.0) for pid, cpu in backends_cpu(url).items())
        for _ in range(args.workers):
            tasks.put(None)
        answers = [done.get(timeout=600) for _ in range(args.workers)]
        ticks = [t for a in answers for t in a["ticks"]]
        pushes = sum(a["pushes"] for a in answers)
        dispatch_cpu = sum(a["cpu"]["dispatch"] for a in answers)
        delivery_cpu = sum(a["cpu"]["deliver"] for a in answers)
        dispatched = max(t["ended"] for t in ticks) - started_wall
        tick_seconds = finished - started
        stats = gateway_stats(gateway_url)
        with psycopg.connect(libpq_url(url)) as conn:
            statuses = {
                f"{kind} {status}": count
                for kind, status, count in conn.execute(
                    "SELECT kind, status, count(*) FROM nudges GROUP BY kind, status ORDER BY 1, 2"
                )
            }

        insert_seconds = baseline_insert(url, tick)
        gateway_stats(gateway_url, "/_reset")
        results, go = context.Queue(), context.Event()
        share = -(-args.members // args.workers)
        posters = [
            context.Process(
                target=raw_posts,
                args=(
                    gateway_url,
                    min(share, args.members - k * share),
                    args.baseline_threads,
                    k * share,
                    ready,
                    go,
                    results,
                ),
            )
            for k in range(args.workers)
        ]
        for poster in posters:
            poster.start()
        for _ in posters:
            ready.get(timeout=120)
        posting = time.perf_counter()
        go.set()
        raw_ok = sum(results.get(timeout=3600) for _ in posters)
        http_seconds = time.perf_counter() - posting
        for poster in posters:
            poster.join()
        load_end = loadavg()
    finally:
        for process in processes:
            process.terminate()
        if not args.keep:
            drop_database(url)

    n = args.members
    rate = n / tick_seconds
    baseline_seconds = insert_seconds + http_seconds
    figures = {
        "members": n,
        "zones": list(ZONES),
        "workers": args.workers,
        "dispatchers": args.dispatchers,
        "planning": "planned ahead, untimed" if args.planned_ahead else "planned in the timed tick",
        "threads": args.threads,
        "in_flight": args.in_flight,
        "baseline_threads": args.baseline_threads,
        "deliver_batch": services.DELIVER_BATCH,
        "tick_seconds": round(tick_seconds, 2),
        "nudges_per_second": round(rate),
        "goal_nudges_per_second": GOAL,
        "dispatch_seconds": round(dispatched, 2),
        "dispatcher_slots": [t["slot"] for t in ticks],
        "planned": sum(t["planned"] for t in ticks),
        "claimed": sum(t["claimed"] for t in ticks),
        "pushes": pushes,
        "gateway": stats,
        "statuses": statuses,
        # CPU seconds of our processes during the tick (PostgreSQL's not counted): on a shared machine
        # the wall time says how busy the others were; this says what the tick itself costs.
        "dispatch_cpu_seconds": round(dispatch_cpu, 2),
        "delivery_cpu_seconds": round(delivery_cpu, 2),
        "gateway_cpu_seconds": round(gateway_cpu, 2),
        "postgres_cpu_seconds": round(postgres_cpu, 2),
        "all_cpu_us_per_nudge": round((dispatch_cpu + delivery_cpu + gateway_cpu + postgres_cpu) / n * 1e6),
        "python_cpu_us_per_nudge": round((dispatch_cpu + delivery_cpu) / n * 1e6),
        "baseline_insert_seconds": round(insert_seconds, 2),
        "baseline_http_seconds": round(http_seconds, 2),
        "baseline_http_ok": raw_ok,
        "baseline_nudges_per_second": round(n / baseline_seconds),
        "seed_seconds": round(seeded, 1),
        "load_average_start": load_start,
        "load_average_end": load_end,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    # Every reminder sent once, and nothing else sent (a muted kind's rows are planned, then skipped).
    muted = {key: count for key, count in statuses.items() if key.startswith("pacs_reminder ")}
    exact = (
        stats == {"requests": n, "nudges": n, "more_than_once": 0}
        and {k: v for k, v in statuses.items() if k not in muted} == {"log_reminder sent": n}
        and set(muted) <= {"pacs_reminder skipped"}
    )
    print(f"nudge tick: {n:,} members with a reminder due, {len(ZONES)} zones, one Android phone each")
    print(
        f"{os.cpu_count()} CPUs; delivery: {args.workers} processes, {services.DELIVER_BATCH} nudges a task, "
        f"groups of {args.threads} pushes, {args.in_flight} in flight; "
        f"baseline: {args.baseline_threads} threads each"
    )
    print(f"load average start {load_start} / end {load_end} (shared machine)")
    print(f"reminders {figures['planning']}")
    print()
    print(f"{'':40} {'seconds':>9} {'nudges/s':>10}")
    verdict = "met" if rate >= GOAL else "NOT met"
    label = "one tick, claimed and delivered" if args.planned_ahead else "one tick, planned and delivered"
    print(f"{label:40} {tick_seconds:9.2f} {rate:10,.0f}   goal >= {GOAL:,.0f}/s: {verdict}")
    print(
        f"{'  dispatch (plan + claim, all batches)':40} {dispatched:9.2f}   "
        f"dispatchers (slots): {figures['dispatcher_slots']}"
    )
    print(
        f"{'  CPU: dispatcher / delivery / gateway':40} {dispatch_cpu:9.2f} / {delivery_cpu:.2f} / "
        f"{gateway_cpu:.2f} s = {figures['python_cpu_us_per_nudge']} us of our CPU a nudge (gateway aside)"
    )
    print(
        f"{'  CPU: PostgreSQL backends':40} {postgres_cpu:9.2f} s; all of it "
        f"{figures['all_cpu_us_per_nudge']} us a nudge, {2 * tick_seconds:.1f} s of 2 cores' time in the tick"
    )
    print(f"{'baseline: raw INSERT ... SELECT':40} {insert_seconds:9.2f} {n / insert_seconds:10,.0f}")
    print(f"{'baseline: raw HTTP posts, same pool':40} {http_seconds:9.2f} {n / http_seconds:10,.0f}")
    print(f"{'baseline: both':40} {baseline_seconds:9.2f} {n / baseline_seconds:10,.0f}")
    print(f"{'tick / baseline':40} {tick_seconds / baseline_seconds:9.2f}x")
    print()
    print(
        f"gateway: {stats['requests']:,} requests for {stats['nudges']:,} nudges, "
        f"{stats['more_than_once']} more than once; rows: {statuses}; "
        f"exactly once: {'yes' if exact else 'NO'}"
    )
    print(f"seeded in {seeded:.1f} s; figures in {RESULTS.relative_to(ROOT)}")
    if not exact:
        sys.exit(1)


if __name__ == "__main__":
    main()
