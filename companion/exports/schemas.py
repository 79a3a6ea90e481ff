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
    error = fields.String(
        allow_none=True, required=True, metadata={"description": "Why the build failed; null otherwise."}
    )


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
    pacs_baseline = fields.String(metadata={"description": "Which PACS is a member's baseline PACS."})
    pacs_follow_up = fields.String(
        metadata={"description": "Which PACS is a member's follow-up PACS in a window."}
    )
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


# --- the JSON report (GET /insurer/exports/{id}/file as application/json) ---------------------------


class ReportPeriodSchema(Schema):
    start = fields.String(metadata={"description": "The first month, YYYY-MM."})
    end = fields.String(metadata={"description": "The last month, YYYY-MM."})
    partial = fields.Boolean(metadata={"description": "The last month is the current one, counted to date."})
    through = fields.Date(
        metadata={"optional": True, "description": "A partial period's last day counted (UTC yesterday)."}
    )


class ReportMeasureSchema(Schema):
    measure = fields.String(metadata={"description": "The measure's code (GET /insurer/measures)."})
    value = fields.Float(allow_none=True, metadata={"description": "In `unit`; null when absent."})
    unit = fields.String(metadata={"description": "The value's unit."})
    members = fields.Integer(allow_none=True, metadata={"description": "The members it rests on."})
    numerator = fields.Integer(allow_none=True, metadata={"description": "Members, days or doses counted."})
    denominator = fields.Integer(allow_none=True, metadata={"description": "What the value divides by."})
    denominator_unit = fields.String(allow_none=True, metadata={"description": "The denominator's unit."})
    days = fields.Integer(allow_none=True, metadata={"description": "The days a mean rests on."})
    days_unit = fields.String(allow_none=True, metadata={"description": "logged days or drinking days."})
    baseline = fields.Float(allow_none=True, metadata={"description": "A change's baseline mean."})
    follow_up = fields.Float(allow_none=True, metadata={"description": "A change's follow-up mean."})
    suppressed = fields.Boolean(metadata={"description": "The value is hidden."})
    status_reason = fields.String(
        allow_none=True,
        metadata={
            "enum": ["small_cell", "complementary", "not_applicable", None],
            "description": "Why the value is absent; null when it is shown.",
        },
    )


class ReportCellSchema(Schema):
    breakdown = fields.String(metadata={"description": "total, medication, program_month or goal_type."})
    category = fields.String(metadata={"description": "all, or the row's category in its breakdown."})
    suppressed = fields.Boolean(metadata={"description": "The whole row is hidden."})
    status_reason = fields.String(
        allow_none=True,
        metadata={"enum": ["small_cell", "complementary", None], "description": "Why the row is hidden."},
    )
    measures = fields.List(fields.Nested(ReportMeasureSchema), metadata={"description": "Its measures."})


class ReportSuppressionSchema(Schema):
    policy = fields.String(metadata={"description": "The suppression policy followed."})
    hidden_member_counts = fields.String(metadata={"description": "Member counts that are never shown."})


class ReportSchema(Schema):
    """The JSON export: the cells of the report and its data dictionary."""

    report = fields.String(metadata={"description": "Always companion.outcomes."})
    version = fields.Integer(metadata={"description": "The file's format version."})
    period = fields.Nested(ReportPeriodSchema, metadata={"description": "The months it covers."})
    breakdowns = fields.List(fields.String(), metadata={"description": "The breakdowns beside the total."})
    standard_drink_grams = fields.Float(metadata={"description": "Grams of ethanol in a drink it counts."})
    suppression = fields.Nested(ReportSuppressionSchema, metadata={"description": "What is never shown."})
    cells = fields.List(
        fields.Nested(ReportCellSchema), metadata={"description": "The total row, then each breakdown's."}
    )
    dictionary = fields.Nested(DictionarySchema, metadata={"description": "What every measure means."})
