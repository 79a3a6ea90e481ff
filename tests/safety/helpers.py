"""Helpers for the safety tests: members and staff at a chosen instant, a domain history replayed
through the HTTP API at the times it describes, the task functions run in-process, and what the
database then holds."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import time as clock
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psutil
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from companion import db
from companion.accounts import services as accounts
from companion.accounts import tokens
from companion.accounts.models import Role, User
from companion.domain import localtime
from companion.domain.drinking import standard_drink_grams
from companion.domain.plans import Plan
from companion.domain.safety import LOOKBACK_DAYS, MemberHistory
from companion.medications import schemas as medication_schemas
from companion.medications import services as medications
from companion.safety.models import Flag, FlagAlert, StaffNotification
from tests.conftest import PASSWORD, Api, registration

SCAN_KEYS = "companion:safety:scan:*"
ROOT = Path(__file__).resolve().parent.parent.parent


def travel(instant: datetime):
    return time_machine.travel(instant, tick=False)


def api_for(app: Flask, client: FlaskClient, user_id: uuid.UUID | str) -> Api:
    """An Api signed in as the user, with a token issued at the (possibly travelled) current time."""
    with app.app_context(), db.unit_of_work() as session:
        user = session.get(User, uuid.UUID(str(user_id)))
        pair = tokens.issue_pair(user, now=db.utcnow())
    return Api(client, pair.access_token)


def new_member(app: Flask, client: FlaskClient, **overrides: Any) -> tuple[uuid.UUID, str]:
    """Register a member through the API at the current (travelled) time: (id, email)."""
    r = Api(client).post("/auth/register", registration(**overrides))
    assert r.status_code == 201, r.get_json()
    member = r.get_json()["member"]
    return uuid.UUID(member["id"]), member["email"]


def new_staff(app: Flask, role: str, email: str | None = None) -> tuple[uuid.UUID, str]:
    email = email or f"{role}-{uuid.uuid4().hex[:8]}@staff.example.org"
    with app.app_context(), db.unit_of_work():
        user = accounts.create_staff(Role(role), email, PASSWORD, now=db.utcnow())
        return user.id, email


def assign(app: Flask, member_email: str, coach_email: str) -> None:
    with app.app_context(), db.unit_of_work():
        accounts.assign_coach(member_email, coach_email, now=db.utcnow())


def create_plan(
    app: Flask, actor_email: str, member_id: uuid.UUID, body: dict[str, Any], *, now: datetime
) -> str:
    """A plan made through the service at an earlier `now` (the API refuses a start in the past)."""
    with app.app_context(), db.unit_of_work():
        actor = accounts.find_user_by_email(actor_email)
        data = medication_schemas.PlanInputSchema().load(body)
        return str(medications.create_plan(actor, member_id, data, now=now).id)


# --- running tasks in-process -----------------------------------------------------------------------


def forget_debounce(redis) -> None:
    """As if the debounce window had passed."""
    for key in redis.scan_iter(SCAN_KEYS):
        redis.delete(key)


def scan(member_id: uuid.UUID | str, redis=None) -> str:
    """The `safety.scan_member` task's function, run in this process (a fresh debounce window)."""
    from workers.tasks import safety as tasks

    if redis is not None:
        forget_debounce(redis)
    return tasks.scan_member(str(member_id))


def queued(redis, name: str | None = None) -> list[dict[str, Any]]:
    """Messages waiting in the real broker's default queue: {task, kwargs, countdown?} each."""
    found = []
    for raw in redis.lrange("celery", 0, -1):
        message = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        task = message["headers"]["task"]
        if name is None or task == name:
            found.append({"task": task, "kwargs": kwargs, "eta": message["headers"].get("eta")})
    return found


