"""Tracking bodies in and out (API.md "Tracking"). Inbound: unknown fields are 422, every field named."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from companion.domain.drinking import DrinkKind
from companion.validation import Instant, StrictSchema, at_most_places, field_errors, stored_record

#: API.md: standard_drinks 0-50 in steps of 0.1.
MAX_STANDARD_DRINKS = Decimal("50")
MAX_DRINK_ITEMS = 50
MAX_NOTE = 1000


class DrinkItemSchema(StrictSchema):
    kind = fields.String(
        required=True,
        validate=validate.OneOf([k.value for k in DrinkKind]),
        metadata={"description": "The kind of drink."},
    )
    volume_ml = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=2000))
    abv_percent = fields.Decimal(required=True, validate=validate.Range(min=0, max=100))
    count = fields.Integer(load_default=1, strict=True, validate=validate.Range(min=1, max=100))


class DrinkLogInputSchema(StrictSchema):
    """Exactly one of `standard_drinks` or `drinks`."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "drinks": [{"kind": "beer", "volume_ml": 355, "abv_percent": 5, "count": 2}],
        "note": "Dinner with friends.",
        "updated_at": "2026-11-20T21:15:00-05:00",
    }

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
    kind = fields.String(metadata={"description": "The kind of drink: beer, wine, spirits or other."})
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
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
        "recorded_at": "2026-11-20T18:30:00-05:00",
        "intensity": 6,
        "triggers": ["stress", "after work"],
    }

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
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "id": "0b7e4d2c-9a1f-4c3e-8d5b-6a7f8e9d0c1b",
        "measured_at": "2026-11-20T22:05:00-05:00",
        "bac_g_dl": 0.021,
        "device": {"model": "BACtrack C8", "serial": "C8-104233"},
    }

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
    device = fields.Nested(BacDeviceSchema, allow_none=True)
    created_at = Instant()


class BacReadingPageSchema(Schema):
    items = fields.List(fields.Nested(BacReadingSchema))
    next_cursor = fields.String(allow_none=True)


class SyncBatchSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "items": [
            {"type": "drink_log", "data": {"date": "2026-11-19", "standard_drinks": 0}},
            {
                "type": "craving",
                "data": {
                    "id": "6f1c2a8e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
                    "recorded_at": "2026-11-20T18:30:00-05:00",
                    "intensity": 4,
                },
            },
        ]
    }

    refuse_nul = False  # each item is validated on its own: a NUL spoils only its item

    items = fields.List(
        # documented as a oneOf by `type` (sync.document); validated item by item (sync.apply_batch)
        fields.Raw(allow_none=True),
        required=True,
        metadata={"description": "At most 500 items (more: 413). Each stands alone."},
    )


class SyncResultSchema(Schema):
    index = fields.Integer(metadata={"description": "The item's position in the batch, from 0."})
    status = fields.String(metadata={"enum": ["created", "updated", "unchanged", "conflict", "invalid"]})
    id = fields.String(
        metadata={"optional": True, "description": "The item's `id` as sent (records kept by id)."}
    )
    date = fields.String(
        metadata={"optional": True, "description": "The item's `date` as sent (drink logs)."}
    )
    errors = field_errors("Per-field messages (invalid) or why it conflicts.")
    current = stored_record("The stored record, when the item conflicts with it.")


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


def _d(text: str) -> dict[str, str]:
    return {"description": text}


class StreakSchema(Schema):
    alcohol_free_days = fields.Integer(
        metadata=_d(
            "Logged local days in a row with no drink, to today (to yesterday while today is unlogged)."
        )
    )
    within_goal_days = fields.Integer(
        metadata=_d("Logged local days in a row within the goal (abstain: no drink; moderate: the limit).")
    )


class WeekSchema(Schema):
    days_logged = fields.Integer(metadata=_d("Local days of the last 7 (today included) with a drink log."))
    standard_drinks = fields.Decimal(
        as_string=False,
        allow_none=True,
        metadata=_d(
            "Standard drinks (the member's country's size) on the days logged of the last 7 local days, "
            "today included; null when no day is logged (missing, never 0)."
        ),
    )
    weekly_limit = fields.Decimal(
        as_string=False, allow_none=True, metadata=_d("The goal's weekly limit; null for abstinence.")
    )
    heavy_days = fields.Integer(
        allow_none=True,
        metadata=_d(
            "Heavy drinking days of those 7 (≥ 56 g women and unspecified, ≥ 70 g men); null when no day "
            "is logged."
        ),
    )
    over_niaaa_weekly = fields.Boolean(
        allow_none=True,
        metadata=_d(
            "The days logged reach NIAAA heavy weekly use: 15 or more US standard drinks (14 g) for men, "
            "8 or more for women and unspecified. Null when no day is logged."
        ),
    )


class Last30DaysSchema(Schema):
    days_logged = fields.Integer(metadata=_d("Local days with a drink log, of the last 30 (today included)."))
    alcohol_free_days = fields.Integer(metadata=_d("Logged days with no drink, of the last 30."))
    heavy_days = fields.Integer(metadata=_d("Heavy drinking days, of the last 30."))
    drinks_per_drinking_day = fields.Decimal(
        as_string=False,
        allow_none=True,
        metadata=_d("Mean standard drinks on the days with any drink; null when there was none."),
    )


class CravingTrendSchema(Schema):
    avg_7d = fields.Decimal(
        as_string=False, allow_none=True, metadata=_d("Mean intensity (0-10) over the last 7 local days.")
    )
    avg_prev_7d = fields.Decimal(
        as_string=False,
        allow_none=True,
        metadata=_d("Mean intensity (0-10) over the 7 local days before those."),
    )
    trend = fields.String(
        allow_none=True,
        metadata={
            "enum": ["rising", "falling", "flat", None],
            "description": "The last 7 days' mean against the 7 before; null when either has no rating.",
        },
    )


class AdherenceSchema(Schema):
    taken = fields.Integer(metadata=_d("Doses checked in as taken in the last 7 local days."))
    scheduled = fields.Integer(metadata=_d("Dose slots the plans scheduled in those days."))
    rate_7d = fields.Decimal(
        as_string=False,
        allow_none=True,
        metadata=_d("taken / scheduled (0-1); null when none was scheduled."),
    )


class SummarySchema(Schema):
    as_of = fields.Date(metadata={"description": "The member's local today."})
    streak = fields.Nested(StreakSchema, metadata=_d("Days in a row without drinking, within the goal."))
    week = fields.Nested(WeekSchema, metadata=_d("The last 7 local days (today included) against the goal."))
    last_30_days = fields.Nested(Last30DaysSchema, metadata=_d("The last 30 local days."))
    cravings = fields.Nested(
        CravingTrendSchema, metadata=_d("Craving intensity, the last 7 local days against the 7 before.")
    )
    adherence = fields.Nested(AdherenceSchema, metadata=_d("Doses taken against doses scheduled."))
