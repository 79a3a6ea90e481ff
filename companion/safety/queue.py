"""The coach side of safety flags (API.md "Coach", the dashboard's queue): the flags a coach may see, most
urgent first, acknowledged and resolved by staff; and the member's flags for `GET /me/export`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    or_,
    select,
    tuple_,
)

from companion import privacy
from companion.accounts.models import CoachAssignment, Role, User
from companion.audit import services as audit
from companion.db import session
from companion.domain import localtime
from companion.domain import safety as rules
from companion.domain.errors import Conflict, NotFound
from companion.pagination import cursor_error, decode_page_cursor, encode_page_cursor
from companion.safety.models import (
    UNRESOLVED,
    Flag,
    FlagStatus,
)
from companion.safety.schemas import FlagSchema


def _visible(actor: User) -> Any:
    """The flags `actor` may see: an admin all of them; a coach those of members on their caseload."""
    query = select(Flag)
    if actor.role != Role.ADMIN:
        query = query.join(
            CoachAssignment,
            and_(
                CoachAssignment.member_id == Flag.member_id,
                CoachAssignment.coach_id == actor.id,
                CoachAssignment.ended_at.is_(None),
            ),
        )
    return query


def flag_view(flag: Flag) -> dict[str, Any]:
    return {
        "id": flag.id,
        "member_id": flag.member_id,
        "rule": flag.rule,
        "rule_version": flag.rule_version,
        "severity": rules.Tier(flag.tier).label,
        "status": flag.status,
        "summary": flag.summary,
        "symptoms": list(flag.symptoms),
        "medications": list(flag.medications),
        "evidence": list(flag.evidence),
        "first_seen": flag.first_seen,
        "last_seen": flag.last_seen,
        "created_at": flag.created_at,
        "updated_at": flag.updated_at,
        "acknowledged_by": flag.acknowledged_by,
        "acknowledged_at": flag.acknowledged_at,
        "resolved_by": flag.resolved_by,
        "resolved_at": flag.resolved_at,
        "resolution_note": flag.resolution_note,
        "escalated_at": flag.escalated_at,
        "cleared_at": flag.cleared_at,
        "cleared_reason": flag.cleared_reason,
        "cleared_evidence": list(flag.cleared_evidence or ()),
        "queue": "coach" if flag.assigned_coach_id is not None else "admins",
        "assigned_coach_id": flag.assigned_coach_id,
    }


def list_flags(
    actor: User,
    *,
    status: str | None,
    severity: str | None,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> dict[str, Any]:
    """`GET /coach/flags`: most urgent first, then oldest (by when the flag opened), keyset-paged.
    Without `status`, the flags still to handle (open and acknowledged)."""
    query = _visible(actor).where(Flag.status.in_([status] if status else UNRESOLVED))
    if severity:
        query = query.where(Flag.tier == int(rules.Tier[severity.upper()]))
    filters = ("flags", actor.id, status, severity)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        tier, created_at, flag_id = _flag_cursor(after)
        query = query.where(
            or_(
                Flag.tier < tier,
                and_(Flag.tier == tier, tuple_(Flag.created_at, Flag.id) > (created_at, flag_id)),
            )
        )
    flags = list(
        session.execute(query.order_by(Flag.tier.desc(), Flag.created_at, Flag.id).limit(limit + 1)).scalars()
    )
    more = len(flags) > limit
    flags = flags[:limit]
    audit.record_many(
        "flags.listed", actor_id=actor.id, now=now, subject_member_ids=[f.member_id for f in flags]
    )
    last = flags[-1] if flags else None
    return {
        "items": [flag_view(f) for f in flags],
        "next_cursor": encode_page_cursor(
            [last.tier, last.created_at.isoformat(), str(last.id)], filters=filters
        )
        if more and last
        else None,
    }


def _flag_cursor(after: list[Any]) -> tuple[int, datetime, uuid.UUID]:
    try:
        tier, created_at, flag_id = after
        instant = datetime.fromisoformat(str(created_at))
        localtime.to_utc(instant)
        return int(tier), instant, uuid.UUID(str(flag_id))
    except (ValueError, TypeError, OverflowError) as exc:
        raise cursor_error() from exc


def _flag_for(actor: User, flag_id: uuid.UUID) -> Flag:
    flag = session.execute(
        _visible(actor).where(Flag.id == flag_id).with_for_update(of=Flag)
    ).scalar_one_or_none()
    if flag is None:
        raise NotFound("No such flag on your caseload.")
    return flag


def acknowledge(actor: User, flag_id: uuid.UUID, *, now: datetime) -> Flag:
    """`POST /coach/flags/{id}/acknowledge`: the flag is being handled; it no longer escalates.
    Acknowledging it again changes nothing (the first who and when stay).

    :raises NotFound: not a flag `actor` may see.
    :raises Conflict: the flag is resolved, or cleared (no longer true: nothing to handle).
    """
    flag = _flag_for(actor, flag_id)
    if flag.status == FlagStatus.RESOLVED:
        raise Conflict("This flag is resolved.", current=_dumped(flag))
    if flag.status == FlagStatus.CLEARED:
        raise Conflict("This flag was cleared: it is no longer true.", current=_dumped(flag))
    if flag.status == FlagStatus.OPEN:
        flag.status = FlagStatus.ACKNOWLEDGED.value
        flag.acknowledged_by = actor.id
        flag.acknowledged_at = now
        flag.updated_at = now
        session.flush()
        audit.record(
            "flag.acknowledged",
            actor_id=actor.id,
            now=now,
            subject_member_id=flag.member_id,
            flag_id=str(flag.id),
            rule=flag.rule,
        )
    return flag


def resolve(actor: User, flag_id: uuid.UUID, note: str, *, now: datetime) -> Flag:
    """`POST /coach/flags/{id}/resolve`: closed, with the coach's note. From open or acknowledged.

    :raises NotFound: not a flag `actor` may see.
    :raises Conflict: already resolved, or cleared (the stored flag under `error.current`).
    """
    flag = _flag_for(actor, flag_id)
    if flag.status == FlagStatus.RESOLVED:
        raise Conflict("This flag is already resolved.", current=_dumped(flag))
    if flag.status == FlagStatus.CLEARED:
        raise Conflict("This flag was cleared: it is no longer true.", current=_dumped(flag))
    flag.status = FlagStatus.RESOLVED.value
    flag.resolved_by = actor.id
    flag.resolved_at = now
    flag.resolution_note = note
    flag.updated_at = now
    session.flush()
    audit.record(
        "flag.resolved",
        actor_id=actor.id,
        now=now,
        subject_member_id=flag.member_id,
        flag_id=str(flag.id),
        rule=flag.rule,
    )
    return flag


def _dumped(flag: Flag) -> dict[str, Any]:
    return FlagSchema().dump(flag_view(flag))


def _export(member_id: uuid.UUID) -> dict[str, Any]:
    """The flags raised about the member and what staff wrote and did about them (GET /me/export)."""
    flags = session.execute(
        select(Flag).where(Flag.member_id == member_id).order_by(Flag.created_at)
    ).scalars()
    return {
        "flags": [
            {
                "id": str(f.id),
                "rule": f.rule,
                "rule_version": f.rule_version,
                "tier": f.tier,
                "status": f.status,
                "summary": f.summary,
                "symptoms": list(f.symptoms or []),
                "medications": list(f.medications or []),
                "first_seen": f.first_seen.isoformat(),
                "last_seen": f.last_seen.isoformat(),
                "created_at": f.created_at.isoformat(),
                "acknowledged_by": str(f.acknowledged_by) if f.acknowledged_by else None,
                "acknowledged_at": f.acknowledged_at.isoformat() if f.acknowledged_at else None,
                "resolved_by": str(f.resolved_by) if f.resolved_by else None,
                "resolved_at": f.resolved_at.isoformat() if f.resolved_at else None,
                "staff_note": f.resolution_note,
            }
            for f in flags
        ]
    }


privacy.register_exporter("safety", _export)
