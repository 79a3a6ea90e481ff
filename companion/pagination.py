"""List pages: the `from`/`to`/`cursor`/`limit` arguments every list takes, and keyset page cursors.

A cursor is the sort key of the last row a page showed, signed (itsdangerous, the app's secret key) and
bound to the filters the page was read with: a made-up or edited cursor, or one sent with other filters,
is refused naming `cursor` instead of quietly continuing somewhere else. Every list of the API, the coach
API and the dashboard pages through here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
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


#: What a cursor that fails its signature (made up, edited, or signed with another key) is told.
NOT_OURS = "Not a cursor this server issued."
#: What a genuine cursor sent with other filters (other dates, kinds, member...) than its page's is told.
OTHER_FILTERS = "This cursor belongs to a list with other filters; ask for the first page again without it."


def cursor_error(message: str = NOT_OURS) -> InvalidInput:
    """The error naming `cursor` (API.md: a 422 `invalid_payload` with `fields.cursor`)."""
    return InvalidInput("The request is invalid.", fields={"cursor": [message]})


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str | bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="companion.page-cursor", serializer_kwargs={"default": str})


def _fingerprint(filters: Sequence[Any]) -> str:
    """A short digest of the filters a page was read with (ids, dates, kinds...), stored in its cursor."""
    text = json.dumps([str(f) if not isinstance(f, (list, tuple)) else [str(x) for x in f] for f in filters])
    return base64.urlsafe_b64encode(hashlib.blake2b(text.encode(), digest_size=6).digest()).decode()


def encode_page_cursor(key: Sequence[Any], *, filters: Sequence[Any]) -> str:
    """A cursor for the page after `key`, signed with the app's secret key and bound to `filters`: the
    list's name and every filter its rows were read with (whose change would make `key` mean another
    place). Opaque to clients (API.md); its key is readable, not secret."""
    return _signer(current_app.secret_key).dumps([list(key), _fingerprint(filters)])


def decode_page_cursor(cursor: str | None, *, filters: Sequence[Any]) -> list[Any] | None:
    """The key a cursor continues after, None for the first page.

    :raises InvalidInput: naming `cursor`: one this server did not sign, or one issued for other filters.
    """
    if not cursor:
        return None
    try:
        payload = _signer(current_app.secret_key).loads(cursor)
    except BadSignature as exc:
        raise cursor_error() from exc
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], list)):
        raise cursor_error()
    key, fingerprint = payload
    if fingerprint != _fingerprint(filters):
        raise cursor_error(OTHER_FILTERS)
    return key


def instant_cursor_key(after: list[Any]) -> tuple[datetime, uuid.UUID]:
    """The (instant, id) a keyset page of instant-ordered records continues after."""
    try:
        instant = datetime.fromisoformat(str(after[0]))
        localtime.to_utc(instant)  # an offset that overflows is not one we issued
        return instant, uuid.UUID(str(after[1]))
    except (ValueError, IndexError, OverflowError) as exc:
        raise cursor_error() from exc


def page(items: list[Any], limit: int, key_of, *, filters: Sequence[Any]) -> dict[str, Any]:
    """`items` fetched with limit + 1: the extra one only says there is a next page (its cursor bound to
    `filters`, as `encode_page_cursor`)."""
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_page_cursor(key_of(items[-1]), filters=filters) if more and items else None
    return {"items": items, "next_cursor": next_cursor}
