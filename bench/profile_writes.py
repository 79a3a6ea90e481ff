"""Where a member write's time goes: the app in-process (Flask's test client, no HTTP server), a loop of
the same request, counting PostgreSQL statements and Redis commands per request, with cProfile.

    .venv/bin/python bench/profile_writes.py [--kind drink_log|craving|checkin|mix|sync] [--requests 300]

A scratch database (a small simulated population, 40 bench members with tokens and plans) and a private
redis-server, as the other write benchmarks. Prints per request: wall ms, CPU ms, statements (with
their text, once), Redis commands; then cProfile's top functions by cumulative and by own time.
"""

# ruff: noqa: T201  (a benchmark reports on stdout)
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import time
from collections import Counter
from datetime import UTC, datetime

import redis as redis_lib
from harness import bench_members, dumps, private_redis, scratch_database
from member_writes import build_requests, open_slots
from sqlalchemy import event
from sync_batch import batch_for

from companion import simulate
from companion.runtime import sqlalchemy_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--kind", default="drink_log", choices=("drink_log", "craving", "checkin", "mix", "sync")
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--plain", action="store_true", help="no cProfile: wall and CPU a request as they are"
    )
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(1)
    with scratch_database("companion_bench_profile") as (url, pg), private_redis() as redis_url:
        simulate.simulate(pg, members=200, days=10, seed=1, now=now)
        # A sync batch is a phone back online: one member each, so its drink logs are new days, as in
        # bench/sync_batch.py (a member synced twice would send edits down the per-item path).
        members = bench_members(pg, args.requests + 20 if args.kind == "sync" else 40, now)
        slots = {m.id: open_slots(m, now) for m in members}
        os.environ.update(
            DATABASE_URL=sqlalchemy_url(url), REDIS_URL=redis_url, RATELIMIT_DEFAULT="1000000 per minute"
        )
        from companion.app import create_app
        from companion.config import Config

        app = create_app(Config.from_env())
        client = app.test_client()
        if args.kind == "sync":  # one phone's batch of 500 (bench/sync_batch.py's mix) a request
            pool = [
                (
                    "sync",
                    "POST",
                    "/api/v1/sync",
                    dumps({"items": batch_for(m, slots[m.id], now, rng)[0]}),
                    m.token,
                )
                for m in (members * (1 + (args.requests + 20) // len(members)))[: args.requests + 20]
            ]
        else:
            pool = build_requests(members, slots, args.requests * 6 + 60, now, rng)
            if args.kind != "mix":
                pool = [r for r in pool if r[0] == args.kind]
        warm, measured = pool[:20], pool[20 : 20 + args.requests]
        statements: Counter[str] = Counter()
        engine = app.extensions["engine"]

        @event.listens_for(engine, "before_cursor_execute")
        def _count(conn, cursor, statement, parameters, context, executemany):
            statements[" ".join(statement.split())[:160]] += 1

        def send(r):
            _kind, method, path, body, token = r
            response = client.open(
                path,
                method=method,
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert response.status_code in (200, 201), (response.status_code, response.get_data()[:300])

        for r in warm:
            send(r)
        rds = redis_lib.Redis.from_url(redis_url)
        statements.clear()
        calls_before = _redis_calls(rds)
        profiler = cProfile.Profile()
        wall, cpu = time.perf_counter(), time.process_time()
        if not args.plain:
            profiler.enable()
        for r in measured:
            send(r)
        profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        calls = _redis_calls(rds) - calls_before
        n = len(measured)
        print(
            f"{n} requests ({args.kind}): {wall / n * 1000:.2f} ms wall,"
            f" {cpu / n * 1000:.2f} ms CPU a request"
        )
        print(f"PostgreSQL statements a request: {sum(statements.values()) / n:.2f}")
        for text, count in statements.most_common():
            print(f"  {count / n:5.2f}  {text}")
        # Server-side: a Lua script's own commands count too (the limiter's script is one round trip).
        print(f"Redis commands a request (the profile's own INFO excluded): {(calls - 1) / n:.2f}")
        if args.plain:
            return
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)


def _redis_calls(rds: redis_lib.Redis) -> int:
    return sum(v["calls"] for v in rds.info("commandstats").values())


if __name__ == "__main__":
    main()
