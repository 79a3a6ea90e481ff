"""What other features tell the nudges, inside their own transaction (they flush; their caller commits).

* a craving is recorded (`tracking.services.record_craving`): craving support is a row at once, so
  the dispatcher catches it even if the task sent after commit is lost with Redis;
* the member's zone or log time changes (`accounts.services.update_member`): pending wall-clock rows
  follow them (`domain.nudges.reanchored`), and the member is planned again from now;
* a medication plan is created or changed (`medications.services`): dose reminders not yet due are
  planned again from now, under the new regimen.

Imports stay light (no feature services), so every feature may import this module.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import func, select, update

from companion import jobs
from companion.db import session
from companion.domain import localtime
from companion.domain.nudges import (
    DEFAULT_POLICY,
    LOG_TIME_KINDS,
    WALL_CLOCK_KINDS,
    MemberSettings,
    NudgeKind,
    craving_support_for,
    reanchored,
)
from companion.nudges.models import Nudge, NudgePlanning, NudgeStatus, planned_of, settings_of
from companion.nudges.rows import insert_one

log = logging.getLogger(__name__)

_N = Nudge.__table__.c


def member_settings(member: Any) -> MemberSettings:
    """The member's nudge settings (a `Member` row); only the zone when the rest is refused."""
    try:
        return settings_of(member)
    except ValueError:
        log.error("member nudge settings refused", extra={"member_id": str(member.id)})
        return MemberSettings(member.timezone)


def craving_support_key(craving_id: uuid.UUID) -> str:
    return f"{NudgeKind.CRAVING_SUPPORT.value}:{craving_id}"


def plan_craving_support(
    member: Any, craving_id: uuid.UUID, intensity: int, recorded_at: datetime, *, now: datetime
) -> uuid.UUID | None:
    """The craving's support nudge: its row's id (made now if it is due), or None when none is due."""
    existing = session.execute(
        select(_N.id).where(_N.member_id == member.id, _N.dedupe_key == craving_support_key(craving_id))
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    last = session.execute(
        select(func.max(_N.due_at)).where(
            _N.member_id == member.id, _N.kind == NudgeKind.CRAVING_SUPPORT.value
        )
    ).scalar_one()
    nudge = craving_support_for(
        craving_id, intensity, recorded_at, member_settings(member), last_support_at=last
    )
    if nudge is None or (nudge.expires_at is not None and nudge.expires_at <= now):
        return None  # below the threshold, too soon after the last tip, or synced too late to help
    return (
        insert_one(member.id, nudge, now=now)
        or session.execute(
            select(_N.id).where(_N.member_id == member.id, _N.dedupe_key == nudge.dedupe_key)
        ).scalar_one()
    )


def craving_support_due(
    member: Any, craving_id: uuid.UUID, intensity: int, recorded_at: datetime, *, now: datetime
) -> bool:
    """Whether a new craving may get a support nudge, decided without reading anything: a rating below
    the threshold, or whose support would already have expired (a sync of old ratings), gets none. The
    member's last support row can only hold a nudge back, never make one due."""
    if intensity < DEFAULT_POLICY.craving_threshold:
        return False
    due = craving_support_for(craving_id, intensity, recorded_at, member_settings(member))
    return due is not None and (due.expires_at is None or due.expires_at > now)


def craving_recorded(member: Any, craving: Any, *, now: datetime) -> None:
    """A new craving: a high rating gets its support nudge row now, and its task after commit."""
    if not craving_support_due(member, craving.id, craving.intensity, craving.recorded_at, now=now):
        return
    nudge_id = plan_craving_support(member, craving.id, craving.intensity, craving.recorded_at, now=now)
    if nudge_id is not None:
        jobs.enqueue_after_commit(jobs.CRAVING_SUPPORT, member_id=str(member.id), craving_id=str(craving.id))


def replan_from(member_id: uuid.UUID, now: datetime) -> None:
    """Plan the member again from now at the next dispatcher tick."""
    planning = NudgePlanning.__table__
    session.execute(
        update(planning)
        .where(planning.c.member_id == member_id, planning.c.planned_until > now)
        .values(planned_until=now.replace(second=0, microsecond=0))
    )


def settings_changed(member: Any, *, zone_before: str, log_time_before: time, now: datetime) -> int:
    """After PATCH /me: pending wall-clock rows follow a new zone or log time. How many rows moved.

    A row keeps its local date (so a local day is never reminded twice); its due time becomes that
    date's wall time in the new zone (`domain.nudges.reanchored`): moving west it waits, moving east a
    day already over there expires. A new log time moves the log-time kinds to it.
    """
    zone_changed = member.timezone != zone_before
    log_time_changed = member.log_time != log_time_before
    if not zone_changed and not log_time_changed:
        return 0
    kinds = WALL_CLOCK_KINDS if zone_changed else LOG_TIME_KINDS
    rows = session.execute(
        select(
            _N.id, _N.kind, _N.dedupe_key, _N.local_date, _N.local_slot, _N.zone, _N.due_at,
            _N.expires_at, _N.template, _N.subject_id,
        )
        .where(
            _N.member_id == member.id,
            _N.status == NudgeStatus.PENDING.value,
            _N.send_round == 0,
            _N.kind.in_([k.value for k in kinds]),
        )
        .with_for_update()
    ).all()  # fmt: skip
    moved = 0
    for row in rows:
        nudge = planned_of(row)
        if nudge is None:
            continue
        try:
            if log_time_changed and nudge.kind in LOG_TIME_KINDS:
                slot = member.log_time
                nudge = dataclasses.replace(
                    nudge, local_slot=slot, due_at=localtime.local_to_utc(nudge.local_date, slot, nudge.zone)
                )
            nudge = reanchored(nudge, member.timezone)
        except ValueError:  # the new time is after the day's end: leave the row to expire
            continue
        session.execute(
            update(Nudge.__table__)
            .where(_N.id == row.id)
            .values(
                zone=nudge.zone, local_slot=nudge.local_slot, due_at=nudge.due_at, expires_at=nudge.expires_at
            )
        )
        moved += 1
    replan_from(member.id, now)
    return moved


def plan_changed(member_id: uuid.UUID, plan_id: uuid.UUID, *, now: datetime) -> None:
    """A medication plan was created or changed: its dose reminders not yet due are planned again."""
    session.execute(
        Nudge.__table__.delete().where(
            _N.member_id == member_id,
            _N.subject_id == plan_id,
            _N.kind == NudgeKind.DOSE_REMINDER.value,
            _N.status == NudgeStatus.PENDING.value,
            _N.send_round == 0,
            _N.due_at > now,
        )
    )
    replan_from(member_id, now)
