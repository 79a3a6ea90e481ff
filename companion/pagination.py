"""List pages: the `from`/`to`/`cursor`/`limit` arguments every list takes, and keyset page cursors."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from companion.domain import localtime
from companion.domain.errors import InvalidInput
from companion.domain.types import DateRange
from companion.validation import StrictSchema

#: API.md: `from`/`to` at most 366 days apart.
MAX_RANGE_DAYS = 366
#: Without `from`, a list starts this many days before `to` (ours).
DEFAULT_RANGE_DAYS = 30
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


class RangeArgsSchema(StrictSchema):
    from_ = fields.Date(data_key="from", metadata={"description": "First local date (inclusive)."})
    to = fields.Date(metadata={"description": "Last local date (inclusive); default: the member's today."})
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page."}
    )
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Page size, at most {MAX_PAGE_SIZE}."},
    )

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end:
            if start > end:
                raise ValidationError({"from": ["Must not be after 'to'."]})
            if (end - start).days > MAX_RANGE_DAYS:
                raise ValidationError({"to": [f"At most {MAX_RANGE_DAYS} days after 'from'."]})


def resolve_range(args: dict[str, Any], today: date) -> DateRange:
    end = args.get("to") or today
    start = args.get("from_") or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if start > end:
        raise InvalidInput("The request is invalid.", fields={"from": ["Must not be after 'to'."]})
    return DateRange(start, end)


def encode_page_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, default=str).encode()).decode().rstrip("=")


def decode_page_cursor(cursor: str | None) -> list[Any] | None:
    if not cursor:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            "The request is invalid.", fields={"cursor": ["Not a cursor this server issued."]}
        ) from exc
    if not isinstance(key, list):
        raise InvalidInput("The request is invalid.", fields={"cursor": ["Not a cursor this server issued."]})
    return key


def instant_cursor_key(after: list[Any]) -> tuple[datetime, uuid.UUID]:
    """The (instant, id) a keyset page of instant-ordered records continues after."""
    try:
        instant = datetime.fromisoformat(str(after[0]))
        localtime.to_utc(instant)  # an offset that overflows is not one we issued
        return instant, uuid.UUID(str(after[1]))
    except (ValueError, IndexError, OverflowError) as exc:
        raise InvalidInput(
            "The request is invalid.", fields={"cursor": ["Not a cursor this server issued."]}
        ) from exc


def page(items: list[Any], limit: int, key_of) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """`items` fetched with limit + 1: the extra one only says there is a next page."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode_page_cursor(key_of(items[-1])) if more and items else None}
