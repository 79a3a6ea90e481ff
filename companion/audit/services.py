"""Write to the audit log. Callers flush through their unit of work; the row commits with their change."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Uuid, bindparam, select, text

from companion import privacy
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


def disclosures(member_id: uuid.UUID, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Every staff read and release of a member's records, newest first: who (id, role, name), what,
    when (HIPAA's access right, 42 CFR Part 2's list of disclosures). `limit` keeps the newest only."""
    from companion.accounts.models import User  # the audit log stands below accounts

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
