"""Offline sync batches of 500 through the real stack, beside psycopg `executemany` of those rows (issue 8).

    .venv/bin/python bench/sync_batch.py [--members 2000] [--days 30] [--batches 12]

1. A scratch database with a simulated population (as bench/member_writes.py), a private redis-server,
   the app under gunicorn on loopback as `companion up` runs it.
2. `--batches` phones, each a member back online with a full batch of 500 new entries: 50 drink logs
   (the last 50 days), 300 cravings, 100 breath readings, 50 dose check-ins (open slots of their
   plan). One `POST /sync` at a time over a keep-alive connection, each phone's batch right after the
   baseline's copy of it (alternating, so both see the same machine); entries/s and per-batch p50/p99.
3. The baseline, in the same run: the same rows (grams, local dates and slots computed beforehand) sent
   with psycopg `executemany`, one transaction per batch, into copies of the four tables with their
   indexes and constraints, sync numbers from the same sequence.
4. Figures on stdout and in bench/results/sync_batch.json. Goal: app / baseline entries/s >= 0.3.
"""

# ruff: noqa: T201  (a benchmark reports on stdout)
from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.client import HTTPConnection

import psycopg
from harness import (
    Request,
    bench_members,
    dumps,
    gunicorn,
    loadavg,
    machine,
    percentile,
    private_redis,
    scratch_database,
    write_results,
)
from member_writes import open_slots

from companion import simulate
from companion.domain import drinking, localtime
from companion.runtime import sqlalchemy_url

GOAL_RATIO = 0.3
BATCH = 500
MIX = {"drink_log": 50, "craving": 300, "bac_reading": 100, "medication_checkin": 50}
TABLES = {
    "drink_log": (
        "drink_logs",
        "member_id, date, grams_ethanol, entered_standard_drinks, heavy, source, created_at, updated_at,"
        " server_updated_at",
    ),
    "craving": ("cravings", "member_id, id, recorded_at, date, intensity, triggers, created_at"),
    "bac_reading": ("bac_readings", "member_id, id, measured_at, date, bac_g_dl, created_at"),
    "medication_checkin": (
        "medication_checkins",
        "member_id, id, plan_id, scheduled_for, date, status, taken_at, created_at",
    ),
}


def batch_for(member, slots: list[datetime], now: datetime, rng: random.Random) -> tuple[list[dict], dict]:
    """One phone's 500 items, and the rows the baseline inserts for them (by item type)."""
    today = localtime.local_date(now, member.zone)
    items: list[dict] = []
    rows: dict[str, list[tuple]] = {kind: [] for kind in MIX}
    for k in range(MIX["drink_log"]):
        day = today - timedelta(days=k + 1)
        sd = Decimal(rng.randrange(0, 80)) / 10
        items.append({"type": "drink_log", "data": {"date": day.isoformat(), "standard_drinks": str(sd)}})
        grams = drinking.grams_from_standard_drinks(sd, "US")
        source = drinking.log_source(day, today=today).value
        heavy = drinking.is_heavy_day(grams, "female")
        rows["drink_log"].append((member.id, day, grams, sd, heavy, source, now, now, now))
    for kind, n in (("craving", MIX["craving"]), ("bac_reading", MIX["bac_reading"])):
        for _ in range(n):
            record_id = uuid.uuid4()
            at = now - timedelta(minutes=rng.randrange(5, 60 * 24 * 50))
            day = localtime.local_date(at, member.zone)
            if kind == "craving":
                intensity = rng.randrange(0, 11)
                data = {"id": str(record_id), "recorded_at": at.isoformat(), "intensity": intensity}
                rows[kind].append((member.id, record_id, at, day, intensity, [], now))
            else:
                bac = Decimal(rng.randrange(0, 150)) / 1000
                data = {"id": str(record_id), "measured_at": at.isoformat(), "bac_g_dl": str(bac)}
                rows[kind].append((member.id, record_id, at, day, bac, now))
            items.append({"type": kind, "data": data})
    for _ in range(MIX["medication_checkin"]):
        slot, record_id = slots.pop(), uuid.uuid4()
        taken_at = slot + timedelta(minutes=5)
        items.append(
            {
                "type": "medication_checkin",
                "data": {
                    "id": str(record_id),
                    "plan_id": str(member.plan_id),
                    "scheduled_for": slot.isoformat(),
                    "status": "taken",
                    "taken_at": taken_at.isoformat(),
                },
            }
        )
        day = localtime.local_date(slot, member.zone)
        rows["medication_checkin"].append(
            (member.id, record_id, member.plan_id, slot, day, "taken", taken_at, now)
        )
    rng.shuffle(items)
    return items, rows


def baseline_batch(conn: psycopg.Connection, rows: dict) -> float:
    """One phone's rows with executemany in one transaction: seconds taken."""
    started = time.perf_counter()
    with conn.cursor() as cur:
        for kind, (table, columns) in TABLES.items():
            marks = ", ".join(["%s"] * len(columns.split(",")))
            cur.executemany(
                f"INSERT INTO bench_{table} ({columns}, change_seq)"
                f" VALUES ({marks}, nextval('sync_change_seq'))",
                rows[kind],
            )
    conn.commit()
    return time.perf_counter() - started


