"""Benchmark of the coach dashboard's pages (issue 6), beside a minimal Flask page in the same run.

    .venv/bin/python bench/dashboard.py [--members 300] [--days 90] [--requests 200] [--seed 1] [--keep]

1. A scratch database on DATABASE_URL's server (else the local 127.0.0.1:5432 one), migrated to head.
2. A simulated caseload bulk-loaded with COPY (this script's own loader, so it depends on nothing else
   being built): one coach with `--members` members, each enrolled `--days` + 10 days ago with
   `--days` days of records up to today: a drink log on ~80% of days (some heavy), cravings, a
   naltrexone or baclofen plan with one or two doses a day and its check-ins (~85% answered, a few
   side effects of each severity), a few breath readings, flags (open, acknowledged and resolved, of
   each tier) and coach messages.
3. The app (`create_app`, the real configuration) signed in as the coach through the sign-in form,
   driven in-process by Flask's test client; each request timed around `client.get` (server time: no
   network, no browser). Pages: the flag queue, the member page over 30 and over 90 days (a different
   member each request, among the most active), and the caseload (50 members a page, summaries).
   Every page writes its audit rows, as in production.
4. The baseline, interleaved with the pages so both see the same machine: a bare Flask app that runs
   one psycopg query (the coach's unresolved flags joined to their members, 50 rows) and renders it
   with a Jinja template: the least a server-rendered page on this stack costs.
5. Median, p90 and p99 per page in a table; figures in bench/results/dashboard.json; the scratch
   database is dropped unless --keep. The load average before and after is printed: the machine is shared.
"""

# ruff: noqa: T201  (a benchmark reports on stdout)
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from flask import Flask, render_template_string
from harness import loadavg

from companion import migrate
from companion.population import Lines, Numbers, Rows, copy_lines, random_id, settle, skip_fk_triggers
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
GOAL_MEDIAN_MS = 50.0
RESULTS = ROOT / "bench" / "results" / "dashboard.json"
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "UTC")
PASSWORD = "bench password 1"
SEVERITIES = ("mild", "moderate", "severe")
RULES = (
    ("severe_side_effect", 3),
    ("withdrawal_risk", 3),
    ("persistent_side_effect", 2),
    ("relapse_pattern", 2),
    ("craving_escalation", 1),
    ("disengagement", 1),
)
#: The tables the caseload fills, in the order they are copied.
TABLES = (
    "users",
    "members",
    "coach_assignments",
    "medication_plans",
    "drink_logs",
    "cravings",
    "medication_checkins",
    "side_effect_reports",
    "bac_readings",
    "flags",
    "messages",
)


