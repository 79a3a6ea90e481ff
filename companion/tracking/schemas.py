"""Tracking bodies in and out (API.md "Tracking"). Inbound: unknown fields are 422, every field named."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from companion.domain.drinking import DrinkKind
from companion.validation import Instant, StrictSchema, at_most_places

#: API.md: standard_drinks 0-50 in steps of 0.1.
MAX_STANDARD_DRINKS = Decimal("50")
MAX_DRINK_ITEMS = 50
MAX_NOTE = 1000


class DrinkItemSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in DrinkKind]))
    volume_ml = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2000))
    abv_percent = fields.Decimal(required=True, validate=validate.Range(min=0, max=100))
    count = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=100))


class DrinkLogInputSchema(StrictSchema):
    """Exactly one of `standard_drinks` or `drinks`."""

    standard_drinks = fields.Decimal(
        validate=[validate.Range(min=0, max=MAX_STANDARD_DRINKS), at_most_places(1)],
        metadata={"description": "Standard drinks in the member's country's size (US 14 g, UK 8 g ...)."},
    )
    drinks = fields.List(fields.Nested(DrinkItemSchema), validate=validate.Length(max=MAX_DRINK_ITEMS))
    note = fields.String(allow_none=True, validate=validate.Length(max=MAX_NOTE))
    updated_at = Instant(
        metadata={"description": "The phone's edit instant: an older one than stored is a 409."}
    )

    @validates_schema
    def _exactly_one_amount(self, data: dict[str, Any], **_: Any) -> None:
        given = [name for name in ("standard_drinks", "drinks") if data.get(name) is not None]
        if len(given) != 1:
            message = "Give exactly one of standard_drinks or drinks."
            raise ValidationError({"standard_drinks": [message], "drinks": [message]})


class SyncDrinkLogInputSchema(DrinkLogInputSchema):
    """In a sync batch a drink log carries its own local `date`."""

    date = fields.Date(required=True)


class DrinkItemOutSchema(Schema):
    kind = fields.String()
    volume_ml = fields.Integer()
    abv_percent = fields.Decimal(as_string=False)
    count = fields.Integer()


class DrinkLogSchema(Schema):
    date = fields.Date()
    standard_drinks = fields.Decimal(as_string=False)
    grams_ethanol = fields.Decimal(as_string=False)
    drinks = fields.List(fields.Nested(DrinkItemOutSchema), allow_none=True)
    note = fields.String(allow_none=True)
    heavy = fields.Boolean(metadata={"description": "≥ 56 g (women, unspecified) or ≥ 70 g (men)."})
    source = fields.String(metadata={"enum": ["realtime", "recall"]})
    created_at = Instant()
    updated_at = Instant()


class DrinkLogPageSchema(Schema):
    items = fields.List(fields.Nested(DrinkLogSchema))
    next_cursor = fields.String(allow_none=True)


class CravingInputSchema(StrictSchema):
    id = fields.UUID(required=True, metadata={"description": "Made on the phone; a retry sends the same id."})
    recorded_at = Instant(required=True)
    intensity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10))
    triggers = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        load_default=list,
        validate=validate.Length(max=10),
    )
    note = fields.String(allow_none=True, validate=validate.Length(max=MAX_NOTE))


class CravingSchema(Schema):
    id = fields.UUID()
    recorded_at = Instant()
    date = fields.Date(metadata={"description": "The member's local date when it was recorded."})
    intensity = fields.Integer()
    triggers = fields.List(fields.String())
    note = fields.String(allow_none=True)
    created_at = Instant()


class CravingPageSchema(Schema):
    items = fields.List(fields.Nested(CravingSchema))
    next_cursor = fields.String(allow_none=True)


class BacDeviceSchema(StrictSchema):
    model = fields.String(allow_none=True, validate=validate.Length(max=80))
    serial = fields.String(allow_none=True, validate=validate.Length(max=80))


class BacReadingInputSchema(StrictSchema):
    id = fields.UUID(required=True)
    measured_at = Instant(required=True)
    bac_g_dl = fields.Decimal(
        required=True,
        validate=[validate.Range(min=0, max=Decimal("0.5")), at_most_places(3, "At most three decimals.")],
    )
    device = fields.Nested(BacDeviceSchema, allow_none=True)


class BacReadingSchema(Schema):
    id = fields.UUID()
    measured_at = Instant()
    date = fields.Date()
    bac_g_dl = fields.Decimal(as_string=False)
    device = fields.Dict(allow_none=True)
    created_at = Instant()


class BacReadingPageSchema(Schema):
    items = fields.List(fields.Nested(BacReadingSchema))
    next_cursor = fields.String(allow_none=True)


class SyncItemSchema(Schema):
    """Documentation of one batch item; each item is validated on its own (see POST /sync)."""

    type = fields.String(
        required=True,
        metadata={
            "enum": ["drink_log", "craving", "medication_checkin", "bac_reading", "symptom_report", "pacs"]
        },
    )
    data = fields.Dict(
        required=True,
        metadata={
            "description": "The body of the single-record call; a drink log's data carries its `date`."
        },
    )


class SyncBatchSchema(StrictSchema):
    refuse_nul = False  # each item is validated on its own: a NUL spoils only its item

    items = fields.List(
        fields.Raw(allow_none=True, metadata={"type": "object", "description": "{type, data}: a SyncItem."}),
        required=True,
        metadata={"description": "At most 500 items (more: 413). Each stands alone."},
    )


class SyncResultSchema(Schema):
    index = fields.Integer()
    status = fields.String(metadata={"enum": ["created", "updated", "unchanged", "conflict", "invalid"]})
    id = fields.String()
    date = fields.String()
    errors = fields.Dict(metadata={"description": "Per-field messages (invalid) or why it conflicts."})
    current = fields.Dict(metadata={"description": "The stored record, when the item conflicts with it."})


class SyncResultsSchema(Schema):
    results = fields.List(fields.Nested(SyncResultSchema))


class SyncQuerySchema(StrictSchema):
    since = fields.String(
        validate=validate.Length(max=200),
        metadata={"description": "The cursor of the previous answer; none: everything."},
    )


class SyncChangeSchema(Schema):
    type = fields.String(
        metadata={
            "enum": [
                "drink_log",
                "craving",
                "medication_checkin",
                "bac_reading",
                "symptom_report",
                "pacs",
                "medication_plan",
                "message",
            ]
        }
    )
    deleted = fields.Boolean()
    data = fields.Dict()


class SyncChangesSchema(Schema):
    changes = fields.List(fields.Nested(SyncChangeSchema))
    cursor = fields.String()
    has_more = fields.Boolean(metadata={"description": "More changes wait: call again with the new cursor."})


class StreakSchema(Schema):
    alcohol_free_days = fields.Integer()
    within_goal_days = fields.Integer()


class WeekSchema(Schema):
    days_logged = fields.Integer(metadata={"description": "Local days of the last 7 with a drink log."})
    standard_drinks = fields.Decimal(
        as_string=False,
        allow_none=True,
        metadata={"description": "Of the days logged; null when no day is logged (missing, never 0)."},
    )
    weekly_limit = fields.Decimal(as_string=False, allow_none=True)
    heavy_days = fields.Integer(allow_none=True, metadata={"description": "Null when no day is logged."})
    over_niaaa_weekly = fields.Boolean(
        allow_none=True,
        metadata={
            "description": "The days logged reach NIAAA heavy weekly use: 15 or more US standard drinks "
            "(14 g) for men, 8 or more for women and unspecified. Null when no day is logged."
        },
    )


class Last30DaysSchema(Schema):
    days_logged = fields.Integer()
    alcohol_free_days = fields.Integer()
    heavy_days = fields.Integer()
    drinks_per_drinking_day = fields.Decimal(as_string=False, allow_none=True)


class CravingTrendSchema(Schema):
    avg_7d = fields.Decimal(as_string=False, allow_none=True)
    avg_prev_7d = fields.Decimal(as_string=False, allow_none=True)
    trend = fields.String(allow_none=True, metadata={"enum": ["rising", "falling", "flat", None]})


class AdherenceSchema(Schema):
    taken = fields.Integer()
    scheduled = fields.Integer()
    rate_7d = fields.Decimal(as_string=False, allow_none=True)


class SummarySchema(Schema):
    as_of = fields.Date(metadata={"description": "The member's local today."})
    streak = fields.Nested(StreakSchema)
    week = fields.Nested(WeekSchema)
    last_30_days = fields.Nested(Last30DaysSchema)
    cravings = fields.Nested(CravingTrendSchema)
    adherence = fields.Nested(AdherenceSchema)
