"""PACS bodies in and out. Inbound: unknown fields are 422, named."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from companion.validation import Instant, StrictSchema

#: DOMAIN.md: 5 items scored 0-6.
ITEMS = 5
ITEM_MAX = 6


class PacsInputSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "9a4e2b71-5c3d-4f8e-a1b2-7c6d5e4f3a2b",
        "week_of": "2026-11-16",
        "items": [3, 2, 2, 4, 3],
    }

    id = fields.UUID(required=True, metadata={"description": "Made on the phone; a retry sends the same id."})
    week_of = fields.Date(
        required=True,
        metadata={
            "description": "The Monday (in the member's time zone) starting the week the answers "
            "recall: not after this week's Monday, at most 60 days (the backfill window) before the "
            "member's local today. One PACS a week: another id for a week already answered is a 409."
        },
    )
    items = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=0, max=ITEM_MAX)),
        required=True,
        validate=validate.Length(equal=ITEMS),
        metadata={"description": "The 5 item scores, 0-6 each, in the scale's order."},
    )


class PacsSchema(Schema):
    id = fields.UUID()
    week_of = fields.Date(
        metadata={"description": "The local Monday starting the week the answers recall (one PACS a week)."}
    )
    items = fields.List(
        fields.Integer(), metadata={"description": "The 5 item scores, 0-6 each, in the scale's order."}
    )
    total = fields.Integer(
        metadata={
            "description": "The sum of the 5 items, 0-30; 15 or more suggests high craving (DOMAIN.md)."
        }
    )
    created_at = Instant()


class PacsPageSchema(Schema):
    items = fields.List(
        fields.Nested(PacsSchema),
        metadata={"description": "The PACS of this page, oldest `week_of` first."},
    )
    next_cursor = fields.String(allow_none=True)