def run_queued(app: Flask, redis, name: str) -> int:
    """Take every queued message of task `name` off the broker and run it here, as a worker would."""
    import workers.tasks  # noqa: F401  (registers the tasks; never workers.celery_app: it builds another app)

    task = app.extensions["celery"].tasks[name]
    ran = 0
    for raw in redis.lrange("celery", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] != name:
            continue
        redis.lrem("celery", 1, raw)
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        task(**kwargs)
        ran += 1
    return ran


# --- a real worker process ---------------------------------------------------------------------------


@contextlib.contextmanager
def worker_process(
    database_url: str, redis_url: str, log: Path, *, at: datetime | None = None
) -> Iterator[None]:
    """`celery -A workers.celery_app worker --pool=solo` on the test database and Redis, its output in
    `log`; with `at`, its clock starts at that instant (tests/safety/clocked_worker.py). Stopped, with
    its children, on exit."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
    if at is None:
        command = ["-m", "celery", "-A", "workers.celery_app", "worker", "--pool=solo", "--loglevel=INFO"]
    else:
        command = ["-m", "tests.safety.clocked_worker", at.isoformat()]
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, *command], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield
        finally:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(process.pid)
                children = parent.children(recursive=True)
                parent.terminate()
                _, alive = psutil.wait_procs([parent, *children], timeout=15)
                for p in alive:
                    p.kill()


def wait_for_task(redis, name: str, *, within: float = 180, **kwargs: Any) -> dict[str, Any]:
    """The first task `name` with these kwargs a clocked worker finished: {task, kwargs, result, state}."""
    from tests.safety.clocked_worker import RAN

    deadline = clock.monotonic() + within
    while clock.monotonic() < deadline:
        for raw in redis.lrange(RAN, 0, -1):
            ran = json.loads(raw)
            if ran["task"] == name and all(ran["kwargs"].get(k) == v for k, v in kwargs.items()):
                return ran
        clock.sleep(0.1)
    raise AssertionError(f"no {name} {kwargs} finished within {within} s")


# --- what the database holds ------------------------------------------------------------------------


def flags_of(app: Flask, member_id: uuid.UUID | str | None = None) -> list[Flag]:
    with app.app_context():
        query = select(Flag).order_by(Flag.rule, Flag.created_at)
        if member_id is not None:
            query = query.where(Flag.member_id == uuid.UUID(str(member_id)))
        found = list(db.session.execute(query).scalars())
        db.session.remove()
        return found


def alerts_of(app: Flask, member_id: uuid.UUID | str | None = None) -> list[FlagAlert]:
    with app.app_context():
        query = select(FlagAlert).order_by(FlagAlert.id)
        if member_id is not None:
            query = query.where(FlagAlert.member_id == uuid.UUID(str(member_id)))
        found = list(db.session.execute(query).scalars())
        db.session.remove()
        return found


def notifications(app: Flask) -> list[StaffNotification]:
    with app.app_context():
        found = list(db.session.execute(select(StaffNotification).order_by(StaffNotification.id)).scalars())
        db.session.remove()
        return found


# --- a domain history, replayed through the API -----------------------------------------------------


def _standard_drinks(grams: Decimal, country: str) -> str:
    size = standard_drink_grams(country)
    return str((grams / size).quantize(Decimal("0.1"), ROUND_HALF_UP))


def _at(day: date, hhmm: str, zone: str, latest: datetime) -> datetime:
    return min(localtime.local_to_utc(day, time.fromisoformat(hhmm), zone), latest)


def _plan_body(plan: Plan) -> dict[str, Any]:
    hhmm = [t.strftime("%H:%M") for t in plan.times]
    return {
        "medication": plan.medication,
        "dose_mg": str(plan.dose_mg),
        "times": hhmm,
        "start_date": plan.start_date.isoformat(),
        "end_date": plan.end_date.isoformat() if plan.end_date else None,
        "steps": [
            {
                "from_date": s.from_date.isoformat(),
                "dose_mg": str(s.dose_mg),
                "times": [t.strftime("%H:%M") for t in s.times],
                "taper": s.taper,
            }
            for s in plan.steps
        ],
    }


def trimmed(history: MemberHistory) -> MemberHistory:
    """`history` without the entries older than the rules' lookback window (plans kept), keeping
    the latest entry's day in any case: the rules never read the rest (the domain's window
    properties; the end-to-end test checks the findings are the same)."""
    days = [
        *(d.day for d in history.doses),
        *(log.day for log in history.day_logs),
        *(c.day for c in history.cravings),
        *(b.day for b in history.breath),
    ]
    if not days:
        return history
    cutoff = min(history.today - timedelta(days=LOOKBACK_DAYS), max(days))
    kept_doses = tuple(d for d in history.doses if d.day >= cutoff)
    kept = {d.id for d in kept_doses}
    return dataclasses.replace(
        history,
        doses=kept_doses,
        side_effects=tuple(
            r
            for r in history.side_effects
            if r.checkin_id in kept or (r.checkin_id is None and r.day >= cutoff)
        ),
        day_logs=tuple(log for log in history.day_logs if log.day >= cutoff),
        cravings=tuple(c for c in history.cravings if c.day >= cutoff),
        breath=tuple(b for b in history.breath if b.day >= cutoff),
    )


class Replayed:
    """A member whose history was written through the API; `batches` can be sent again."""

    def __init__(self, member_id: uuid.UUID, email: str, coach_email: str | None):
        self.member_id = member_id
        self.email = email
        self.coach_email = coach_email
        self.batches: list[tuple[datetime, list[dict[str, Any]]]] = []
        self.plan_ids: dict[uuid.UUID, str] = {}


def replay(
    app: Flask, client: FlaskClient, history: MemberHistory, *, coach_email: str | None, admin_email: str
) -> Replayed:
    """Write `history` through the HTTP API, each entry at (about) the time it describes.

    The member registers on their enrolment day; plans are made through the service on their start
    day (the API refuses a start in the past); entries go through `POST /sync`, a day's entries at
    the end of that day (or at `history.now` for today), so each entry's `created_at` falls on its
    own local day and the disengagement rule sees the same last entry as the domain history.
    Pass a history `trimmed` to the lookback window to write only what the rules can read.
    """
    zone, now = history.zone, history.now
    enrolled = history.enrolled_on or (now - timedelta(days=90)).date()
    with travel(localtime.local_to_utc(enrolled, time(0, 5), zone)):
        member_id, email = new_member(
            app, client, timezone=zone, country=history.country, sex=history.sex or "unspecified"
        )
        if coach_email:
            assign(app, email, coach_email)
    replayed = Replayed(member_id, email, coach_email)
    for plan in sorted(history.plans, key=lambda p: p.start_date):
        made_at = localtime.local_to_utc(min(plan.start_date, history.today), time(0, 1), zone)
        replayed.plan_ids[plan.id] = create_plan(
            app, coach_email or admin_email, member_id, _plan_body(plan), now=made_at
        )

    items: dict[date, list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
    effects = defaultdict(list)
    entered: dict[Any, date] = {}  # a check-in carrying a late report is sent on the day it was entered
    reports: dict[str, dict[str, Any]] = {}  # symptoms reported on their own, by report id
    for report in history.side_effects:
        if report.checkin_id is None:
            report_id = str(report.id).split(":")[0]
            assert report.at is not None
            day = max(report.day, report.entered_on or report.day)
            reports.setdefault(
                report_id,
                {"day": day, "data": {"id": report_id, "reported_at": report.at.isoformat(), "symptoms": []}},
            )["data"]["symptoms"].append({"code": report.code, "severity": report.severity.label})
            continue
        effect = {"code": report.code, "severity": report.severity.label}
        if report.code == "other":
            effect["note"] = "something else"
        effects[report.checkin_id].append(effect)
        if report.entered_on is not None:
            entered[report.checkin_id] = max(
                report.entered_on, entered.get(report.checkin_id, report.entered_on)
            )
    for item in reports.values():
        sent = _at(item["day"], "12:00", zone, now) if item["day"] != history.today else now
        items[item["day"]].append((sent, {"type": "symptom_report", "data": item["data"]}))
    dose_ids = {d.id for d in history.doses}
    assert set(effects) <= dose_ids, "every side effect must come with a check-in in the history"
    for dose in history.doses:
        body: dict[str, Any] = {
            "id": str(dose.id),
            "plan_id": replayed.plan_ids[dose.plan_id],
            "scheduled_for": dose.scheduled_for.isoformat(),
            "status": dose.status.value,
            "side_effects": effects.get(dose.id, []),
        }
        if dose.status.value == "taken":
            body["taken_at"] = dose.scheduled_for.isoformat()
        day = max(dose.day, entered.get(dose.id, dose.day))
        at = dose.scheduled_for if day == dose.day else _at(day, "12:00", zone, now)
        items[day].append((at, {"type": "medication_checkin", "data": body}))
    for log in history.day_logs:
        data = {"date": log.day.isoformat(), "standard_drinks": _standard_drinks(log.grams, history.country)}
        items[log.day].append((_at(log.day, "22:00", zone, now), {"type": "drink_log", "data": data}))
    for n, craving in enumerate(history.cravings):
        at = _at(craving.day, "12:00", zone, now) + timedelta(seconds=n)
        data = {"id": str(craving.id), "recorded_at": at.isoformat(), "intensity": craving.intensity}
        items[craving.day].append((at, {"type": "craving", "data": data}))
    for n, reading in enumerate(history.breath):
        at = _at(reading.day, "20:30", zone, now) - timedelta(seconds=n)
        data = {"id": str(reading.id), "measured_at": at.isoformat(), "bac_g_dl": str(reading.g_dl)}
        items[reading.day].append((at, {"type": "bac_reading", "data": data}))

    for record in history.pacs:  # answered on the week's Sunday (or now, for this week)
        day = min(record.week_of + timedelta(days=6), history.today)
        scores = [min(6, max(0, record.total - 6 * n)) for n in range(5)]
        data = {"id": str(record.id), "week_of": record.week_of.isoformat(), "items": scores}
        items[day].append((_at(day, "19:00", zone, now), {"type": "pacs", "data": data}))
    for day in sorted(items):
        latest = max(at for at, _ in items[day])
        send_at = max(latest, _at(day, "23:30", zone, now))
        replayed.batches.append((send_at, [body for _, body in items[day]]))
    expected_heavy = {log.day.isoformat(): log.heavy for log in history.day_logs}
    for send_at, batch in replayed.batches:
        results = send_batch(app, client, member_id, batch, at=send_at)
        assert all(r["status"] == "created" for r in results), [
            r for r in results if r["status"] != "created"
        ]
    heavy = stored_heavy(app, client, member_id, at=now)
    assert heavy == {d: h for d, h in expected_heavy.items() if d in heavy} and len(heavy) == len(
        expected_heavy
    )
    return replayed


def send_batch(
    app: Flask, client: FlaskClient, member_id: uuid.UUID, batch: list[dict[str, Any]], *, at: datetime
) -> list[dict[str, Any]]:
    results = []
    with travel(at):
        member = api_for(app, client, member_id)
        for start in range(0, len(batch), 500):
            r = member.post("/sync", {"items": batch[start : start + 500]})
            assert r.status_code == 200, r.get_json()
            results += r.get_json()["results"]
    return results


def stored_heavy(app: Flask, client: FlaskClient, member_id: uuid.UUID, *, at: datetime) -> dict[str, bool]:
    with travel(at):
        member = api_for(app, client, member_id)
        today = localtime.local_date(at, "UTC")
        r = member.get(
            f"/drink-logs?from={today - timedelta(days=70)}&to={today + timedelta(days=1)}&limit=500"
        )
        assert r.status_code == 200, r.get_json()
        return {log["date"]: log["heavy"] for log in r.get_json()["items"]}
