"""Demo accounts for `companion up --demo`: a coach with a small caseload, an admin and an insurer analyst,
and three weeks of member history (drink logs, cravings, a medication plan and its check-ins).

The history goes through the same services as the API, each record at the moment it would have been
entered, so it obeys every rule a phone's data does. Each member's days follow `companion.simulate`'s
`Trajectory` (an improving one), the generator `companion simulate` writes large populations with, in
bulk.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from companion.accounts import services
from companion.accounts.models import Insurer, Member, Role, User
from companion.db import session
from companion.domain import localtime, plans
from companion.medications import services as medication_services
from companion.simulate import Trajectory, standard_drinks_entered
from companion.tracking import services as tracking_services

DEMO_INSURER_CODE = "DEMO-HEALTH"
DEMO_PASSWORD = "companion-demo"  # demo only; printed at start
COACH_EMAIL = "coach@demo.companion.test"
ADMIN_EMAIL = "admin@demo.companion.test"
ANALYST_EMAIL = "analyst@demo.companion.test"
MEMBERS = (
    ("alex@demo.companion.test", "Alex", "America/New_York", "US", "male", "abstain", None),
    ("sam@demo.companion.test", "Sam", "Europe/London", "GB", "female", "moderate", 14),
    ("kiri@demo.companion.test", "Kiri", "Pacific/Auckland", "NZ", "female", "abstain", None),
    ("priya@demo.companion.test", "Priya", "Asia/Kolkata", "IN", "unspecified", "moderate", 7),
    ("jordan@demo.companion.test", "Jordan", "Australia/Sydney", "AU", "male", "moderate", 10),
)


@dataclass(frozen=True)
class DemoLogins:
    password: str
    coach: str
    admin: str
    analyst: str
    members: tuple[str, ...]


#: Days of history each demo member gets.
HISTORY_DAYS = 21
#: (medication, dose mg, local dose times) for the demo members, in MEMBERS order.
DEMO_PLANS = (
    ("baclofen", "10", ("08:00", "14:00", "20:00")),
    ("naltrexone", "50", ("09:00",)),
    ("acamprosate", "666", ("08:00", "14:00", "20:00")),
    ("gabapentin", "300", ("08:00", "20:00")),
    ("disulfiram", "250", ("09:00",)),
)


def _history(member: Member, coach: User, *, seed: int, now: datetime) -> None:
    """Three weeks of a plausible member, improving slowly; deterministic for a given seed."""
    rnd = random.Random(seed)
    today = localtime.local_date(now, member.timezone)
    first = today - timedelta(days=HISTORY_DAYS)
    medication, dose, times = DEMO_PLANS[seed % len(DEMO_PLANS)]
    plan_created = localtime.local_to_utc(first, time(7, 0), member.timezone)
    plan = medication_services.create_plan(
        coach,
        member.id,
        {
            "medication": medication,
            "dose_mg": Decimal(dose),
            "times": [time.fromisoformat(t) for t in times],
            "start_date": first,
        },
        now=plan_created,
    )
    # The simulator's improving trajectory, well engaged; nobody on disulfiram drinks in the demo.
    trajectory = Trajectory.draw(
        rnd,
        goal=member.goal_type,
        days=HISTORY_DAYS,
        kind="improve",
        log_share=0.85,
        **({"drink_share": 0.0} if medication == "disulfiram" else {}),
    )
    for offset in range(HISTORY_DAYS + 1):
        day = first + timedelta(days=offset)
        evening = localtime.local_to_utc(day, time(21, 30), member.timezone)
        if evening > now:
            break
        today_ = trajectory.day(rnd, offset)
        if today_.logged:  # some days are missing, never zero
            drinks = standard_drinks_entered(today_.drinks, member.country)
            tracking_services.put_drink_log(
                member, day, {"standard_drinks": drinks}, origin=None, now=evening
            )
        if rnd.random() < 0.7:
            tracking_services.record_craving(
                member,
                {
                    "id": uuid.UUID(int=rnd.getrandbits(128)),
                    "recorded_at": evening - timedelta(hours=3),
                    "intensity": today_.craving,
                    "triggers": [],
                },
                origin=None,
                now=evening,
            )
        for slot in plans.dose_slots(medication_services.plan_to_domain(plan), day, member.timezone):
            if slot.scheduled_for > now or rnd.random() < 0.12:
                continue  # due later, or missed
            effects = [{"code": "drowsiness", "severity": "mild"}] if rnd.random() < 0.1 and seed == 0 else []
            medication_services.record_checkin(
                member,
                {
                    "id": uuid.UUID(int=rnd.getrandbits(128)),
                    "plan_id": plan.id,
                    "scheduled_for": slot.scheduled_for,
                    "status": "taken",
                    "taken_at": slot.scheduled_for + timedelta(minutes=rnd.randint(0, 40)),
                    "side_effects": effects,
                },
                origin=None,
                now=slot.scheduled_for + timedelta(hours=1),
            )


def _exists(email: str) -> bool:
    return session.execute(select(User.id).where(func.lower(User.email) == email)).first() is not None


def ensure_demo(*, now: datetime) -> DemoLogins:
    """Create what is missing; running it twice changes nothing."""
    if session.execute(select(Insurer).where(Insurer.code == DEMO_INSURER_CODE)).first() is None:
        services.create_insurer("Demo Health Plan", DEMO_INSURER_CODE, now=now)
    for role, email, name in (
        (Role.COACH, COACH_EMAIL, "Casey (coach)"),
        (Role.ADMIN, ADMIN_EMAIL, "Avery (admin)"),
        (Role.INSURER_ANALYST, ANALYST_EMAIL, "Ana (analyst)"),
    ):
        if not _exists(email):
            services.create_staff(
                role,
                email,
                DEMO_PASSWORD,
                display_name=name,
                insurer_code=DEMO_INSURER_CODE if role == Role.INSURER_ANALYST else None,
                now=now,
            )
    coach = services.find_user_by_email(COACH_EMAIL)
    for index, (email, name, zone, country, sex, goal, limit) in enumerate(MEMBERS):
        if not _exists(email):
            signed_in = services.register_member(
                {
                    "email": email,
                    "password": DEMO_PASSWORD,
                    "display_name": name,
                    "timezone": zone,
                    "country": country,
                    "sex": sex,
                    "goal": {"type": goal, "weekly_limit": limit},
                    "enrollment_code": DEMO_INSURER_CODE,
                    "consents": {"outcome_sharing": True},
                },
                now=now - timedelta(days=HISTORY_DAYS + 1),
            )
            services.assign_coach(email, COACH_EMAIL, now=now)
            assert coach is not None and signed_in.user.member is not None
            _history(signed_in.user.member, coach, seed=index, now=now)
    return DemoLogins(DEMO_PASSWORD, COACH_EMAIL, ADMIN_EMAIL, ANALYST_EMAIL, tuple(m[0] for m in MEMBERS))
