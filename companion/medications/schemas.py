"""Medication bodies in and out (API.md "Tracking" and "Coach"). Inbound: unknown fields are 422, named.

Schemas check shape, types and bounds; the rules that need the catalogue, the plan or the clock
(a medication in the catalogue, a dose slot the plan schedules, a side effect of that medication)
are the domain's and the services', and come back as 422s naming the same fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from companion.domain.medications import CATALOGUE, OTHER, Severity
from companion.domain.plans import MAX_TIMES_PER_DAY, CheckInStatus
from companion.validation import HourMinute, Instant, StrictSchema, at_most_places

#: The largest single dose a plan may name, mg (ours): far above any AUD regimen, inside the column.
MAX_DOSE_MG = Decimal(10000)
#: At most this many titration or taper steps in one plan (ours).
MAX_STEPS = 60
#: API.md: at most 20 side effects on one check-in; notes up to 1000 characters.
MAX_SIDE_EFFECTS = 20
MAX_NOTE = 1000
#: A plan's fields that cannot be changed by PATCH; sending one is a 422 that says why.
PLAN_FIXED = {
    "medication": "A plan's medication cannot change: end this plan and start a new one.",
    "id": "Set by the server.",
    "active": "Set by the server from the plan's dates.",
    "created_at": "Set by the server.",
    "updated_at": "Set by the server.",
}

MEDICATION_CODES = [m.code for m in CATALOGUE]
SEVERITIES = [s.label for s in Severity]
STATUSES = [s.value for s in CheckInStatus]


def dose_field(**kwargs: Any) -> fields.Decimal:
    return fields.Decimal(
        validate=[validate.Range(max=MAX_DOSE_MG), at_most_places(2, "At most two decimals.")],
        metadata={"description": "Milligrams per dose; positive, at most two decimals.", "example": 10},
        **kwargs,
    )


def times_field(**kwargs: Any) -> fields.List:
    return fields.List(
        HourMinute(),
        validate=validate.Length(max=4 * MAX_TIMES_PER_DAY),
        metadata={
            "description": (
                f'Local wall-clock dose times "HH:MM" in the member\'s zone, 1 to {MAX_TIMES_PER_DAY}, '
                "each once; stored and answered in order."
            ),
            "example": ["08:00", "20:00"],
        },
        **kwargs,
    )


# --- catalogue --------------------------------------------------------------------------------------


class SideEffectSchema(Schema):
    code = fields.String(metadata={"description": "Stable code a check-in reports; `other` needs a note."})
    label = fields.String()


class MedicationSchema(Schema):
    code = fields.String()
    name = fields.String()
    drug_class = fields.String()
    side_effects = fields.List(
        fields.Nested(SideEffectSchema),
        metadata={"description": "The side effects a member may report for it (`other` needs a note)."},
    )


class MedicationListSchema(Schema):
    items = fields.List(fields.Nested(MedicationSchema))


# --- plans ------------------------------------------------------------------------------------------


class PlanStepInputSchema(StrictSchema):
    from_date = fields.Date(required=True, metadata={"description": "First local date of this regimen."})
    dose_mg = dose_field(required=True)
    times = times_field(required=True)
    taper = fields.Boolean(
        load_default=False,
        metadata={
            "description": "This step is part of a taper the coach planned: missed doses during it are not "
            "withdrawal risk. A lowered dose not marked is a taper only when the plan's last steps lower "
            "it to the plan's end_date within 28 days."
        },
    )


class PlanInputSchema(StrictSchema):
    """A new plan. `start_date` defaults to the member's local today and may not be before it."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "medication": "naltrexone",
        "dose_mg": 25,
        "times": ["08:00"],
        "start_date": "2026-11-21",
        "steps": [{"from_date": "2026-11-28", "dose_mg": 50, "times": ["08:00"]}],
    }

    medication = fields.String(
        required=True, validate=validate.Length(min=1, max=32), metadata={"enum": MEDICATION_CODES}
    )
    dose_mg = dose_field(required=True)
    times = times_field(required=True)
    start_date = fields.Date(metadata={"description": "Default: the member's local today. Not before it."})
    end_date = fields.Date(
        allow_none=True, metadata={"description": "Last local date (inclusive); null: open-ended."}
    )
    steps = fields.List(
        fields.Nested(PlanStepInputSchema),
        load_default=list,
        validate=validate.Length(max=MAX_STEPS),
        metadata={"description": "A titration or taper: each replaces the regimen from its from_date on."},
    )
    confirm_high_dose = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Confirms a daily dose (any regimen's dose x times) above the medication's usual "
            "maximum (baclofen 80 mg, naltrexone 50, acamprosate 1998, gabapentin 3600, topiramate 300, "
            "disulfiram 500). Without it such a plan is 422 naming dose_mg (or steps); above twice the "
            "maximum it is 422 whatever is sent. Kept on the plan and in the audit log."
        },
    )


