"""Write to the audit log. Callers flush through their unit of work; the row commits with their change."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Uuid, bindparam, select, text

from companion import privacy
from companion.accounts.models import User
from companion.audit.models import AuditEntry
from companion.db import session


def record(
    action: str,
    *,
    actor_id: uuid.UUID | None,
    now: datetime,
    subject_member_id: uuid.UUID | None = None,
    **detail: Any,
) -> AuditEntry:
    """Append one audit row: `actor_id` did `action` (to `subject_member_id`'s records) at `now`."""
    entry = AuditEntry(
        at=now, actor_id=actor_id, action=action, subject_member_id=subject_member_id, detail=detail
    )
    session.add(entry)
    session.flush()
    return entry


def record_many(
    action: str,
    *,
    actor_id: uuid.UUID | None,
    now: datetime,
    subject_member_ids: Iterable[uuid.UUID],
    **detail: Any,
) -> int:
    """One row per member for a read of many members' records (a list page): one INSERT ... SELECT over
    an array of ids, a single statement and round trip however many members (an executemany sends one
    statement per row)."""
    ids = sorted(set(subject_member_ids))
    if ids:
        session.execute(
            _INSERT_MANY,
            {"at": now, "actor_id": actor_id, "action": action, "ids": ids, "detail": json.dumps(detail)},
        )
    return len(ids)


_INSERT_MANY = text(
    "INSERT INTO audit_log (at, actor_id, action, subject_member_id, detail) "
    "SELECT :at, :actor_id, :action, member_id, CAST(:detail AS jsonb) FROM unnest(:ids) AS member_id"
).bindparams(bindparam("ids", type_=ARRAY(Uuid)), bindparam("actor_id", type_=Uuid))


#: The actions the admin's audit page offers as filters (a filter also takes a prefix: "plan" is plan.*).
ACTIONS = (
    "caseload.listed",
    "export.built",
    "export.built_by_command_line",
    "export.downloaded",
    "export.requested",
    "flag.acknowledged",
    "flag.resolved",
    "flags.listed",
    "member.timeline_viewed",
    "member.viewed",
    "message.sent",
    "plan.changed",
    "plan.created",
    "staff.timezone_changed",
)


def _people(text: str) -> Any:
    """Users whose id is `text`, or whose email or display name contains it (case-insensitive)."""
    try:
        return select(User.id).where(User.id == uuid.UUID(text)).scalar_subquery()
    except ValueError:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return select(User.id).where(User.email.ilike(pattern) | User.display_name.ilike(pattern))


def search(
    *,
    staff: str = "",
    member: str = "",
    action: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    before: int | None = None,
    limit: int,
) -> tuple[list[tuple[AuditEntry, str | None]], bool]:
    """Audit rows newest first, each with its actor's email: by staff and member (an id, or part of a
    name or email), action (exact, or a prefix before the dot), and instants [start, end); keyset-paged
    by id (`before`). Returns the page and whether there are more."""
    query = select(AuditEntry, User.email).outerjoin(User, User.id == AuditEntry.actor_id)
    if staff:
        query = query.where(AuditEntry.actor_id.in_(_people(staff)))
    if member:
        query = query.where(AuditEntry.subject_member_id.in_(_people(member)))
    if action:
        query = query.where(
            (AuditEntry.action == action) | AuditEntry.action.startswith(action.rstrip(".") + ".")
        )
    if start is not None:
        query = query.where(AuditEntry.at >= start)
    if end is not None:
        query = query.where(AuditEntry.at < end)
    if before:
        query = query.where(AuditEntry.id < before)
    rows = session.execute(query.order_by(AuditEntry.id.desc()).limit(limit + 1)).all()
    return [(entry, email) for entry, email in rows[:limit]], len(rows) > limit


def disclosures(member_id: uuid.UUID, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Every staff read and release of a member's records, newest first: who (id, role, name), what,
    when (HIPAA's access right, 42 CFR Part 2's list of disclosures). `limit` keeps the newest only."""
    query = (
        select(AuditEntry, User.role, User.display_name)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .where(AuditEntry.subject_member_id == member_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        {
            "at": entry.at.isoformat(),
            "action": entry.action,
            "by": {
                "id": str(entry.actor_id) if entry.actor_id else None,
                "role": str(role) if role else "command_line",
                "name": name,
            },
            "detail": entry.detail,
        }
        for entry, role, name in session.execute(query).all()
    ]


privacy.register_exporter("disclosures", disclosures)
