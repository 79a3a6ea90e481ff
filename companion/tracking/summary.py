"""`GET /me/summary`: load the member's rows, hand them to the pure `domain.summary`, and return its answer.

The coach view and the insurer export call the same domain functions, so the three never disagree.
`summaries` loads many members' rows in one query per table (the coach caseload); `member_summary` is
the same for one member.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from companion.accounts.models import Member
from companion.db import session
from companion.domain import localtime, summary
from companion.domain.plans import CheckIn, CheckInStatus, Plan
from companion.medications.models import MedicationCheckin, MedicationPlan, plan_to_domain
from companion.tracking.models import Craving, DrinkLog

#: Cravings feed two 7-day averages; check-ins one 7-day rate (a day of margin for time zones).
CRAVING_DAYS = 2 * summary.WEEK_DAYS
ADHERENCE_DAYS = summary.WEEK_DAYS + 1


def day_logs(member: Member) -> list[summary.DayLog]:
    """Every logged day (streaks may reach back to enrollment; a member has a few hundred rows at most)."""
    return day_logs_of([member.id])[member.id]


def day_logs_of(member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[summary.DayLog]]:
    """Every logged day of each member, in date order, in one query."""
    logs: dict[uuid.UUID, list[summary.DayLog]] = {m: [] for m in member_ids}
    rows = session.execute(
        select(DrinkLog.member_id, DrinkLog.date, DrinkLog.grams_ethanol, DrinkLog.heavy)
        .where(DrinkLog.member_id.in_(member_ids), DrinkLog.deleted_at.is_(None))
        .order_by(DrinkLog.member_id, DrinkLog.date)
    )
    for member_id, day, grams, heavy in rows:
        logs[member_id].append(summary.DayLog(day, grams, heavy))
    return logs


def summaries(
    members: Sequence[Member],
    *,
    now: datetime,
    logs: dict[uuid.UUID, list[summary.DayLog]] | None = None,
    plans: dict[uuid.UUID, list[Plan]] | None = None,
) -> dict[uuid.UUID, summary.MemberSummary]:
    """Each member's summary as of `now`: four queries whatever the number of members. `logs` (from
    `day_logs_of`) and `plans` (every plan of each member) when the caller already has them."""
    if not members:
        return {}
    ids = [m.id for m in members]
    # Each member's window ends on their own local today; the earliest today bounds them all (the
    # domain reads only its own windows, so a day more changes nothing).
    first_today = min(localtime.local_date(now, m.timezone) for m in members)
    logs = logs if logs is not None else day_logs_of(ids)
    cravings: dict[uuid.UUID, list[summary.CravingRating]] = defaultdict(list)
    for member_id, day, intensity in session.execute(
        select(Craving.member_id, Craving.date, Craving.intensity).where(
            Craving.member_id.in_(ids), Craving.date > first_today - timedelta(days=CRAVING_DAYS)
        )
    ):
        cravings[member_id].append(summary.CravingRating(day, intensity))
    checkins: dict[uuid.UUID, list[CheckIn]] = defaultdict(list)
    for member_id, plan_id, at, status in session.execute(
        select(
            MedicationCheckin.member_id,
            MedicationCheckin.plan_id,
            MedicationCheckin.scheduled_for,
            MedicationCheckin.status,
        ).where(
            MedicationCheckin.member_id.in_(ids),
            MedicationCheckin.date > first_today - timedelta(days=ADHERENCE_DAYS),
        )
    ):
        checkins[member_id].append(CheckIn(plan_id, at, CheckInStatus(status)))
    if plans is None:
        plans = defaultdict(list)
        for plan in session.execute(
            select(MedicationPlan).where(MedicationPlan.member_id.in_(ids))
        ).scalars():
            plans[plan.member_id].append(plan_to_domain(plan))
    return {
        m.id: summary.summarize(
            now=now,
            zone=m.timezone,
            country=m.country,
            goal=summary.Goal(summary.GoalType(m.goal_type), m.weekly_limit),
            day_logs=logs.get(m.id, []),
            cravings=cravings[m.id],
            checkins=checkins[m.id],
            plans=plans.get(m.id, []),
            sex=m.sex,
        )
        for m in members
    }


def member_summary(member: Member, *, now: datetime) -> dict[str, Any]:
    return summary_view(summaries([member], now=now)[member.id])


def summary_view(result: summary.MemberSummary) -> dict[str, Any]:
    return asdict(result)
