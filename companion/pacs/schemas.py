"""PACS bodies in and out. Inbound: unknown fields are 422, named."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from companion.validation import Instant, StrictSchema

#: DOMAIN.md: 5 items scored 0-6.
ITEMS = 5
ITEM_MAX = 6


class PacsInputSchema(StrictSchema):
    id = fields.UUID(required=True, metadata={"description": "Made on the phone; a retry sends the same id."})
    week_of = fields.Date(
        required=True,
        metadata={
            "description": "The local Monday of the week recalled; not after this week, ≤ 60 days back."
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
    week_of = fields.Date()
    items = fields.List(fields.Integer())
    total = fields.Integer(metadata={"description": "0-30; 15 or more: high craving (DOMAIN.md)."})
    created_at = Instant()


class PacsPageSchema(Schema):
    items = fields.List(fields.Nested(PacsSchema))
    next_cursor = fields.String(allow_none=True)
