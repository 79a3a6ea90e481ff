"""Nudge rows from planned nudges: what the dispatcher, the web side and the hooks insert alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from companion.db import session
from companion.db.sql import pg_array
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


@dataclass(frozen=True, slots=True)
class DecidedRow:
    """How a row that is already due when planned goes in, decided in the planner's transaction
    (`planning.plan_batch`): sent (`sending`, leased until `next_attempt_at`), held (`pending`, due
    later) or skipped with its reason."""

    id: uuid.UUID
    status: str
    due_at: datetime
    next_attempt_at: datetime | None = None
    skip_reason: str | None = None


def insert_planned(
    planned: Iterable[tuple[uuid.UUID, PlannedNudge]],
    *,
    now: datetime,
    decided: Mapping[tuple[uuid.UUID, str], DecidedRow] | None = None,
) -> list[uuid.UUID]:
    """Insert the rows in one statement (arrays unnested); a key the member already has is left as it is.
    `decided`: by (member, dedupe key), the rows decided already (the others go in `pending`, with a new
    id). The ids of the rows inserted."""
    rows = [(member_id, nudge) for member_id, nudge in planned]
    if not rows:
        return []
    params = {
        "m": pg_array(m for m, _ in rows),
        "k": pg_array(n.kind.value for _, n in rows),
        "d": pg_array(n.dedupe_key for _, n in rows),
        "ld": pg_array(n.local_date for _, n in rows),
        "ls": pg_array(n.local_slot for _, n in rows),
        "z": pg_array(n.zone for _, n in rows),
        "ex": pg_array(n.expires_at for _, n in rows),
        "t": pg_array(n.template for _, n in rows),
        "s": pg_array(n.subject_id for _, n in rows),
        "now": now,
    }
    if decided:
        fates = [decided.get((m, n.dedupe_key)) for m, n in rows]
        params |= {
            "i": pg_array(f.id if f else uuid.uuid4() for f in fates),
            "st": pg_array(f.status if f else NudgeStatus.PENDING.value for f in fates),
            "du": pg_array(f.due_at if f else n.due_at for f, (_, n) in zip(fates, rows, strict=True)),
            "na": pg_array(f.next_attempt_at if f else None for f in fates),
            "sr": pg_array(f.skip_reason if f else None for f in fates),
        }
        values = "i, m, k, d, ld, ls, z, du, ex, t, s, st, sr, na"
        arrays = ", CAST(:i AS uuid[]), CAST(:st AS text[]), CAST(:sr AS text[]), CAST(:na AS timestamptz[])"
        names = ", i, st, sr, na"
    else:
        params["du"] = pg_array(n.due_at for _, n in rows)
        values = "gen_random_uuid(), m, k, d, ld, ls, z, du, ex, t, s, 'pending', NULL, NULL"
        arrays = names = ""
    result = session.execute(
        text(
            "INSERT INTO nudges (id, member_id, kind, dedupe_key, local_date, local_slot, zone, due_at, "
            "expires_at, template, subject_id, status, skip_reason, next_attempt_at, attempts, send_round, "
            f"created_at) SELECT {values}, 0, 0, :now "
            "FROM unnest(CAST(:m AS uuid[]), CAST(:k AS text[]), CAST(:d AS text[]), "
            "CAST(:ld AS date[]), CAST(:ls AS time[]), CAST(:z AS text[]), CAST(:du AS timestamptz[]), "
            f"CAST(:ex AS timestamptz[]), CAST(:t AS text[]), CAST(:s AS uuid[]){arrays}) "
            f"AS v(m, k, d, ld, ls, z, du, ex, t, s{names}) "
            "ON CONFLICT (member_id, dedupe_key) DO NOTHING RETURNING id"
        ),
        params,
    )
    return list(result.scalars())


def insert_one(member_id: uuid.UUID, nudge: PlannedNudge, *, now: datetime, **extra: Any) -> uuid.UUID | None:
    """Insert one row; its id, or None when the member already has its key."""
    return session.execute(
        insert(_NUDGES)
        .values(**row_values(member_id, nudge, now=now, **extra))
        .on_conflict_do_nothing(index_elements=["member_id", "dedupe_key"])
        .returning(_NUDGES.c.id)
    ).scalar_one_or_none()
