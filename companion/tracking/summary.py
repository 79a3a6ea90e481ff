"""`GET /me/summary`: load the member's rows, hand them to the pure `domain.summary`, and return its answer.

The coach view and the insurer export call the same domain functions, so the three never disagree.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from companion.accounts.models import Member
from companion.db import session
from companion.domain import localtime, summary
from companion.domain.plans import CheckIn, CheckInStatus
from companion.medications.models import MedicationCheckin, MedicationPlan
from companion.tracking.models import Craving, DrinkLog

#: Cravings feed two 7-day averages; check-ins one 7-day rate (a day of margin for time zones).
CRAVING_DAYS = 2 * summary.WEEK_DAYS
ADHERENCE_DAYS = summary.WEEK_DAYS + 1


def day_logs(member: Member) -> list[summary.DayLog]:
    """Every logged day (streaks may reach back to enrollment; a member has a few hundred rows at most)."""
    rows = session.execute(
        select(DrinkLog.date, DrinkLog.grams_ethanol, DrinkLog.heavy).where(
            DrinkLog.member_id == member.id, DrinkLog.deleted_at.is_(None)
        )
    )
    return [summary.DayLog(day, grams, heavy) for day, grams, heavy in rows]


def member_summary(member: Member, *, now: datetime) -> dict[str, Any]:
    from companion.medications.services import plan_to_domain

    today = localtime.local_date(now, member.timezone)
    cravings = session.execute(
        select(Craving.date, Craving.intensity).where(
            Craving.member_id == member.id, Craving.date > today - timedelta(days=CRAVING_DAYS)
        )
    )
    checkins = session.execute(
        select(MedicationCheckin.plan_id, MedicationCheckin.scheduled_for, MedicationCheckin.status).where(
            MedicationCheckin.member_id == member.id,
            MedicationCheckin.date > today - timedelta(days=ADHERENCE_DAYS),
        )
    )
    plans = session.execute(select(MedicationPlan).where(MedicationPlan.member_id == member.id)).scalars()
    result = summary.summarize(
        now=now,
        zone=member.timezone,
        country=member.country,
        goal=summary.Goal(summary.GoalType(member.goal_type), member.weekly_limit),
        day_logs=day_logs(member),
        cravings=[summary.CravingRating(day, intensity) for day, intensity in cravings],
        checkins=[CheckIn(plan_id, at, CheckInStatus(status)) for plan_id, at, status in checkins],
        plans=[plan_to_domain(plan) for plan in plans],
    )
    return summary_view(result)


def summary_view(result: summary.MemberSummary) -> dict[str, Any]:
    return asdict(result)
