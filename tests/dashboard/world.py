"""A small world for the coach API and the dashboard: coaches, an admin, an analyst, members with
a few weeks of records logged through the member API, and flags.

Records are dated from the real today (the browser tests run a server thread, where travelling the
clock is not an option), so the same builder serves every test here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from companion import db
from companion.accounts import services as accounts
from companion.accounts.models import Role
from companion.domain import localtime
from companion.safety.models import Flag
from tests.conftest import PASSWORD
from tests.safety import helpers

ZONE = "America/New_York"
DAY = timedelta(days=1)


@dataclass
class World:
    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    flags: dict[str, uuid.UUID] = field(default_factory=dict)
    plan_id: str = ""
    today: date = date.min


def now() -> datetime:
    return datetime.now(UTC)


def make_flag(
    app: Flask,
    member_id: uuid.UUID,
    *,
    rule: str = "severe_side_effect",
    tier: int = 3,
    age: timedelta = timedelta(0),
    status: str = "open",
    coach: uuid.UUID | None = None,
) -> uuid.UUID:
    at = now() - age
    with app.app_context(), db.unit_of_work() as session:
        flag = Flag(
            member_id=member_id,
            rule=rule,
            rule_version=1,
            tier=tier,
            status=status,
            evidence=[f"side_effect:{uuid.uuid4().int % 100000}"],
            summary=f"{rule.replace('_', ' ')}: nausea (naltrexone)",
            symptoms=["nausea"],
            medications=["naltrexone"],
            first_seen=at.date(),
            last_seen=at.date(),
            created_at=at,
            updated_at=at,
            resolved_at=at if status == "resolved" else None,
            assigned_coach_id=coach,
        )
        session.add(flag)
        session.flush()
        return flag.id


def staff(app: Flask, role: str, name: str) -> tuple[uuid.UUID, str]:
    email = f"{name}-{uuid.uuid4().hex[:6]}@staff.example.org"
    with app.app_context(), db.unit_of_work():
        user = accounts.create_staff(Role(role), email, PASSWORD, now=now())
        user.display_name = name.title()
        return user.id, email


def log_history(
    app: Flask, client: FlaskClient, member_id: uuid.UUID, coach_email: str, days: int = 20
) -> str:
    """Drink logs, cravings, breath readings, a plan and dose check-ins (some with side effects), and
    a symptom report."""
    member = helpers.api_for(app, client, member_id)
    today = localtime.local_date(now(), ZONE)
    plan_id = helpers.create_plan(
        app,
        coach_email,
        member_id,
        {"medication": "naltrexone", "dose_mg": 50, "times": ["09:00"]},
        now=now() - timedelta(days=days + 2),
    )
    for back in range(1, days + 1):
        day = today - back * DAY
        drinks = [0, 2, 6, 1, 0][back % 5]
        log: dict[str, Any] = {"standard_drinks": drinks}
        if back == 2:
            log["note"] = "Office party, stopped after the toast"
        r = member.put(f"/drink-logs/{day.isoformat()}", log)
        assert r.status_code == 201, r.get_json()
        evening = localtime.local_to_utc(day, time(20, 0), ZONE)
        if back % 2 == 0:
            craving: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "recorded_at": evening.isoformat(),
                "intensity": back % 9,
            }
            if back == 2:
                craving |= {"triggers": ["argument", "payday"], "note": "Walked it off"}
            r = member.post("/cravings", craving)
            assert r.status_code == 201, r.get_json()
        if back % 7 == 3:
            r = member.post(
                "/bac-readings",
                {"id": str(uuid.uuid4()), "measured_at": evening.isoformat(), "bac_g_dl": 0.045},
            )
            assert r.status_code == 201, r.get_json()
        slot = localtime.local_to_utc(day, time(9, 0), ZONE)
        body: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "plan_id": plan_id,
            "scheduled_for": slot.isoformat(),
        }
        if back % 4 == 0:
            body["status"] = "skipped"
        else:
            body |= {"status": "taken", "taken_at": slot.isoformat()}
            if back % 3 == 0:
                body["side_effects"] = [
                    {"code": "nausea", "severity": ["mild", "moderate", "severe"][(back // 3) % 3]}
                ]
        r = member.post("/medication-checkins", body)
        assert r.status_code == 201, r.get_json()
    # A symptom reported on its own (no check-in), two days back.
    noon = localtime.local_to_utc(today - 2 * DAY, time(12, 0), ZONE)
    r = member.post(
        "/symptom-reports",
        {
            "id": str(uuid.uuid4()),
            "reported_at": noon.isoformat(),
            "symptoms": [{"code": "tremor", "severity": "moderate"}],
        },
    )
    assert r.status_code == 201, r.get_json()
    # Last week's PACS (this week's may not be answerable yet on a Monday).
    monday = today - timedelta(days=today.weekday() + 7)
    r = member.post(
        "/pacs", {"id": str(uuid.uuid4()), "week_of": monday.isoformat(), "items": [4, 4, 4, 3, 3]}
    )
    assert r.status_code == 201, r.get_json()
    return plan_id


def build(app: Flask, client: FlaskClient, *, history: bool = True) -> World:
    """coach_a with members `alice` (history, an urgent and a warning flag) and `ann`; coach_b with
    `bob` (an urgent flag); `orphan` without a coach; an admin; an insurer analyst."""
    w = World(today=localtime.local_date(now(), ZONE))
    for role, name in (("coach", "coach_a"), ("coach", "coach_b"), ("admin", "admin")):
        w.ids[name], w.emails[name] = staff(app, role, name)
    with app.app_context(), db.unit_of_work():
        code = f"ACME-{uuid.uuid4().hex[:6]}"
        accounts.create_insurer("Acme Health", code, now=now())
        email = f"analyst-{uuid.uuid4().hex[:6]}@staff.example.org"
        w.ids["analyst"] = accounts.create_staff(
            Role.INSURER_ANALYST, email, PASSWORD, insurer_code=code, now=now()
        ).id
        w.emails["analyst"] = email
    for name, coach in (("alice", "coach_a"), ("ann", "coach_a"), ("bob", "coach_b"), ("orphan", None)):
        w.ids[name], w.emails[name] = helpers.new_member(
            app, client, display_name=name.title(), timezone=ZONE
        )
        if coach:
            helpers.assign(app, w.emails[name], w.emails[coach])
    if history:
        w.plan_id = log_history(app, client, w.ids["alice"], w.emails["coach_a"])
    coach_a, coach_b = w.ids["coach_a"], w.ids["coach_b"]
    w.flags["alice_urgent"] = make_flag(app, w.ids["alice"], age=timedelta(hours=3), coach=coach_a)
    w.flags["alice_warning"] = make_flag(
        app, w.ids["alice"], rule="persistent_side_effect", tier=2, age=timedelta(hours=30), coach=coach_a
    )
    w.flags["ann_info"] = make_flag(
        app, w.ids["ann"], rule="disengagement", tier=1, age=timedelta(hours=50), coach=coach_a
    )
    w.flags["bob_urgent"] = make_flag(app, w.ids["bob"], age=timedelta(hours=1), coach=coach_b)
    return w
