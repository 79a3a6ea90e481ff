"""Write to the audit log. Callers flush through their unit of work; the row commits with their change."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert

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
    """One row per member for a read of many members' records (a list page), in one statement."""
    rows = [
        {"at": now, "actor_id": actor_id, "action": action, "subject_member_id": m, "detail": detail}
        for m in sorted(set(subject_member_ids))
    ]
    if rows:
        session.execute(insert(AuditEntry), rows)
    return len(rows)
