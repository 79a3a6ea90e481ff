"""Symptom report bodies in and out. Inbound: unknown fields are 422, named."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from companion.domain.medications import LABELS, SYMPTOM_CODES, Severity
from companion.validation import Instant, StrictSchema

#: API.md: 1 to 10 symptoms a report; notes up to 1000 characters.
MAX_SYMPTOMS = 10
MAX_NOTE = 1000
SEVERITIES = [s.label for s in Severity]


class SymptomInputSchema(StrictSchema):
    code = fields.String(
        required=True,
        validate=validate.OneOf(SYMPTOM_CODES),
        metadata={
            "enum": list(SYMPTOM_CODES),
            "description": "The symptom's code, as GET /symptoms lists it (a side effect of any "
            "medication, or a general or withdrawal symptom).",
        },
    )
    severity = fields.String(
        required=True,
        validate=validate.OneOf(SEVERITIES),
        metadata={
            "enum": SEVERITIES,
            "description": "How bad: mild, moderate or severe. The safety rules read it as they read a "
            "side effect on a dose check-in (any `severe` one raises an urgent flag).",
        },
    )


class SymptomReportInputSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "3c9d5e7f-1a2b-4c6d-9e8f-0a1b2c3d4e5f",
        "reported_at": "2026-11-20T09:15:00-05:00",
        "symptoms": [{"code": "nausea", "severity": "mild"}, {"code": "headache", "severity": "moderate"}],
        "note": "Started an hour after breakfast.",
    }

    id = fields.UUID(required=True, metadata={"description": "Made on the phone; a retry sends the same id."})
    reported_at = Instant(
        required=True,
        metadata={
            "description": "When the symptoms were noticed, with its UTC offset: not in the future, at "
            "most 60 days (the backfill window) before the member's local today. Its local date is the "
            "report's `date`."
        },
    )
    symptoms = fields.List(
        fields.Nested(SymptomInputSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_SYMPTOMS),
        metadata={"description": "1 to 10 symptoms, each code once (codes: GET /symptoms)."},
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=MAX_NOTE))

    @validates_schema
    def _each_symptom_once(self, data: dict[str, Any], **_: Any) -> None:
        codes = [s["code"] for s in data.get("symptoms") or []]
        if len(set(codes)) != len(codes):
            raise ValidationError({"symptoms": ["Each symptom at most once."]})


class SymptomSchema(Schema):
    code = fields.String(
        metadata={"description": "The symptom's code (GET /symptoms gives each code's wording)."}
    )
    severity = fields.String(
        metadata={"enum": SEVERITIES, "description": "How bad, as reported: mild, moderate or severe."}
    )


class SymptomReportSchema(Schema):
    id = fields.UUID()
    reported_at = Instant(
        metadata={"description": "When the symptoms were noticed, as the phone sent it (answered in UTC)."}
    )
    date = fields.Date(
        metadata={
            "description": "The member's local date of `reported_at`, in their time zone when it was "
            "recorded; a later time zone change does not move it."
        }
    )
    symptoms = fields.List(
        fields.Nested(SymptomSchema),
        metadata={"description": "1 to 10 symptoms, each code once, in the order sent."},
    )
    note = fields.String(allow_none=True)
    created_at = Instant()


class SymptomReportPageSchema(Schema):
    items = fields.List(
        fields.Nested(SymptomReportSchema),
        metadata={"description": "The reports of this page, oldest `reported_at` first."},
    )
    next_cursor = fields.String(allow_none=True)


class SymptomCodeSchema(Schema):
    code = fields.String(metadata={"description": "The code to send in a report's `symptoms`."})
    label = fields.String(metadata={"description": "Member-facing wording."})


class SymptomListSchema(Schema):
    items = fields.List(
        fields.Nested(SymptomCodeSchema),
        metadata={
            "description": "Every code a member may report: each medication's side effects, then "
            "general and withdrawal symptoms (not paged)."
        },
    )


def symptom_catalogue() -> list[dict[str, str]]:
    return [{"code": code, "label": LABELS[code]} for code in SYMPTOM_CODES]
