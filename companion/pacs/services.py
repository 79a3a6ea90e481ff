"""PACS: recorded once by the phone's id (like cravings); one a member and week (another id for a week
already answered is a 409). Each new one asks for a safety scan (the craving-escalation rule reads it)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_

from companion import privacy
from companion.accounts.models import Member, local_today
from companion.config import backfill_days
from companion.db import session
from companion.domain.errors import Conflict, InvalidInput
from companion.domain.types import DateRange
from companion.pacs.models import PacsReport
from companion.pacs.schemas import PacsSchema
from companion.pagination import cursor_error, decode_page_cursor, page
from companion.tracking import rowset
from companion.tracking import services as tracking


def pacs_view(report: PacsReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "week_of": report.week_of,
        "items": list(report.items),
        "total": report.total,
        "created_at": report.created_at,
    }


def _same(stored: PacsReport, new: dict[str, Any]) -> bool:
    return (stored.week_of, list(stored.items)) == (new["week_of"], new["items"])


def _dump(stored: PacsReport) -> dict[str, Any]:
    return PacsSchema().dump(pacs_view(stored))


#: How a new PACS is inserted (tracking/rowset.py). Its id is the conflict key; the week's own key is
#: checked before (another id for a week already answered is a 409 naming `week_of`).
PACS_REPORTS = rowset.RowSpec(
    "pacs_reports",
    (
        rowset.Column("id", "uuid"),
        rowset.Column("week_of", "date"),
        rowset.Column("items", "smallint[]"),
        rowset.Column("total", "smallint"),
        rowset.Column("created_at", "timestamptz"),
    ),
    conflict=("member_id", "id"),
    key=("id",),
)
PACS_REPORT = tracking.ById(PacsReport, PACS_REPORTS, _same, _dump)


def record_pacs(
    member: Member, data: dict[str, Any], *, origin: uuid.UUID | None, now: datetime
) -> tuple[PacsReport, str]:
    """`POST /pacs` (and a sync item). :raises InvalidInput: `week_of` not a Monday, after this week,
    or more than the backfill window back. :raises Conflict: the same id with another body, or
    another id for a week already answered."""
    week_of = data["week_of"]
    today = local_today(member, now)
    problem = None
    if week_of.weekday() != 0:
        problem = "Must be a Monday (the week's first day)."
    elif week_of > today:
        problem = "Must not be after this week."
    elif week_of < today - timedelta(days=backfill_days()):
        problem = f"Cannot be more than {backfill_days()} days ago."
    if problem:
        raise InvalidInput("The request body is invalid.", fields={"week_of": [problem]})
    values = {"week_of": week_of, "items": list(data["items"]), "total": sum(data["items"])}
    taken = session.execute(
        select(PacsReport).where(PacsReport.member_id == member.id, PacsReport.week_of == week_of)
    ).scalar_one_or_none()
    if taken is not None and taken.id != data["id"]:
        raise Conflict(
            "This week already has a PACS.",
            fields={"week_of": ["This week already has a PACS (with another id)."]},
            current=PacsSchema().dump(pacs_view(taken)),
        )
    return tracking._record_once(PACS_REPORT, member, data["id"], values, origin=origin, now=now)


def list_pacs(member: Member, window: DateRange, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """PACS whose week starts in the window, oldest first."""
    query = select(PacsReport).where(
        PacsReport.member_id == member.id, PacsReport.week_of.between(window.start, window.end)
    )
    filters = ("pacs", member.id, window.start, window.end)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        try:
            key = (date.fromisoformat(str(after[0])), uuid.UUID(str(after[1])))
        except (ValueError, TypeError, IndexError) as exc:
            raise cursor_error() from exc
        query = query.where(tuple_(PacsReport.week_of, PacsReport.id) > key)
    rows = list(session.execute(query.order_by(PacsReport.week_of, PacsReport.id).limit(limit + 1)).scalars())
    result = page(rows, limit, lambda r: [r.week_of.isoformat(), str(r.id)], filters=filters)
    result["items"] = [pacs_view(r) for r in result["items"]]
    return result


def _export(member_id: uuid.UUID) -> dict[str, Any]:
    rows = session.execute(
        select(PacsReport).where(PacsReport.member_id == member_id).order_by(PacsReport.week_of)
    ).scalars()
    return {"pacs": PacsSchema(many=True).dump([pacs_view(r) for r in rows])}


privacy.register_exporter("pacs", _export)
