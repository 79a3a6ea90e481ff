"""Demo accounts for `companion up --demo`: a coach with a small caseload, an admin and an insurer analyst."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from companion.accounts import services
from companion.accounts.models import Insurer, Role, User
from companion.db import session

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
    for email, name, zone, country, sex, goal, limit in MEMBERS:
        if not _exists(email):
            services.register_member(
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
                now=now,
            )
            services.assign_coach(email, COACH_EMAIL, now=now)
    return DemoLogins(DEMO_PASSWORD, COACH_EMAIL, ADMIN_EMAIL, ANALYST_EMAIL, tuple(m[0] for m in MEMBERS))
