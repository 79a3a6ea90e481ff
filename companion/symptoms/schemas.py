"""Symptom report bodies in and out. Inbound: unknown fields are 422, named."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from companion.domain.medications import LABELS, SYMPTOM_CODES, Severity
from companion.validation import Instant, StrictSchema

#: API.md: 1 to 10 symptoms a report; notes up to 1000 characters.
MAX_SYMPTOMS = 10
MAX_NOTE = 1000
SEVERITIES = [s.label for s in Severity]


class SymptomInputSchema(StrictSchema):
    code = fields.String(
        required=True, validate=validate.OneOf(SYMPTOM_CODES), metadata={"enum": list(SYMPTOM_CODES)}
    )
    severity = fields.String(
        required=True, validate=validate.OneOf(SEVERITIES), metadata={"enum": SEVERITIES}
    )


class SymptomReportInputSchema(StrictSchema):
    id = fields.UUID(required=True, metadata={"description": "Made on the phone; a retry sends the same id."})
    reported_at = Instant(
        required=True,
        metadata={"description": "When the symptoms were noticed: not in the future, ≤ 60 days old."},
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
    code = fields.String()
    severity = fields.String(metadata={"enum": SEVERITIES})


class SymptomReportSchema(Schema):
    id = fields.UUID()
    reported_at = Instant()
    date = fields.Date(metadata={"description": "The member's local date when it was reported."})
    symptoms = fields.List(fields.Nested(SymptomSchema))
    note = fields.String(allow_none=True)
    created_at = Instant()


class SymptomReportPageSchema(Schema):
    items = fields.List(fields.Nested(SymptomReportSchema))
    next_cursor = fields.String(allow_none=True)


class SymptomCodeSchema(Schema):
    code = fields.String()
    label = fields.String(metadata={"description": "Member-facing wording."})


class SymptomListSchema(Schema):
    items = fields.List(fields.Nested(SymptomCodeSchema))


def symptom_catalogue() -> list[dict[str, str]]:
    return [{"code": code, "label": LABELS[code]} for code in SYMPTOM_CODES]
