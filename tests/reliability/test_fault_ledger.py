"""The acknowledgement ledger: retrying phone clients write through gunicorn while the Celery worker is
SIGKILLed, Redis is stopped (and comes back empty) and PostgreSQL is restarted, all of them private
servers of this test (never the shared ones).

Each client keeps a ledger of every write it made and whether the server acknowledged it (a 2xx).
A write that fails (connection refused, a timeout, a 503) is sent again with the same id, as the phone
app does, until it is acknowledged. Then:
- every acknowledged write is stored exactly once, and nothing is stored that no client wrote;
- writes kept being acknowledged while Redis was down;
- coach messages sent while Redis was down reach the phone exactly once once it is back, and a
  safety flag whose scan message Redis lost is raised by the sweep (what beat runs hourly);
- the API answered again after PostgreSQL came back, with the same gunicorn processes.

`make test` runs it for a few seconds per phase; `make soak` sets FAULT_PHASE_SECONDS (and more clients)
for a longer run and writes the figures to FAULT_FIGURES_FILE; docs/reliability.md quotes them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from companion import migrate, runtime
from tests import fake_push
from tests.conftest import PASSWORD, registration
from tests.nudges.processes import PrivateRedis, Processes, wait_until_worker_runs_tasks, worker_env
from tests.reliability.servers import ApiServer, PrivatePostgres
from tests.security import logscan

PHASE = float(os.environ.get("FAULT_PHASE_SECONDS", "4"))
CLIENTS = int(os.environ.get("FAULT_CLIENTS", "3"))
CATCH_UP_WITHIN = 60
RECOVERY_WITHIN = 30


@dataclasses.dataclass
class Entry:
    kind: str  # cravings | bac-readings
    id: str
    attempts: int = 0
    acknowledged_at: float | None = None
    statuses: list[int | str] = dataclasses.field(default_factory=list)


class Client(threading.Thread):
    """One phone: writes cravings and breath readings, retrying each one until it is acknowledged."""

    def __init__(self, base_url: str, token: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=base_url, timeout=5, headers={"Authorization": f"Bearer {token}"})
        self.stop_event = stop
        self.ledger: list[Entry] = []
        self.refused: list[tuple[str, int, str]] = []  # 4xx answers: a write the server would never take

    def _body(self, entry: Entry) -> dict:
        now = datetime.now(UTC).isoformat()
        if entry.kind == "cravings":
            return {"id": entry.id, "recorded_at": now, "intensity": len(self.ledger) % 11}
        return {"id": entry.id, "measured_at": now, "bac_g_dl": 0.0}

    def _send(self, entry: Entry, body: dict) -> bool:
        entry.attempts += 1
        try:
            response = self.http.post(f"/api/v1/{entry.kind}", json=body)
        except httpx.HTTPError as exc:
            entry.statuses.append(type(exc).__name__)
            return False
        entry.statuses.append(response.status_code)
        if response.status_code in (200, 201):
            entry.acknowledged_at = time.monotonic()
            return True
        if 400 <= response.status_code < 500 and response.status_code != 429:
            self.refused.append((entry.id, response.status_code, response.text[:300]))
            return True  # not retried: the test fails on it below
        return False

    def run(self) -> None:
        while not self.stop_event.is_set():
            entry = Entry("cravings" if len(self.ledger) % 2 == 0 else "bac-readings", str(uuid.uuid4()))
            self.ledger.append(entry)
            body = self._body(entry)
            delay = 0.05
            while not self._send(entry, body):  # the same id again: a retry, never a second record
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
            time.sleep(0.02)
        self.http.close()


def _companion(env: dict[str, str], *args: str) -> None:
    cli = Path(sys.executable).with_name("companion")
    result = subprocess.run([str(cli), *args], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]


def _window(clients: list[Client], start: float, end: float) -> int:
    return sum(
        1 for c in clients for e in c.ledger if e.acknowledged_at and start <= e.acknowledged_at <= end
    )


@pytest.fixture
def stack(tmp_path: Path):
    """Private PostgreSQL and Redis, the API under gunicorn, a worker and beat; all torn down after."""
    postgres = PrivatePostgres(tmp_path / "pg")
    redis_server = PrivateRedis(tmp_path / "redis")
    gateway = fake_push.FakeGateway().start()
    made: list = []
    try:
        postgres.init()
        postgres.start()
        runtime.ensure_database(postgres.url)
        migrate.upgrade(postgres.url)
        redis_server.start()
        env = worker_env(
            postgres.url,
            redis_server.url,
            gateway,
            SECRET_KEY="fault-test",
            RATELIMIT_DEFAULT="100000 per minute",
            RATELIMIT_REGISTER="1000 per minute",
            SESSION_COOKIE_SECURE="false",
            COMPANION_INSTANCE_PATH=str(tmp_path / "instance"),
        )
        api = ApiServer(tmp_path, env)
        made.append(api)
        api.start()
        processes = Processes(tmp_path, env)
        made.append(processes)
        yield postgres, redis_server, gateway, api, processes, env
    finally:
        for thing in reversed(made):
            thing.stop_all() if isinstance(thing, Processes) else thing.stop()
        redis_server.stop()
        gateway.stop()
        postgres.destroy()


def test_every_acknowledged_write_is_stored_exactly_once_through_faults(stack, record_property):
    postgres, redis_server, gateway, api, processes, env = stack
    http = httpx.Client(base_url=api.url, timeout=10)
    figures: dict[str, object] = {"phase_seconds": PHASE, "clients": CLIENTS}

    # Members with phones; a coach; one member on disulfiram (a drink is then an urgent flag).
    tokens, member_ids = [], []
    for _ in range(CLIENTS + 1):
        r = http.post("/api/v1/auth/register", json=registration(timezone="UTC"))
        assert r.status_code == 201, r.text
        tokens.append(r.json()["access_token"])
        member_ids.append(r.json()["member"]["id"])
        device = {"platform": "android", "push_token": f"android-{uuid.uuid4().hex}"}
        assert (
            http.post(
                "/api/v1/me/devices", json=device, headers={"Authorization": f"Bearer {tokens[-1]}"}
            ).status_code
            == 201
        )
    flagged_token, flagged_id = tokens.pop(), member_ids.pop()
    _companion(env, "create-staff", "--role", "coach", "--email", "coach@example.org", "--password", PASSWORD)
    emails = []
    for token in [*tokens, flagged_token]:
        email = http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["email"]
        emails.append(email)
        _companion(env, "assign-coach", "--member", email, "--coach", "coach@example.org")
    coach = http.post("/api/v1/auth/token", json={"email": "coach@example.org", "password": PASSWORD}).json()
    coach_headers = {"Authorization": f"Bearer {coach['access_token']}"}
    plan = {"medication": "disulfiram", "dose_mg": 250, "times": ["09:00"]}
    assert (
        http.post(
            f"/api/v1/coach/members/{flagged_id}/medication-plans", json=plan, headers=coach_headers
        ).status_code
        == 201
    )

    processes.start_worker()
    processes.start_beat()
    wait_until_worker_runs_tasks(redis_server.url, timeout=60)
    api_pids = api.pids()

    stop = threading.Event()
    clients = [Client(api.url, token, stop) for token in tokens]
    for client in clients:
        client.start()
    try:
        time.sleep(PHASE)  # steady state

        # 1. The worker dies mid-work (SIGKILL: no warm shutdown), and a new one takes over.
        processes.kill_worker()
        time.sleep(PHASE / 2)
        processes.start_worker()

        # 2. Redis goes away (and will come back empty). The phones keep logging; the coach writes.
        time.sleep(PHASE / 2)
        redis_down = time.monotonic()
        redis_server.stop()
        messages = []
        for n in range(3):
            r = http.post(f"/api/v1/coach/members/{member_ids[n % len(member_ids)]}/messages",
                          json={"body": f"Checking in ({n})"}, headers=coach_headers)  # fmt: skip
            assert r.status_code == 201, r.text
            messages.append(r.json()["id"])
        drink = http.put(f"/api/v1/drink-logs/{datetime.now(UTC).date()}", json={"standard_drinks": 3},
                         headers={"Authorization": f"Bearer {flagged_token}"})  # fmt: skip
        assert drink.status_code == 201, drink.text
        time.sleep(PHASE)
        redis_up = time.monotonic()
        figures["acknowledged_while_redis_down"] = _window(clients, redis_down, redis_up)
        redis_server.start()
        time.sleep(PHASE / 2)

        # 3. PostgreSQL restarts under the API (an operator's restart: every session is cut).
        pg_down = time.monotonic()
        postgres.stop("fast")
        time.sleep(PHASE / 2)
        postgres.start()
        pg_up = time.monotonic()
        first_after = None
        while time.monotonic() - pg_up < RECOVERY_WITHIN:
            acked = [
                e.acknowledged_at
                for c in clients
                for e in c.ledger
                if e.acknowledged_at and e.acknowledged_at >= pg_up
            ]
            if acked:
                first_after = min(acked)
                break
            time.sleep(0.05)
        assert first_after is not None, (
            f"no write acknowledged within {RECOVERY_WITHIN}s of PostgreSQL's return\n{api.output()}"
        )
        figures["acknowledged_while_postgres_down"] = _window(clients, pg_down, pg_up)
        figures["recovery_seconds_after_postgres_restart"] = round(first_after - pg_up, 2)
        figures["write_outage_seconds_around_postgres_restart"] = round(first_after - pg_down, 2)
        time.sleep(PHASE)
    finally:
        stop.set()
        for client in clients:
            client.join(30)
    assert api.pids() == api_pids, "gunicorn or one of its workers was restarted"

    # The ledger against the record.
    refused = [r for c in clients for r in c.refused]
    assert refused == [], refused
    ledger = {e.id: e for c in clients for e in c.ledger}
    acknowledged = {i for i, e in ledger.items() if e.acknowledged_at}
    engine = sa.create_engine(postgres.url)
    with engine.connect() as conn:
        stored = [
            str(row[0])
            for row in conn.execute(sa.text("SELECT id FROM cravings UNION ALL SELECT id FROM bac_readings"))
        ]
    counts: dict[str, int] = {}
    for record_id in stored:
        counts[record_id] = counts.get(record_id, 0) + 1
    lost = acknowledged - set(counts)
    doubled = {i for i, n in counts.items() if n > 1}
    unknown = set(counts) - set(ledger)
    figures.update(writes=len(ledger), acknowledged=len(acknowledged), lost=len(lost), doubled=len(doubled),
                   stored=len(stored), retried=sum(1 for e in ledger.values() if e.attempts > 1),
                   attempts=sum(e.attempts for e in ledger.values()))  # fmt: skip
    record_property("figures", json.dumps(figures))
    if os.environ.get("FAULT_FIGURES_FILE"):  # `make soak` keeps them for docs/reliability.md
        Path(os.environ["FAULT_FIGURES_FILE"]).write_text(json.dumps(figures, indent=2) + "\n")
    assert lost == set() and doubled == set() and unknown == set(), figures
    # A fault answers 503 (retry) or no answer at all; never a 500, whichever path took the write.
    answered = {s for e in ledger.values() for s in e.statuses if isinstance(s, int)}
    assert {s for s in answered if s >= 500} <= {503}, answered
    assert acknowledged == set(ledger)  # every write a client made was, in the end, acknowledged
    assert figures["acknowledged_while_redis_down"] > 0, figures  # the request path never waits on Redis
    assert figures["retried"] > 0, "no fault was felt: the test proved nothing"

    # Nudges and flags catch up: the coach messages reach the phones once; the lost scan is swept.
    from tests.nudges.processes import client_for

    sweeper = client_for(redis_server.url)
    sweeper.send_task("safety.sweep")  # beat sends it hourly; here at once
    sweeper.close()
    deadline = time.monotonic() + CATCH_UP_WITHIN
    flags: list = []
    while time.monotonic() < deadline:
        delivered = gateway.per_nudge()
        with engine.connect() as conn:
            flags = list(
                conn.execute(sa.text("SELECT rule FROM flags WHERE member_id = :m"), {"m": flagged_id})
            )
        if set(messages) <= set(delivered) and flags:
            break
        time.sleep(0.5)
    time.sleep(2)  # a few more dispatcher ticks: nothing goes twice
    delivered = gateway.per_nudge()
    assert {m: delivered.get(m) for m in messages} == dict.fromkeys(messages, 1), processes.output()
    assert [f.rule for f in flags] == ["disulfiram_with_drinking"], processes.output()
    engine.dispose()

    # What the real processes logged through all of it holds no one's email, token or message.
    api.stop()
    processes.stop_all()
    logs = "\n".join(p.read_text(errors="replace") for p in sorted(api.folder.glob("*.out")))
    assert "request" in logs and "nudges.deliver" in logs  # the logs are there to be read
    found = logscan.findings(logs, also=(*emails, *tokens, "Checking in", "coach@example.org"))
    assert found == [], "\n".join(found)