def app_batch(conn: HTTPConnection, request: Request) -> tuple[float, int]:
    """One phone's `POST /sync` over a keep-alive connection: (seconds, status)."""
    _, method, path, body, token = request
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    response.read()
    return time.perf_counter() - started, response.status


def _figures(seconds: list[float]) -> dict:
    total = sum(seconds)
    return {
        "batches": len(seconds),
        "entries": len(seconds) * BATCH,
        "seconds": round(total, 3),
        "entries_per_second": round(len(seconds) * BATCH / total, 1),
        "batch_p50_ms": round(percentile([s * 1000 for s in seconds], 50), 1),
        "batch_p99_ms": round(percentile([s * 1000 for s in seconds], 99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000, help="simulated population around the load")
    parser.add_argument("--days", type=int, default=30, help="days of simulated history")
    parser.add_argument("--batches", type=int, default=12, help="phones, one full batch each")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    box, load_start = machine(), loadavg()
    print(f"machine: {box['nproc']} cpus ({box['cpu']}), load {load_start}", flush=True)
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(args.seed)
    with scratch_database("companion_bench_sync", keep=args.keep) as (url, pg), private_redis() as redis_url:
        done = simulate.simulate(pg, members=args.members, days=args.days, seed=args.seed, now=now)
        print(f"simulated {args.members:,} members x {args.days} days in {done.seconds:.0f} s", flush=True)
        phones = bench_members(pg, args.batches + 1, now)  # the first one warms up
        made = [batch_for(m, open_slots(m, now), now, rng) for m in phones]
        with psycopg.connect(pg, autocommit=True) as conn:
            for table, _ in TABLES.values():
                conn.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
        requests = [
            ("sync", "POST", "/api/v1/sync", dumps({"items": items}), m.token)
            for m, (items, _) in zip(phones, made, strict=True)
        ]
        env = {
            "DATABASE_URL": sqlalchemy_url(url),
            "REDIS_URL": redis_url,
            "RATELIMIT_DEFAULT": "1000000 per minute",
            "SECRET_KEY": "bench",
        }
        with (
            gunicorn("companion.wsgi:app", env, ready_path="/healthz") as addr,
            psycopg.connect(pg) as base_conn,
        ):
            client = HTTPConnection(*addr, timeout=600)
            baseline_batch(base_conn, made[0][1])  # warm-up, both
            assert app_batch(client, requests[0])[1] == 200
            # Alternately, one phone's batch each way: a neighbour's burst lands on both sides alike.
            base_seconds, app_seconds, errors = [], [], 0
            for request, (_, rows) in zip(requests[1:], made[1:], strict=True):
                base_seconds.append(baseline_batch(base_conn, rows))
                seconds, status = app_batch(client, request)
                app_seconds.append(seconds)
                errors += status != 200
            client.close()
        base, load = _figures(base_seconds), _figures(app_seconds)
        with psycopg.connect(pg) as conn:
            ids = [m.id for m in phones]
            stored = sum(
                conn.execute(f"SELECT count(*) FROM {table} WHERE member_id = ANY(%s)", (ids,)).fetchone()[0]
                for table, _ in TABLES.values()
            )
        load_end = loadavg()

    app = {
        **load,
        "errors": errors,
        "rows_stored": stored,
        "all_stored": stored == len(made) * BATCH,
    }
    ratio = app["entries_per_second"] / base["entries_per_second"]
    figures = {
        "benchmark": "POST /sync batches of 500 through gunicorn (issue 8)",
        "command": f".venv/bin/python bench/sync_batch.py --members {args.members} --days {args.days}"
        f" --batches {args.batches}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": box,
        "load_average_start": load_start,
        "load_average_end": load_end,
        "mix": MIX,
        "app": app,
        "baseline": base | {"what": "psycopg executemany of the same rows, one transaction per batch"},
        "ratio": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "met": ratio >= GOAL_RATIO,
    }
    path = write_results("sync_batch", figures)
    print()
    print(f"{'':30} {'entries/s':>10} {'batch p50 ms':>13} {'p99 ms':>8}")
    for name, r in (("POST /sync (500 items)", app), ("baseline executemany", base)):
        print(
            f"{name:30} {r['entries_per_second']:10,.0f} {r['batch_p50_ms']:13.0f} {r['batch_p99_ms']:8.0f}"
        )
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(f"ratio: {ratio:.2f} (goal >= {GOAL_RATIO}: {verdict}); load {load_start} -> {load_end}")
    print(f"rows stored by the app: {stored:,} of {len(made) * BATCH:,}; errors {app['errors']}")
    print(f"figures in {path.relative_to(path.parents[2])}")


if __name__ == "__main__":
    main()
