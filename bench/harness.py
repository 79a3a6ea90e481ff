"""What the HTTP benchmarks share (bench/member_writes.py, bench/sync_batch.py): a scratch database with a
simulated population, a private Redis, gunicorn on loopback configured as `companion up` runs it, and
a load generator of plain `http.client` keep-alive connections in a few processes.
"""

# ruff: noqa: T201  (benchmarks report on stdout)
from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from http.client import HTTPConnection
from pathlib import Path

import psycopg

from companion import migrate
from companion.population import Lines, Numbers, Rows, copy_lines, first_number, hand_back
from companion.runtime import (
    LOCAL_HOST,
    LOCAL_POSTGRES_PORT,
    drop_database,
    ensure_database,
    libpq_url,
    sqlalchemy_url,
    with_database,
)
from companion.supervisor import WEB_WORKER_CLASS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: gunicorn as `companion up` runs it (companion/supervisor.py: its worker class, workers and threads).
GUNICORN_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))
GUNICORN_THREADS = int(os.environ.get("BENCH_WEB_THREADS", "4"))


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_mb = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_mb": mem_mb,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- servers --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(prefix: str, *, keep: bool = False) -> Iterator[tuple[str, str]]:
    """A fresh database on DATABASE_URL's server (else the local one), migrated: (SQLAlchemy, libpq) urls."""
    server = (
        os.environ.get("DATABASE_URL")
        or f"postgresql+psycopg://postgres@{LOCAL_HOST}:{LOCAL_POSTGRES_PORT}/postgres"
    )
    url = sqlalchemy_url(with_database(sqlalchemy_url(server), f"{prefix}_{os.getpid()}"))
    ensure_database(url, recreate=True)
    try:
        migrate.upgrade(url)
        yield url, libpq_url(url)
    finally:
        if keep:
            print(f"kept: {url}")
        else:
            drop_database(url)


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """Our own redis-server on a unix socket: the app's rate limits and task messages stay out of the
    shared Redis (other engineers' tests use it)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    sock = folder / "redis.sock"
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"unix://{sock}?db=0"
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


#: port -> pid of the gunicorn master serving it (for `cpu_seconds`).
SERVER_PIDS: dict[int, int] = {}


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_snapshot(port: int, pg: str | None = None) -> dict[str, dict[int, float]]:
    """CPU seconds used so far, per process, by the gunicorn serving `port` (master and workers) and, with
    `pg`, by the PostgreSQL backends connected to that database. Two snapshots around a run give each
    side's CPU a request (`cpu_used`): where the machine's time goes, not how long a request took."""
    out: dict[str, dict[int, float]] = {"server": {}, "postgres": {}}
    master = SERVER_PIDS.get(port)
    if master:
        out["server"] = {p: _cpu_of(p) for p in (master, *_children(master))}
    if pg:
        with psycopg.connect(pg, autocommit=True) as conn:
            pids = conn.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        out["postgres"] = {p: _cpu_of(p) for (p,) in pids}
    return out


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds per group between two snapshots (a process born in between counts from zero)."""
    return {
        group: round(sum(s - before.get(group, {}).get(pid, 0.0) for pid, s in pids.items()), 3)
        for group, pids in after.items()
    }


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], *, ready_path: str) -> Iterator[tuple[str, int]]:
    """`app` served by gunicorn on a free loopback port as `companion up` serves it: (host, port)."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(GUNICORN_WORKERS),
        "--worker-class", WEB_WORKER_CLASS, "--threads", str(GUNICORN_THREADS), "--log-level", "warning", app,
    ]  # fmt: skip
    log = tempfile.TemporaryFile()  # noqa: SIM115  (closed below, after the server)
    # In our process group: whatever stops the benchmark (make bench's time limit) stops it too.
    server = subprocess.Popen(command, env={**os.environ, **env}, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"gunicorn did not start:\n{log.read().decode()[-3000:]}")
            with contextlib.suppress(OSError):
                conn = HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", ready_path)
                if conn.getresponse().status < 500:
                    break
            time.sleep(0.2)
        SERVER_PIDS[port] = server.pid
        yield "127.0.0.1", port
    finally:
        SERVER_PIDS.pop(port, None)
        server.terminate()  # the master stops its workers
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# --- accounts for the load ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchMember:
    id: uuid.UUID
    zone: str
    token: str
    plan_id: uuid.UUID


BENCH_ZONES = ("America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "Australia/Sydney")
#: Dose times of each bench member's plan: six a day, so there are many open slots to check in.
BENCH_TIMES = ("08:00", "10:00", "12:00", "14:00", "16:00", "20:00")
PLAN_DAYS = 50


def bench_members(pg: str, n: int, now: datetime) -> list[BenchMember]:
    """`n` fresh members, each with a live access token and a plan started PLAN_DAYS days ago with no
    check-ins yet (rows as the services write them, through `companion.population`; tokens stored as their
    SHA-256, as tokens.py does)."""
    members = []
    lines = Lines()
    joined = now - timedelta(days=PLAN_DAYS + 1)
    start = (now - timedelta(days=PLAN_DAYS)).date()
    tokens = []
    with psycopg.connect(pg) as conn:
        seq = Numbers(first_number(conn))
        rows = Rows(lines, seq)
        for k in range(n):
            member_id, plan_id, zone = uuid.uuid4(), uuid.uuid4(), BENCH_ZONES[k % len(BENCH_ZONES)]
            token = secrets.token_urlsafe(32)
            rows.user(
                member_id,
                email=f"bench{k}-{member_id.hex[:8]}@bench.example",
                role="member",
                created_at=joined,
            )
            rows.member(
                member_id,
                timezone=zone,
                country="US",
                sex="female",
                goal_type="abstain",
                outcome_sharing=False,
                log_time="20:00",
                enrolled_at=joined,
                updated_at=joined,
            )
            rows.plan(
                plan_id,
                member_id=member_id,
                medication="acamprosate",
                dose_mg=333,
                times=[dtime.fromisoformat(t) for t in BENCH_TIMES],
                start_date=start,
                created_at=now,
                updated_at=now,
            )
            tokens.append(
                (
                    uuid.uuid4(),
                    member_id,
                    uuid.uuid4(),
                    hashlib.sha256(token.encode()).digest(),
                    now,
                    now + timedelta(days=1),
                )
            )
            members.append(BenchMember(member_id, zone, token, plan_id))
        copy_lines(conn, lines.by_table())
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO auth_tokens (id, user_id, family_id, kind, token_hash, created_at, expires_at)"
                " VALUES (%s, %s, %s, 'access', %s, %s, %s)",
                tokens,
            )
        hand_back(conn, seq)
    return members


# --- the load generator ---------------------------------------------------------------------------------

#: A request: (kind, method, path, body bytes, bearer token or "").
Request = tuple[str, str, str, bytes, str]


def _client_thread(host: str, port: int, requests: list[Request], lock: threading.Lock, cursor: list[int],
                   deadline: float, out: list[tuple[str, int, float]],
                   interval: float | None, phase: float = 0.0) -> None:  # fmt: skip
    """Send requests one after another (closed loop), or with `interval` one every `interval` seconds on
    a fixed schedule (open loop): then a request's latency counts from when it was due, so a server that
    falls behind is charged for the wait (no coordinated omission). `phase` (0 to 1) shifts the
    schedule by that share of an interval, so the connections together arrive evenly, not in bursts."""
    conn = HTTPConnection(host, port, timeout=60)
    due = time.perf_counter() + phase * (interval or 0.0)
    while time.perf_counter() < deadline:
        with lock:
            i = cursor[0]
            cursor[0] += 1
        if i >= len(requests):
            break
        kind, method, path, body, token = requests[i]
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if interval is not None:
            time.sleep(max(0.0, due - time.perf_counter()))
            started, due = due, due + interval
        else:
            started = time.perf_counter()
        try:
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, ConnectionError):
            conn.close()
            conn = HTTPConnection(host, port, timeout=60)
            status = 0
        out.append((kind, status, time.perf_counter() - started))
    conn.close()


def _client_process(host: str, port: int, requests: list[Request], threads: int, start_at: float,
                    seconds: float, queue: mp.Queue, interval: float | None,
                    phases: list[float]) -> None:  # fmt: skip
    lock, cursor, out = threading.Lock(), [0], []
    time.sleep(max(0.0, start_at - time.time()))
    deadline = time.perf_counter() + seconds
    workers = [
        threading.Thread(
            target=_client_thread, args=(host, port, requests, lock, cursor, deadline, out, interval, phase)
        )
        for phase in phases
    ]
    began = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put((out, time.perf_counter() - began))


def run_load(
    host: str,
    port: int,
    requests: list[Request],
    *,
    processes: int,
    threads: int,
    seconds: float,
    rate: float | None = None,
) -> dict:
    """Send `requests` (split between processes) over processes x threads keep-alive connections for at
    most `seconds`; requests/s, latency percentiles (ms) overall and by kind, statuses. As fast as the
    answers come, or with `rate` at that many requests a second in all (each connection on its own
    fixed schedule; latency from when a request was due)."""
    interval = processes * threads / rate if rate else None
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    start_at = time.time() + 0.5
    shares = [requests[k::processes] for k in range(processes)]
    connections = processes * threads
    phases = [[(k * threads + j) / connections for j in range(threads)] for k in range(processes)]
    procs = [
        ctx.Process(
            target=_client_process,
            args=(host, port, share, threads, start_at, seconds, queue, interval, phases[k]),
        )
        for k, share in enumerate(shares)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join()
    samples = [s for out, _ in results for s in out]
    elapsed = max(e for _, e in results)
    ok = [s for s in samples if 200 <= s[1] < 300]
    statuses: dict[str, int] = {}
    for _, status, _ in samples:
        statuses[str(status)] = statuses.get(str(status), 0) + 1

    def summary(rows: list[tuple[str, int, float]]) -> dict:
        latencies = [r[2] * 1000 for r in rows]
        return {
            "requests": len(rows),
            "p50_ms": round(percentile(latencies, 50), 2),
            "p99_ms": round(percentile(latencies, 99), 2),
        }

    by_kind = {kind: summary([s for s in ok if s[0] == kind]) for kind in sorted({s[0] for s in samples})}
    return {
        "seconds": round(elapsed, 2),
        "connections": processes * threads,
        "requests_per_second": round(len(ok) / elapsed, 1),
        **summary(ok),
        "errors": len(samples) - len(ok),
        "statuses": statuses,
        "by_kind": by_kind,
    }


def dumps(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
