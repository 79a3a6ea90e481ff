"""Insurer export bodies in and out (API.md "Insurer")."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from companion.domain.outcomes import Breakdown
from companion.exports.models import ExportFormat, ExportStatus
from companion.validation import Instant, StrictSchema

MONTH = validate.Regexp(r"^\d{4}-\d{2}$", error='A whole month, "YYYY-MM".')


class PeriodSchema(StrictSchema):
    start = fields.String(required=True, validate=MONTH, metadata={"example": "2026-01"})
    end = fields.String(
        required=True,
        validate=MONTH,
        metadata={"example": "2026-06", "description": "Inclusive; a month that is over (UTC)."},
    )


class ExportRequestSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "period": {"start": "2026-01", "end": "2026-06"},
        "format": "json",
        "breakdown": ["medication"],
    }

    period = fields.Nested(PeriodSchema, required=True, metadata={"description": "Whole calendar months."})
    format = fields.String(required=True, validate=validate.OneOf([f.value for f in ExportFormat]))
    breakdown = fields.List(
        fields.String(validate=validate.OneOf([b.value for b in Breakdown])),
        load_default=list,
        validate=validate.Length(max=len(Breakdown)),
        metadata={"description": "One-way breakdowns, each beside the total; none by default."},
    )


class ExportQueuedSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"example": "queued"})


class ExportSchema(Schema):
    id = fields.UUID(required=True)
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in ExportStatus]))
    period = fields.Nested(PeriodSchema, required=True)
    format = fields.String(required=True)
    breakdown = fields.List(fields.String(), required=True)
    progress = fields.Integer(required=True, metadata={"description": "0-100."})
    created_at = Instant(required=True)
    finished_at = Instant(allow_none=True, required=True)
    row_count = fields.Integer(
        allow_none=True, required=True, metadata={"description": "Rows of the file (CSV: cell x measure)."}
    )
    download_url = fields.String(
        allow_none=True, required=True, metadata={"description": "Where the file is, once done."}
    )
    error = fields.String(allow_none=True, required=True)