class PlanPatchSchema(StrictSchema):
    """A change to a plan; see the PATCH operation for what each field does to a plan already started."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"dose_mg": 50, "end_date": "2027-02-28"}

    dose_mg = dose_field()
    times = times_field()
    start_date = fields.Date(metadata={"description": "Only while the plan has not started."})
    end_date = fields.Date(allow_none=True)
    steps = fields.List(fields.Nested(PlanStepInputSchema), validate=validate.Length(max=MAX_STEPS))
    confirm_high_dose = fields.Boolean(
        metadata={
            "description": "Confirms a daily dose (any regimen's dose x times) above the medication's usual "
            "maximum (baclofen 80 mg, naltrexone 50, acamprosate 1998, gabapentin 3600, topiramate 300, "
            "disulfiram 500). Without it such a plan is 422 naming dose_mg (or steps); above twice the "
            "maximum it is 422 whatever is sent. Kept on the plan and in the audit log."
        },
    )

    @pre_load
    def _refuse_fixed(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            fixed = sorted(k for k in data if k in PLAN_FIXED)
            if fixed:
                raise ValidationError({k: [PLAN_FIXED[k]] for k in fixed})
        return data


class PlanStepSchema(Schema):
    from_date = fields.Date()
    dose_mg = fields.Decimal(as_string=False)
    times = fields.List(HourMinute())
    taper = fields.Boolean(metadata={"description": "Marked by the coach as part of a taper."})


class PlanSchema(Schema):
    id = fields.UUID()
    medication = fields.String()
    dose_mg = fields.Decimal(as_string=False, metadata={"description": "The base regimen's dose, mg."})
    times = fields.List(HourMinute(), metadata={"description": "The base regimen's local dose times."})
    start_date = fields.Date()
    end_date = fields.Date(allow_none=True)
    steps = fields.List(fields.Nested(PlanStepSchema))
    active = fields.Boolean(metadata={"description": "In force on the member's local today."})
    confirm_high_dose = fields.Boolean(
        metadata={"description": "The coach confirmed a daily dose above the medication's usual maximum."}
    )
    created_at = Instant()
    updated_at = Instant()


class PlanListSchema(Schema):
    items = fields.List(fields.Nested(PlanSchema))


# --- check-ins --------------------------------------------------------------------------------------


class SideEffectInputSchema(StrictSchema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "One of the medication's (GET /medications), or `other` with a note."},
    )
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    note = fields.String(allow_none=True, validate=validate.Length(max=MAX_NOTE))

    @validates_schema
    def _other_needs_a_note(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("code") == OTHER and not (data.get("note") or "").strip():
            raise ValidationError({"note": ["Required with code 'other': say what it is."]})


class CheckinInputSchema(StrictSchema):
    """A dose taken or skipped. Also the `data` of a `medication_checkin` sync item."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "3c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
        "plan_id": "a2b3c4d5-e6f7-4a8b-9c0d-1e2f3a4b5c6d",
        "scheduled_for": "2026-11-20T08:00:00-05:00",
        "status": "taken",
        "taken_at": "2026-11-20T08:12:00-05:00",
        "side_effects": [{"code": "nausea", "severity": "mild"}],
    }

    id = fields.UUID(required=True, metadata={"description": "Made on the phone; a retry sends the same id."})
    plan_id = fields.UUID(required=True)
    scheduled_for = Instant(
        required=True,
        metadata={"description": "The dose slot: one of the plan's times on a local day, as an instant."},
    )
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    taken_at = Instant(
        allow_none=True,
        metadata={"description": "Required when taken (not in the future), absent or null when skipped."},
    )
    side_effects = fields.List(
        fields.Nested(SideEffectInputSchema),
        load_default=list,
        validate=validate.Length(max=MAX_SIDE_EFFECTS),
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=MAX_NOTE))

    @validates_schema
    def _taken_at_with_status(self, data: dict[str, Any], **_: Any) -> None:
        status, taken_at = data.get("status"), data.get("taken_at")
        if status == CheckInStatus.TAKEN and taken_at is None:
            raise ValidationError({"taken_at": ["Required when status is taken."]})
        if status == CheckInStatus.SKIPPED and taken_at is not None:
            raise ValidationError({"taken_at": ["Must be absent when status is skipped."]})

    @validates_schema
    def _each_side_effect_once(self, data: dict[str, Any], **_: Any) -> None:
        codes = [s["code"] for s in data.get("side_effects") or [] if s["code"] != OTHER]
        if len(codes) != len(set(codes)):
            raise ValidationError({"side_effects": ["Each side effect at most once (`other` excepted)."]})


class SideEffectReportSchema(Schema):
    code = fields.String()
    severity = fields.String(metadata={"enum": SEVERITIES})
    note = fields.String(allow_none=True)


class CheckinSchema(Schema):
    id = fields.UUID()
    plan_id = fields.UUID()
    medication = fields.String()
    scheduled_for = Instant()
    date = fields.Date(metadata={"description": "The dose slot's local date."})
    status = fields.String(metadata={"enum": STATUSES})
    taken_at = Instant(allow_none=True)
    side_effects = fields.List(fields.Nested(SideEffectReportSchema))
    note = fields.String(allow_none=True)
    created_at = Instant()


class CheckinPageSchema(Schema):
    items = fields.List(fields.Nested(CheckinSchema))
    next_cursor = fields.String(allow_none=True)