def load(url: str, *, members: int, days: int, seed: int, now: datetime) -> dict:
    """COPY the caseload in; returns the coach's email and the members by activity."""
    from companion.accounts.passwords import hash_password

    rng = random.Random(seed)
    seq = Numbers(1)
    lines = Lines()
    rows = Rows(lines, seq)

    def uid() -> uuid.UUID:
        return random_id(rng)

    ts = now.isoformat()
    coach_id, coach_email = uid(), "coach@bench.example"
    rows.user(
        coach_id,
        email=coach_email,
        display_name="Bench Coach",
        role="coach",
        password_hash=hash_password(PASSWORD),
        created_at=ts,
    )
    activity: list[tuple[int, str]] = []
    for n in range(members):
        mid = uid()
        zone = rng.choice(ZONES)
        tz = ZoneInfo(zone)
        today = now.astimezone(tz).date()
        enrolled = now - timedelta(days=days + 10)
        sex = rng.choice(("female", "male", "unspecified"))
        heavy_g = 70 if sex == "male" else 56
        goal = rng.choice(("abstain", "moderate"))
        rows.user(
            mid, email=f"m{n}@bench.example", display_name=f"Member {n}", role="member", created_at=enrolled
        )
        rows.member(
            mid,
            timezone=zone,
            country="US",
            sex=sex,
            goal_type=goal,
            weekly_limit="7.0" if goal == "moderate" else None,
            outcome_sharing=True,
            log_time="20:00",
            enrolled_at=enrolled,
            updated_at=ts,
        )
        rows.coach_assignment(uid(), member_id=mid, coach_id=coach_id, started_at=enrolled)
        plan_id = uid()
        medication, times = rng.choice((("naltrexone", ("09:00",)), ("baclofen", ("08:00", "20:00"))))
        start = today - timedelta(days=days + 5)
        rows.plan(
            plan_id,
            member_id=mid,
            medication=medication,
            dose_mg=50,
            times=[dtime.fromisoformat(t) for t in times],
            start_date=start,
            created_at=ts,
            updated_at=ts,
        )
        log_p, drink_p, adherence = rng.uniform(0.6, 0.95), rng.uniform(0.1, 0.7), rng.uniform(0.6, 0.98)
        logged = 0
        for back in range(days):
            day = today - timedelta(days=back)
            evening = datetime.combine(day, dtime(21, 0), tz).astimezone(UTC).isoformat()
            if rng.random() < log_p:
                logged += 1
                drinks = rng.randrange(1, 8) if rng.random() < drink_p else 0
                grams = drinks * 14
                rows.drink_log(
                    mid,
                    date=day,
                    grams_ethanol=grams,
                    entered_standard_drinks=drinks,
                    heavy=grams >= heavy_g,
                    source="realtime",
                    created_at=evening,
                )
                if rng.random() < 0.5:
                    rows.craving(
                        mid,
                        id=uid(),
                        recorded_at=evening,
                        date=day,
                        intensity=rng.randrange(0, 11),
                        created_at=evening,
                    )
                if rng.random() < 0.05:
                    bac = f"{rng.uniform(0, 0.12):.3f}"
                    rows.bac(mid, id=uid(), measured_at=evening, date=day, bac_g_dl=bac, created_at=evening)
            for hhmm in times:
                slot = datetime.combine(day, dtime.fromisoformat(hhmm), tz).astimezone(UTC)
                if slot > now or rng.random() > 0.85:
                    continue
                cid, taken = uid(), rng.random() < adherence
                rows.checkin(
                    mid,
                    id=cid,
                    plan_id=plan_id,
                    scheduled_for=slot,
                    date=day,
                    status="taken" if taken else "skipped",
                    taken_at=slot if taken else None,
                    created_at=slot,
                )
                if rng.random() < 0.06:
                    rows.side_effect(
                        mid,
                        checkin_id=cid,
                        medication=medication,
                        date=day,
                        code="nausea",
                        severity=rng.choice(SEVERITIES),
                    )
        activity.append((logged, str(mid)))
        for rule, tier in rng.sample(RULES, rng.choice((0, 0, 1, 1, 2))):  # one unresolved per rule
            status = rng.choice(("open", "open", "acknowledged", "resolved"))
            opened = now - timedelta(hours=rng.uniform(1, 24 * 20))
            rows.flag(
                uid(),
                member_id=mid,
                rule=rule,
                rule_version=1,
                tier=tier,
                status=status,
                evidence=[f"side_effect:{rng.randrange(10**6)}"],
                summary=f"{rule}: bench",
                symptoms=["nausea"],
                medications=[medication],
                first_seen=opened.date(),
                last_seen=opened.date(),
                created_at=opened,
                updated_at=opened,
                acknowledged_at=opened if status != "open" else None,
                resolved_at=opened if status == "resolved" else None,
                resolution_note="done" if status == "resolved" else None,
                assigned_coach_id=coach_id,
            )
        for _ in range(rng.randrange(0, 4)):
            sent = (now - timedelta(hours=rng.uniform(1, 24 * days))).isoformat()
            rows.message(
                uid(), member_id=mid, sender_id=coach_id, body="How are you doing this week?", created_at=sent
            )

    by_table = lines.by_table()
    with psycopg.connect(url) as conn:
        skip_fk_triggers(conn)  # built consistent; skip per-row FK triggers
        copy_lines(conn, {t: by_table.get(t, []) for t in TABLES})
    settle(url, seq, None, vacuum=True)  # every table, the empty ones the pages write too
    activity.sort(reverse=True)
    return {
        "coach_email": coach_email,
        "coach_id": str(coach_id),
        "members_by_activity": [m for _, m in activity],
        "rows": {t: len(by_table.get(t, [])) for t in TABLES},
    }


BASELINE_SQL = """
SELECT f.id, f.tier, f.status, f.rule, f.summary, f.created_at, coalesce(u.display_name, u.email) AS name
FROM flags f JOIN coach_assignments a ON a.member_id = f.member_id AND a.ended_at IS NULL
JOIN users u ON u.id = f.member_id
WHERE a.coach_id = %s AND f.status IN ('open', 'acknowledged')
ORDER BY f.tier DESC, f.created_at, f.id LIMIT 50
"""
BASELINE_TEMPLATE = """<!doctype html><title>flags</title><table>
{% for r in rows %}<tr id="flag-{{ r[0] }}"><td>{{ r[1] }}</td><td>{{ r[2] }}</td><td>{{ r[3] }}</td>
<td>{{ r[4] }}</td><td>{{ r[5] }}</td><td>{{ r[6] }}</td></tr>{% endfor %}</table>"""


