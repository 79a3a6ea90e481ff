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


class MeasureDefinitionSchema(Schema):
    code = fields.String(metadata={"description": "The measure's code in every export (`measure`)."})
    name = fields.String(metadata={"description": "The measure's name, for people."})
    definition = fields.String(metadata={"description": "What it measures, in words."})
    scoring = fields.String(
        metadata={
            "enum": ["count", "share", "pooled_rate", "mean", "change"],
            "description": "How the value is made from its counts.",
        }
    )
    unit = fields.String(metadata={"description": "The value's unit, as the exports print it."})
    ucum = fields.String(metadata={"description": "The unit in UCUM, as the FHIR export codes it."})
    numerator = fields.String(
        allow_none=True, metadata={"description": "What the numerator counts; null when it has none."}
    )
    denominator = fields.String(metadata={"description": "What the value is divided by."})
    denominator_unit = fields.String(metadata={"description": "The denominator's unit in the exports."})
    windows = fields.List(
        fields.String(), metadata={"description": "The windows it reads (defined under `windows`)."}
    )
    source = fields.String(metadata={"description": "The records it is computed from."})
    improvement = fields.String(
        allow_none=True,
        metadata={"enum": ["increase", "decrease", None], "description": "Which way is better."},
    )


class WindowsSchema(Schema):
    window = fields.String(metadata={"description": "A member's days in the report."})
    baseline = fields.String(metadata={"description": "The first days of enrollment."})
    follow_up = fields.String(metadata={"description": "The last days of the window."})
    active = fields.String(metadata={"description": "The days an active member has an entry in."})
    retention = fields.String(metadata={"description": "The days retention looks at."})


class CsvColumnSchema(Schema):
    column = fields.String(metadata={"description": "The CSV header."})
    definition = fields.String(metadata={"description": "What the column holds."})


class SuppressionReasonsSchema(Schema):
    small_cell = fields.String(metadata={"description": "When `small_cell` is given."})
    complementary = fields.String(metadata={"description": "When `complementary` is given."})
    not_applicable = fields.String(metadata={"description": "When `not_applicable` is given."})


class SuppressionSchema(Schema):
    policy = fields.String(metadata={"description": "The suppression policy followed."})
    hidden_member_counts = fields.String(metadata={"description": "Member counts that are never shown."})
    reasons = fields.Nested(SuppressionReasonsSchema, metadata={"description": "Each `status_reason`."})


class DictionarySchema(Schema):
    """The data dictionary of the insurer exports (also inside every JSON export, as `dictionary`)."""

    measures = fields.List(fields.Nested(MeasureDefinitionSchema), metadata={"description": "Each measure."})
    windows = fields.Nested(WindowsSchema, metadata={"description": "The windows measures read."})
    csv_columns = fields.List(
        fields.Nested(CsvColumnSchema), metadata={"description": "The CSV's columns, in order."}
    )
    suppression = fields.Nested(SuppressionSchema, metadata={"description": "What is hidden, and why."})
