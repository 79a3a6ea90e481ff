"""What the nudge decisions need to know about a batch of members, loaded with one query per kind of
record for the whole batch (never a query per member)."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import Date, func, select, text, union_all

from companion.accounts.models import Member
from companion.db import session
from companion.db.sql import any_of
from companion.domain import localtime
from companion.domain.nudges import MemberSettings, NudgeKind
from companion.domain.plans import CheckIn, CheckInStatus, Plan
from companion.domain.summary import DayLog
from companion.medications.models import MedicationCheckin, MedicationPlan, plan_to_domain
from companion.nudges.models import MEMBER_COLUMNS, Nudge, settings_from_values
from companion.tracking.models import BacReading, Craving, DrinkLog

log = logging.getLogger(__name__)


def member_settings(member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, MemberSettings]:
    """Settings by member; a member whose stored settings the domain refuses is left out (and logged)."""
    found: dict[uuid.UUID, MemberSettings] = {}
    rows = session.execute(select(*MEMBER_COLUMNS).where(any_of(Member.id, member_ids)))
    for member_id, zone, log_time, quiet_start, quiet_end, muted, goal, limit, country in rows:
        try:  # positional: a Row's attributes cost ~0.5 us each, more than the cached settings
            found[member_id] = settings_from_values(
                zone, log_time, quiet_start, quiet_end, tuple(muted or ()), goal, limit, country
            )
        except ValueError:
            log.error("member nudge settings refused", extra={"member_id": str(member_id)})
    return found


def plans(member_ids: Sequence[uuid.UUID], *, first: date, last: date) -> dict[uuid.UUID, list[Plan]]:
    """Plans in force on some day in [first, last], by member."""
    rows = session.execute(
        select(MedicationPlan).where(
            any_of(MedicationPlan.member_id, member_ids),
            MedicationPlan.start_date <= last,
            (MedicationPlan.end_date.is_(None)) | (MedicationPlan.end_date >= first),
        )
    ).scalars()
    found: dict[uuid.UUID, list[Plan]] = defaultdict(list)
    for row in rows:
        found[row.member_id].append(plan_to_domain(row))
    return found


def checkins(member_ids: Sequence[uuid.UUID], *, first: date, last: date) -> dict[uuid.UUID, list[CheckIn]]:
    """Dose check-ins whose slot's local date is in [first, last], by member."""
    rows = session.execute(
        select(
            MedicationCheckin.member_id,
            MedicationCheckin.plan_id,
            MedicationCheckin.scheduled_for,
            MedicationCheckin.status,
        ).where(any_of(MedicationCheckin.member_id, member_ids), MedicationCheckin.date.between(first, last))
    )
    found: dict[uuid.UUID, list[CheckIn]] = defaultdict(list)
    for member_id, plan_id, at, status in rows:
        found[member_id].append(CheckIn(plan_id, at, CheckInStatus(status)))
    return found


def day_logs(member_ids: Sequence[uuid.UUID], *, first: date) -> dict[uuid.UUID, list[DayLog]]:
    """Drink logs from `first` on, by member."""
    found: dict[uuid.UUID, list[DayLog]] = defaultdict(list)
    if not member_ids:
        return found
    rows = session.execute(
        select(DrinkLog.member_id, DrinkLog.date, DrinkLog.grams_ethanol, DrinkLog.heavy).where(
            any_of(DrinkLog.member_id, member_ids), DrinkLog.deleted_at.is_(None), DrinkLog.date >= first
        )
    )
    for member_id, day, grams, heavy in rows:
        found[member_id].append(DayLog(day, grams, heavy))
    return found


def logged_days(pairs: Iterable[tuple[uuid.UUID, date]]) -> set[tuple[uuid.UUID, date]]:
    """Which (member, local date) pairs have a drink log."""
    pairs = set(pairs)
    if not pairs:
        return set()
    members = sorted({m for m, _ in pairs})
    days = sorted({d for _, d in pairs})
    rows = session.execute(
        select(DrinkLog.member_id, DrinkLog.date).where(
            any_of(DrinkLog.member_id, members),
            any_of(DrinkLog.date, days, Date()),
            DrinkLog.deleted_at.is_(None),
        )
    )
    return {(m, d) for m, d in rows} & pairs


def last_entry_dates(settings: dict[uuid.UUID, MemberSettings]) -> dict[uuid.UUID, date]:
    """The member's local date of their latest entry of any kind (when it was made, not what day it is
    about: a day logged late is still a sign of life)."""
    if not settings:
        return {}
    ids = list(settings)
    made = union_all(
        select(DrinkLog.member_id, func.max(DrinkLog.server_updated_at).label("at"))
        .where(any_of(DrinkLog.member_id, ids))
        .group_by(DrinkLog.member_id),
        select(Craving.member_id, func.max(Craving.created_at).label("at"))
        .where(any_of(Craving.member_id, ids))
        .group_by(Craving.member_id),
        select(MedicationCheckin.member_id, func.max(MedicationCheckin.created_at).label("at"))
        .where(any_of(MedicationCheckin.member_id, ids))
        .group_by(MedicationCheckin.member_id),
        select(BacReading.member_id, func.max(BacReading.created_at).label("at"))
        .where(any_of(BacReading.member_id, ids))
        .group_by(BacReading.member_id),
    ).subquery()
    rows = session.execute(select(made.c.member_id, func.max(made.c.at)).group_by(made.c.member_id))
    return {m: localtime.local_date(at, settings[m].zone) for m, at in rows if at is not None}


def last_reengagement_dates(member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, date]:
    if not member_ids:
        return {}
    rows = session.execute(
        select(Nudge.member_id, func.max(Nudge.local_date))
        # A literal kind, as `ix_nudges_member_reengagement`'s predicate (a bound value would not use it).
        .where(any_of(Nudge.member_id, member_ids), text(f"nudges.kind = '{NudgeKind.REENGAGEMENT.value}'"))
        .group_by(Nudge.member_id)
    )
    return dict(rows.all())


def utc_dates(start: datetime, end: datetime) -> tuple[date, date]:
    """Local dates anywhere on Earth during [start, end]: the UTC dates, a day either side."""
    return start.date() - timedelta(days=1), end.date() + timedelta(days=1)
