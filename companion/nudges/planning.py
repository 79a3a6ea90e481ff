"""Planning: insert the rows of every wall-clock nudge before it is due, set-based.

Each member's nudges are planned up to `nudge_planning.planned_until`. The dispatcher takes a batch of
members whose planned window ends within REPLAN_MARGIN of now (one indexed query, FOR UPDATE SKIP
LOCKED so concurrent dispatchers take different members), loads what the decisions need for the
whole batch with one query per kind of record, calls the pure `domain.nudges.plan_window` for each
member in Python, inserts every row with one INSERT ... ON CONFLICT (member_id, dedupe_key) DO
NOTHING, and moves the batch's windows on to now + PLAN_AHEAD.

In the dispatcher's tick, rows already due when planned (a new member, the windows after an outage)
are decided in the same transaction by the claim's code (`dispatch.decide`) and inserted as decided.

Consecutive windows partition time, and a key names a local date (and dose time), so a window planned
twice, a dispatcher that crashed mid-batch, or one that was down for hours never makes a second row.
A window that starts more than CATCH_UP in the past starts there instead: what was due before is
long expired.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, literal, select, update
from sqlalchemy.dialects.postgresql import insert

from companion.accounts.models import Member
from companion.db import session
from companion.db.sql import any_of
from companion.domain import localtime
from companion.domain.nudges import (
    DEFAULT_POLICY,
    MemberSettings,
    NudgePolicy,
    PlannedNudge,
    plan_window,
)
from companion.domain.summary import WEEK_DAYS
from companion.nudges import dispatch, inputs
from companion.nudges.models import NudgePlanning, NudgeStatus
from companion.nudges.rows import DecidedRow, insert_planned

log = logging.getLogger(__name__)

#: Wall-clock nudges are planned this far ahead of now (ours): settings changes re-plan (services.py).
PLAN_AHEAD = timedelta(minutes=60)
#: A member is planned again once their planned window ends sooner than this: each member is planned
#: about every PLAN_AHEAD - REPLAN_MARGIN, so a tick plans a slice of the members, not all of them.
REPLAN_MARGIN = timedelta(minutes=15)
#: After an outage, planning resumes this far back at most (everything older has expired).
CATCH_UP = timedelta(hours=24)
#: Members planned per transaction.
PLAN_BATCH = 1000


def minute(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0)


def track_new_members(now: datetime) -> int:
    """Give every member without one a planning window starting now (new members). One statement."""
    planning = NudgePlanning.__table__
    result = session.execute(
        insert(planning)
        .from_select(
            ["member_id", "planned_until"],
            select(Member.id, literal(minute(now))).where(~exists().where(planning.c.member_id == Member.id)),
        )
        .on_conflict_do_nothing()
    )
    return result.rowcount or 0  # type: ignore[attr-defined]  # an INSERT's Result is a CursorResult


@dataclass(frozen=True)
class Planned:
    members: int
    inserted: int
    #: What became of the rows already due when planned (decided as the claim would): the sent ones are
    #: `sending`, for delivery tasks after commit.
    claimed: dispatch.Claimed = field(default_factory=dispatch.Claimed)


def plan_batch(
    now: datetime,
    *,
    limit: int = PLAN_BATCH,
    policy: NudgePolicy = DEFAULT_POLICY,
    lease: timedelta | None = None,
) -> Planned:
    """Plan one batch of the members whose window needs it. Flushes; the caller commits.

    With a `lease` (the dispatcher's tick), rows already due are decided here as `dispatch.claim_due`
    would (`dispatch.decide`, under the same member locks) and inserted as decided: sent rows go in
    `sending` with the lease, and `Planned.claimed.send` lists them. That is the tick after an outage, or
    of new members: without it each of their rows would be inserted, read back and updated by the claim.
    """
    planning = NudgePlanning.__table__
    target = minute(now) + PLAN_AHEAD
    rows = session.execute(
        select(planning.c.member_id, planning.c.planned_until)
        .where(planning.c.planned_until < now + REPLAN_MARGIN)
        .order_by(planning.c.planned_until)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return Planned(0, 0)
    starts = {member_id: max(until, now - CATCH_UP) for member_id, until in rows}
    settings = inputs.member_settings(list(starts))
    planned = plan_members(starts, target, policy=policy, settings=settings)
    decided, fates = dispatch.Decided(), {}
    if lease is not None:
        due = [dispatch.row_of(uuid.uuid4(), m, nudge) for m, nudge in planned if nudge.due_at <= now]
        if due:
            decided = dispatch.decide(due, now=now, policy=policy, settings=settings)
            fates = _as_inserted(decided, due, leased_until=now + lease)
    inserted = insert_planned(planned, now=now, decided=fates)
    session.execute(update(planning).where(any_of(planning.c.member_id, starts)).values(planned_until=target))
    # A key the member had already keeps its own row (for the claim): only inserted rows were decided here.
    return Planned(len(rows), len(inserted), decided.only(set(inserted)).claimed())


def _as_inserted(
    decided: dispatch.Decided, rows: list[Any], *, leased_until: datetime
) -> dict[tuple[uuid.UUID, str], DecidedRow]:
    """How each decided row goes in, by (member, dedupe key). Rows of a member another claim holds are
    not among them: they go in `pending`, for the claim."""
    by_id = {row.id: row for row in rows}

    def fate(
        row_id: uuid.UUID, status: NudgeStatus, **values: Any
    ) -> tuple[tuple[uuid.UUID, str], DecidedRow]:
        row = by_id[row_id]
        values.setdefault("due_at", row.due_at)
        return (row.member_id, row.dedupe_key), DecidedRow(row_id, status.value, **values)

    fates = [fate(i, NudgeStatus.SENDING, next_attempt_at=leased_until) for i in decided.send]
    fates += [fate(i, NudgeStatus.PENDING, due_at=until) for i, until in decided.holds.items()]
    fates += [
        fate(i, NudgeStatus.SKIPPED, skip_reason=reason) for reason, ids in decided.skips.items() for i in ids
    ]
    return dict(fates)


def plan_members(
    starts: dict[uuid.UUID, datetime],
    end: datetime,
    *,
    policy: NudgePolicy = DEFAULT_POLICY,
    settings: dict[uuid.UUID, MemberSettings] | None = None,
) -> list[tuple[uuid.UUID, PlannedNudge]]:
    """Every wall-clock nudge of each member due in [starts[member], end), from one load for the batch
    (`settings`: the members' settings, when the caller has read them)."""
    ids = list(starts)
    first, last = inputs.utc_dates(min(starts.values()), end)
    if settings is None:
        settings = inputs.member_settings(ids)
    # Only members whose log time falls in their window need their logs and entries read.
    at_log_time = [m for m, s in settings.items() if _log_time_in(s, starts[m], end)]
    plans = inputs.plans(ids, first=first, last=last)
    checkins = inputs.checkins([m for m in ids if m in plans], first=first, last=last)
    lookback = timedelta(days=max(policy.streak_milestones, default=0) + WEEK_DAYS + 1)
    logs = inputs.day_logs(at_log_time, first=first - lookback)
    entries = inputs.last_entry_dates({m: settings[m] for m in at_log_time})
    reengaged = inputs.last_reengagement_dates(at_log_time)
    planned: list[tuple[uuid.UUID, PlannedNudge]] = []
    for member_id, member_settings in settings.items():
        nudges = plan_window(
            member_settings,
            plans=plans.get(member_id, ()),
            checkins=checkins.get(member_id, ()),
            day_logs=logs.get(member_id, ()),
            last_entry_date=entries.get(member_id),
            last_reengagement_date=reengaged.get(member_id),
            window_start=starts[member_id],
            window_end=end,
            policy=policy,
        )
        planned.extend((member_id, nudge) for nudge in nudges)
    return planned


def _log_time_in(settings: MemberSettings, start: datetime, end: datetime) -> bool:
    """Whether the member's log time falls in [start, end) on some local day (as `plan_window` reads it)."""
    day = localtime.local_date(start, settings.zone) - timedelta(days=1)
    last = localtime.local_date(end, settings.zone)
    while day <= last:
        if start <= localtime.local_to_utc(day, settings.log_time, settings.zone) < end:
            return True
        day += timedelta(days=1)
    return False
