"""Nudge rows from planned nudges: what the dispatcher, the web side and the hooks insert alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from companion.db import session
from companion.domain.nudges import PlannedNudge
from companion.nudges.models import Nudge, NudgeStatus

_NUDGES = Nudge.__table__


def row_values(member_id: uuid.UUID, nudge: PlannedNudge, *, now: datetime, **extra: Any) -> dict[str, Any]:
    """A `nudges` row for a planned nudge (a new id unless `extra` gives one)."""
    return {
        "id": extra.pop("id", None) or uuid.uuid4(),
        "member_id": member_id,
        "kind": nudge.kind.value,
        "dedupe_key": nudge.dedupe_key,
        "local_date": nudge.local_date,
        "local_slot": nudge.local_slot,
        "zone": nudge.zone,
        "due_at": nudge.due_at,
        "expires_at": nudge.expires_at,
        "template": nudge.template,
        "subject_id": nudge.subject_id,
        "status": NudgeStatus.PENDING.value,
        "attempts": 0,
        "send_round": 0,
        "created_at": now,
        **extra,
    }


def insert_planned(planned: Iterable[tuple[uuid.UUID, PlannedNudge]], *, now: datetime) -> int:
    """Insert the rows in one statement; a key the member already has is left as it is. How many were new."""
    values = [row_values(member_id, nudge, now=now) for member_id, nudge in planned]
    if not values:
        return 0
    result = session.execute(
        insert(_NUDGES)
        .on_conflict_do_nothing(index_elements=["member_id", "dedupe_key"])
        .returning(_NUDGES.c.id),
        values,
    )
    return len(result.all())


def insert_one(member_id: uuid.UUID, nudge: PlannedNudge, *, now: datetime, **extra: Any) -> uuid.UUID | None:
    """Insert one row; its id, or None when the member already has its key."""
    return session.execute(
        insert(_NUDGES)
        .values(**row_values(member_id, nudge, now=now, **extra))
        .on_conflict_do_nothing(index_elements=["member_id", "dedupe_key"])
        .returning(_NUDGES.c.id)
    ).scalar_one_or_none()
