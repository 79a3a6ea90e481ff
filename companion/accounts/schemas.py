"""Account bodies in and out. Inbound schemas raise on unknown fields; server-owned fields are named."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from companion.validation import HourMinute, Instant, StrictSchema, validate_country, validate_timezone

SEXES = ("female", "male", "unspecified")
GOAL_TYPES = ("abstain", "moderate")
PLATFORMS = ("ios", "android")
#: Nudge kinds a member may mute (coach messages can never be muted: DOMAIN.md).
MUTABLE_NUDGE_KINDS = (
    "dose_reminder",
    "log_reminder",
    "craving_support",
    "streak",
    "reengagement",
    "weekly_summary",
    "pacs_reminder",
)
#: Fields of the member that only the server sets; sending one is a 422 that names it.
SERVER_OWNED = ("id", "email", "role", "coach", "insurer", "enrolled_at", "created_at", "updated_at")


class GoalSchema(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(GOAL_TYPES))
    weekly_limit = fields.Decimal(
        allow_none=True,
        places=1,
        as_string=False,
        validate=validate.Range(min=0, max=200),
        metadata={
            "description": "Standard drinks per week in the member's country's size; moderate goals only."
        },
    )

    @validates_schema
    def _limit_matches_type(self, data: dict[str, Any], **_: Any) -> None:
        limit = data.get("weekly_limit")
        if data.get("type") == "moderate" and limit is None:
            raise ValidationError({"weekly_limit": ["Required for a moderate goal."]})
        if data.get("type") == "abstain" and limit is not None:
            raise ValidationError({"weekly_limit": ["Only a moderate goal has a weekly limit."]})


class ConsentsSchema(StrictSchema):
    outcome_sharing = fields.Boolean(
        required=True,
        metadata={"description": "Share de-identified, aggregated outcomes with the member's insurer plan."},
    )


class QuietHoursSchema(StrictSchema):
    start = HourMinute(required=True, metadata={"description": "Local time the quiet hours begin."})
    end = HourMinute(required=True, metadata={"description": "Local time they end (may be the next day)."})


class RemindersSchema(StrictSchema):
    log_time = HourMinute(metadata={"description": "Local time of the daily log reminder (default 20:00)."})
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)
    muted_kinds = fields.List(
        fields.String(validate=validate.OneOf(MUTABLE_NUDGE_KINDS)), validate=validate.Length(max=10)
    )


class RegisterSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "email": "sam@example.org",
        "password": "correct horse battery",
        "timezone": "America/New_York",
        "display_name": "Sam",
        "country": "US",
        "sex": "female",
        "goal": {"type": "moderate", "weekly_limit": 7},
        "enrollment_code": "ACME-2026",
        "consents": {"outcome_sharing": True},
    }

    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=10, max=1024))
    timezone = fields.String(
        required=True, validate=validate_timezone, metadata={"example": "America/New_York"}
    )
    display_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=80))
    country = fields.String(load_default="US", validate=validate_country)
    sex = fields.String(load_default="unspecified", validate=validate.OneOf(SEXES))
    goal = fields.Nested(GoalSchema, required=True)
    enrollment_code = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    consents = fields.Nested(ConsentsSchema)


class LoginSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {"email": "sam@example.org", "password": "correct horse battery"}

    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class RefreshSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {"refresh_token": "r1.8mQbWq0s3kq7YQ2fX9p4uN6vJ1cT5hL0aZ"}

    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=256))


class PasswordSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {"password": "correct horse battery"}

    password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=1024))


class MemberPatchSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "timezone": "Europe/London",
        "reminders": {"log_time": "21:00", "quiet_hours": {"start": "22:00", "end": "07:00"}},
    }

    display_name = fields.String(allow_none=True, validate=validate.Length(min=1, max=80))
    timezone = fields.String(validate=validate_timezone)
    country = fields.String(validate=validate_country)
    sex = fields.String(validate=validate.OneOf(SEXES))
    goal = fields.Nested(GoalSchema)
    reminders = fields.Nested(RemindersSchema)
    consents = fields.Nested(ConsentsSchema)

    @pre_load
    def _refuse_server_owned(self, data: Any, **_: Any) -> Any:
        if isinstance(data, dict):
            owned = sorted(k for k in data if k in SERVER_OWNED)
            if owned:
                raise ValidationError({k: ["Set by the server; a member cannot change it."] for k in owned})
        return data


class ConsentsOutSchema(Schema):
    outcome_sharing = fields.Boolean(
        metadata={"description": "Shares de-identified, aggregated outcomes with the insurer plan."}
    )
    updated_at = fields.String(
        allow_none=True, metadata={"format": "date-time", "description": "When the member last set it."}
    )


class CoachRefSchema(Schema):
    id = fields.UUID()
    display_name = fields.String()


class InsurerRefSchema(Schema):
    name = fields.String()
    code = fields.String()


class MemberSchema(Schema):
    id = fields.UUID()
    email = fields.String()
    role = fields.String()
    display_name = fields.String(allow_none=True)
    timezone = fields.String()
    country = fields.String()
    sex = fields.String()
    goal = fields.Nested(GoalSchema)
    reminders = fields.Nested(RemindersSchema)
    consents = fields.Nested(ConsentsOutSchema)
    coach = fields.Nested(CoachRefSchema, allow_none=True)
    insurer = fields.Nested(InsurerRefSchema, allow_none=True)
    enrolled_at = Instant()
    updated_at = Instant()


class TokenSchema(Schema):
    member = fields.Nested(MemberSchema, allow_none=True, metadata={"description": "null for staff accounts"})
    role = fields.String()
    token_type = fields.String(dump_default="Bearer")
    access_token = fields.String()
    refresh_token = fields.String()
    expires_at = Instant(metadata={"description": "When the access token expires."})
    refresh_expires_at = Instant()


class DeviceInputSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {"platform": "ios", "push_token": "80f3b1c2d4e5f60718293a4b5c6d7e8f"}

    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    push_token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class DeviceSchema(Schema):
    id = fields.UUID()
    platform = fields.String()
    active = fields.Boolean()
    created_at = Instant()
    last_seen_at = Instant()


class DeviceListSchema(Schema):
    items = fields.List(fields.Nested(DeviceSchema))


class DisclosureActorSchema(Schema):
    id = fields.String(
        allow_none=True,
        metadata={"format": "uuid", "description": "The staff account's id; null for the command line."},
    )
    role = fields.String(
        metadata={
            "enum": ["coach", "admin", "insurer_analyst", "member", "command_line"],
            "description": "The account's role (a coach, an admin or an insurer analyst for staff), or "
            "`command_line` for an operator's command, which has no account.",
        }
    )
    name = fields.String(
        allow_none=True,
        metadata={
            "description": "The staff member's display name; null when none is set, or for the command line."
        },
    )


def _string(description: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", **schema, "description": description}


_DECIMAL_MG = "in milligrams, a decimal in a string"
_TIMES = {"type": "array", "items": {"type": "string"}, "description": 'Local dose times, "HH:MM".'}

#: A medication plan as the audit log keeps it (medications.services.plan_record).
_PLAN_RECORD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "medication": _string("The medication's catalogue code (GET /medications)."),
        "dose_mg": _string(f'The starting dose, {_DECIMAL_MG} ("50", "7.5").'),
        "times": _TIMES,
        "start_date": _string("The plan's first local date.", format="date"),
        "end_date": {
            "type": ["string", "null"],
            "format": "date",
            "description": "The plan's last local date (inclusive); null: open-ended.",
        },
        "steps": {
            "type": "array",
            "description": "A titration or taper: each step replaces the regimen from its `from_date` on.",
            "items": {
                "type": "object",
                "properties": {
                    "from_date": _string("The step's first local date.", format="date"),
                    "dose_mg": _string(f"The step's dose, {_DECIMAL_MG}."),
                    "times": _TIMES,
                    "taper": {
                        "type": "boolean",
                        "description": "Present (true) only when the coach marked the step a taper.",
                    },
                },
                "required": ["from_date", "dose_mg", "times"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["medication", "dose_mg", "times", "start_date", "end_date", "steps"],
    "additionalProperties": False,
}

#: What an audit entry about a member names (each `audit.record(...)` with a `subject_member_id`): every
#: key is written by some actions only, none by `caseload.listed` and `flags.listed`. The answer is the
#: stored detail as it is (the same list as GET /me/export's `disclosures`), so a new key an audit entry
#: writes belongs here too.
DISCLOSURE_DETAIL: dict[str, Any] = {
    "type": "object",
    "properties": {
        "via": _string(
            "`member.viewed`: read through the coach API or the dashboard's member page.",
            enum=["api", "dashboard"],
        ),
        "days": {
            "type": "integer",
            "description": "`member.viewed` on the dashboard: how many days of history its charts showed.",
        },
        "story": {
            "type": ["string", "null"],
            "format": "date",
            "description": "`member.viewed` on the dashboard: the local date of the oldest entry of the "
            "member's story it showed; null when it showed none.",
        },
        "start": _string("`member.timeline_viewed`: the first local date of the range read.", format="date"),
        "end": _string(
            "`member.timeline_viewed`: the last local date of the range read (inclusive).", format="date"
        ),
        "flag_id": _string("`flag.acknowledged`, `flag.resolved`: the flag's id.", format="uuid"),
        "rule": _string("`flag.acknowledged`, `flag.resolved`: the safety rule that raised the flag."),
        "message_id": _string("`message.sent`: the id of the message sent to the member.", format="uuid"),
        "characters": {
            "type": "integer",
            "description": "`message.sent`: the message's length in characters (its text is not kept here).",
        },
        "plan_id": _string(
            "`plan.created`, `plan.changed`, `plan.high_dose_confirmed`: the medication plan's id.",
            format="uuid",
        ),
        "medication": _string("`plan.high_dose_confirmed`: the medication's catalogue code."),
        "daily_mg": _string(f"`plan.high_dose_confirmed`: the plan's highest daily dose, {_DECIMAL_MG}."),
        "usual_max_mg": _string(
            "`plan.high_dose_confirmed`: the usual daily maximum that dose is over, in milligrams, a "
            "decimal in a string."
        ),
        "before": {**_PLAN_RECORD, "description": "`plan.changed`: the plan as it was."},
        "after": {**_PLAN_RECORD, "description": "`plan.created`, `plan.changed`: the plan as written."},
    },
    "additionalProperties": False,
}


class DisclosureSchema(Schema):
    at = fields.String(
        metadata={"format": "date-time", "description": "When it happened: an instant with its UTC offset."}
    )
    action = fields.String(
        metadata={
            "example": "member.viewed",
            "description": "What was done, `<feature>.<verb>`: `member.viewed`, `member.timeline_viewed`, "
            "`caseload.listed`, `flags.listed`, `flag.acknowledged`, `flag.resolved`, `message.sent`, "
            "`plan.created`, `plan.changed` or `plan.high_dose_confirmed`.",
        }
    )
    by = fields.Nested(DisclosureActorSchema, metadata={"description": "Who did it."})
    detail = fields.Dict(
        metadata={
            **DISCLOSURE_DETAIL,
            "description": "What exactly, by `action`: ids, the range or page read, a plan before and "
            "after a staff write. Never free text the member wrote; the only health data is a plan a "
            "coach wrote (medication, doses, times).",
        }
    )


class DisclosuresSchema(Schema):
    disclosures = fields.List(
        fields.Nested(DisclosureSchema),
        metadata={"description": "Newest first, the 1,000 most recent; `GET /me/export` has every one."},
    )
