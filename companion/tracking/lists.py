"""The member's lists (`GET /drink-logs`, `/cravings`, `/bac-readings`; symptom reports through
`list_by_instant`): a local date window, oldest first, a page at a time (companion/pagination.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select, tuple_

from companion.accounts.models import Member
from companion.db import session
from companion.domain.errors import InvalidInput
from companion.domain.types import DateRange
from companion.pagination import decode_page_cursor, instant_cursor_key, page
from companion.tracking.models import BacReading, Craving, DrinkLog
from companion.tracking.services import bac_view, craving_view, drink_log_view


def list_drink_logs(member: Member, window: DateRange, *, cursor: str | None, limit: int) -> dict[str, Any]:
    query = select(DrinkLog).where(
        DrinkLog.member_id == member.id,
        DrinkLog.deleted_at.is_(None),
        DrinkLog.date.between(window.start, window.end),
    )
    filters = ("drink_logs", member.id, window.start, window.end)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        query = query.where(DrinkLog.date > _cursor_date(after[0]))
    logs = list(session.execute(query.order_by(DrinkLog.date).limit(limit + 1)).scalars())
    result = page(logs, limit, lambda log: [log.date.isoformat()], filters=filters)
    result["items"] = [drink_log_view(log, member) for log in result["items"]]
    return result


def _cursor_date(value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidInput(
            "The request is invalid.", fields={"cursor": ["Not a cursor this server issued."]}
        ) from exc


def list_by_instant(
    model: type,
    instant_column,
    member: Member,
    window: DateRange,
    cursor: str | None,
    limit: int,
    view,
):
    query = select(model).where(model.member_id == member.id, model.date.between(window.start, window.end))
    filters = (model.__tablename__, member.id, window.start, window.end)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        query = query.where(tuple_(instant_column, model.id) > instant_cursor_key(after))
    rows = list(session.execute(query.order_by(instant_column, model.id).limit(limit + 1)).scalars())
    result = page(
        rows, limit, lambda r: [getattr(r, instant_column.key).isoformat(), str(r.id)], filters=filters
    )
    result["items"] = [view(r) for r in result["items"]]
    return result


def list_cravings(member: Member, window: DateRange, *, cursor: str | None, limit: int) -> dict[str, Any]:
    return list_by_instant(Craving, Craving.recorded_at, member, window, cursor, limit, craving_view)


def list_bac_readings(member: Member, window: DateRange, *, cursor: str | None, limit: int) -> dict[str, Any]:
    return list_by_instant(BacReading, BacReading.measured_at, member, window, cursor, limit, bac_view)