def baseline_app(url: str, coach_id: str) -> Flask:
    """One psycopg query and one Jinja template: the floor under any server-rendered page here."""
    app = Flask("baseline")
    conn = psycopg.connect(url, autocommit=True)

    @app.get("/")
    def page() -> str:
        rows = conn.execute(BASELINE_SQL, (coach_id,)).fetchall()
        return render_template_string(BASELINE_TEMPLATE, rows=rows)

    return app


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(samples),
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(pick(0.90), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=300)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=200, help="Requests per page (and baseline).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database.")
    args = parser.parse_args()

    load_start = loadavg()
    print(
        f"machine: {os.cpu_count()} cpus, {platform.python_implementation()} {platform.python_version()}, "
        f"load {load_start}"
    )
    server = (
        os.environ.get("DATABASE_URL")
        or f"postgresql+psycopg://postgres@{LOCAL_HOST}:{LOCAL_POSTGRES_PORT}/postgres"
    )
    name = f"companion_bench_dashboard_{os.getpid()}"
    url = sqlalchemy_url(with_database(sqlalchemy_url(server), name))
    pg = libpq_url(url)
    ensure_database(url, recreate=True)
    try:
        migrate.upgrade(url)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        loaded = load(pg, members=args.members, days=args.days, seed=args.seed, now=now)
        print(f"loaded {args.members} members x {args.days} days in {time.perf_counter() - t0:.1f} s:")
        for table, n in loaded["rows"].items():
            print(f"  {table:<20} {n:>8,}")
        report = run(url, pg, loaded, args)
    finally:
        if args.keep:
            print(f"kept {url}")
        else:
            drop_database(url)
    report["load_before"], report["load_after"] = load_start, loadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"load average before {report['load_before']}, after {report['load_after']}; {RESULTS}")


def run(url: str, pg: str, loaded: dict, args: argparse.Namespace) -> dict:
    from companion.app import create_app
    from companion.config import Config

    redis_url = os.environ.get("REDIS_URL") or f"redis://{LOCAL_HOST}:6379/15"
    config = Config.from_env(
        database_url=url,
        redis_url=redis_url,
        secret_key="bench",
        session_cookie_secure=False,
        ratelimit_enabled=False,
        log_level="WARNING",
    )
    app = create_app(config)
    client = app.test_client()
    html = client.get("/dashboard/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if found is None:
        raise SystemExit("the sign-in page has no CSRF token")
    token = found.group(1)
    r = client.post(
        "/dashboard/login", data={"email": loaded["coach_email"], "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 302, r.status_code
    base = baseline_app(pg, loaded["coach_id"]).test_client()
    busiest = loaded["members_by_activity"][:50]

    pages = {
        "flag queue": lambda i: "/dashboard/flags",
        "member page, 30 days": lambda i: f"/dashboard/members/{busiest[i % len(busiest)]}?days=30",
        "member page, 90 days": lambda i: f"/dashboard/members/{busiest[i % len(busiest)]}?days=90",
        "caseload (50 a page)": lambda i: "/dashboard/members",
    }
    samples: dict[str, list[float]] = {name: [] for name in [*pages, "baseline"]}
    for name, path in pages.items():  # warm up: connections, template compilation
        assert client.get(path(0)).status_code == 200, name
    base.get("/")
    for i in range(args.requests):
        for name, path in pages.items():
            if name.startswith("caseload") and i % 4:
                continue  # the heaviest page, and not in the goal: a quarter as many samples
            t = time.perf_counter()
            response = client.get(path(i))
            samples[name].append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200, (name, response.status_code)
            t = time.perf_counter()
            base.get("/")
            samples["baseline"].append((time.perf_counter() - t) * 1000)
    report = {"members": args.members, "days": args.days, "pages": {}}
    print(f"\n{'page':<24}{'n':>5}{'median':>10}{'p90':>10}{'p99':>10}   goal (median)")
    for name, values in samples.items():
        stats = percentiles(values)
        report["pages"][name] = stats
        goal = (
            ""
            if name == "baseline" or name.startswith("caseload")
            else (f"< {GOAL_MEDIAN_MS:.0f} ms: {'met' if stats['median_ms'] < GOAL_MEDIAN_MS else 'NOT met'}")
        )
        print(
            f"{name:<24}{stats['n']:>5}{stats['median_ms']:>8.1f}ms{stats['p90_ms']:>8.1f}ms"
            f"{stats['p99_ms']:>8.1f}ms   {goal}"
        )
    with psycopg.connect(pg) as conn:
        report["audit_rows_written"] = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    print(f"audit rows written during the run: {report['audit_rows_written']:,}")
    return report


if __name__ == "__main__":
    main()
