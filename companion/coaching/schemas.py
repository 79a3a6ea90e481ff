"""Coach reads (API.md "Coach"): the caseload, a member, the timeline. Inbound: unknown fields are 422."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from companion.accounts.schemas import GoalSchema
from companion.coaching.timeline import KINDS
from companion.medications.schemas import CheckinSchema
from companion.nudges.schemas import MessageSchema
from companion.pagination import RangeArgsSchema
from companion.safety.schemas import SEVERITIES, FlagSchema
from companion.symptoms.schemas import SymptomReportSchema
from companion.tracking.schemas import BacReadingSchema, CravingSchema, DrinkLogSchema, SummarySchema
from companion.validation import Instant, StrictSchema

#: A caseload page carries each member's summary: smaller pages than the plain lists (ours).
CASELOAD_PAGE = 50
MAX_CASELOAD_PAGE = 200


class CaseloadArgsSchema(StrictSchema):
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page."}
    )
    limit = fields.Integer(
        load_default=CASELOAD_PAGE,
        validate=validate.Range(min=1, max=MAX_CASELOAD_PAGE),
        metadata={"description": f"Page size, at most {MAX_CASELOAD_PAGE} (default {CASELOAD_PAGE})."},
    )


class CoachMemberSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    display_name = fields.String(allow_none=True)
    timezone = fields.String()
    country = fields.String()
    sex = fields.String()
    goal = fields.Nested(GoalSchema)
    enrolled_at = Instant()
    coach_id = fields.UUID(allow_none=True, metadata={"description": "The member's current coach, if any."})
    risk = fields.String(
        metadata={
            "enum": [*SEVERITIES, "none"],
            "description": "The tier of the member's most severe flag still to handle, or `none`.",
        }
    )
    open_flags = fields.Integer(metadata={"description": "Flags still to handle (open or acknowledged)."})
    urgent_flags = fields.Integer(metadata={"description": "Of those, the urgent ones."})
    last_activity_at = Instant(
        allow_none=True,
        metadata={"description": "When the member last logged anything (drink log, craving, dose, breath)."},
    )
    summary = fields.Nested(
        SummarySchema, metadata={"description": "As the member sees it (`GET /me/summary`)."}
    )


class CaseloadPageSchema(Schema):
    items = fields.List(fields.Nested(CoachMemberSchema))
    next_cursor = fields.String(allow_none=True)


class TimelineArgsSchema(RangeArgsSchema):
    """`from`/`to` are the member's local dates (default: the 30 days up to their today)."""


class TimelineItemSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    id = fields.String(
        required=True, metadata={"description": "The record's id (a drink log's is its date)."}
    )
    at = Instant(
        required=True,
        metadata={
            "description": "The instant the item sorts on: a reading's, craving's or message's own time, a "
            "check-in's dose slot, a flag's opening; a drink log (a whole day) at its local day's start."
        },
    )
    date = fields.Date(required=True, metadata={"description": "The member's local date of the item."})
    drink_log = fields.Nested(DrinkLogSchema, metadata={"description": "When `kind` is `drink_log`."})
    bac_reading = fields.Nested(BacReadingSchema, metadata={"description": "When `kind` is `bac_reading`."})
    craving = fields.Nested(CravingSchema, metadata={"description": "When `kind` is `craving`."})
    checkin = fields.Nested(
        CheckinSchema, metadata={"description": "When `kind` is `checkin`, with its side effects."}
    )
    flag = fields.Nested(FlagSchema, metadata={"description": "When `kind` is `flag`."})
    message = fields.Nested(MessageSchema, metadata={"description": "When `kind` is `message`."})
    symptom_report = fields.Nested(
        SymptomReportSchema,
        metadata={"description": "When `kind` is `symptom_report`: symptoms reported on their own."},
    )


class TimelinePageSchema(Schema):
    items = fields.List(fields.Nested(TimelineItemSchema))
    next_cursor = fields.String(allow_none=True)
