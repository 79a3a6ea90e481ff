"""Flag bodies in and out (API.md "Coach": flags). Inbound: unknown fields are 422, named."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from companion.domain.safety import RULES, Tier
from companion.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from companion.safety.models import FlagStatus
from companion.validation import Instant, StrictSchema

SEVERITIES = [t.label for t in sorted(Tier, reverse=True)]
STATUSES = [s.value for s in FlagStatus]
#: A resolution note's length, characters (ours).
MAX_NOTE = 2000


class FlagArgsSchema(StrictSchema):
    status = fields.String(
        validate=validate.OneOf(STATUSES),
        metadata={
            "description": "Only flags in this status. Default: those still to handle (open, acknowledged); "
            "`cleared` lists flags a rescan found no longer true."
        },
    )
    severity = fields.String(
        validate=validate.OneOf(SEVERITIES), metadata={"description": "Only flags of this tier."}
    )
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page."}
    )
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE,
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
        metadata={"description": f"Page size, at most {MAX_PAGE_SIZE}."},
    )


class ResolveSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "note": "Called the member; nausea eased after taking the dose with food."
    }

    note = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_NOTE),
        metadata={"description": f"What was done, 1 to {MAX_NOTE} characters."},
    )


class FlagSchema(Schema):
    id = fields.UUID()
    member_id = fields.UUID()
    rule = fields.String(metadata={"enum": list(RULES)})
    rule_version = fields.Integer()
    severity = fields.String(metadata={"enum": SEVERITIES, "description": "The flag's tier."})
    status = fields.String(metadata={"enum": STATUSES})
    summary = fields.String(
        metadata={"description": "Codes, counts and dates: never the member's own words."}
    )
    symptoms = fields.List(fields.String(), metadata={"description": "Side-effect codes involved."})
    medications = fields.List(fields.String(), metadata={"description": "Medication codes involved."})
    evidence = fields.List(
        fields.String(),
        metadata={
            "description": "The entries the flag rests on: `side_effect:<id>`, `checkin:<id>`, "
            "`dose:<plan id>:<UTC instant>` (a dose never checked in), `drink_log:<date>`, `craving:<id>`, "
            "`breath:<id>`; `no_entry_since:<date>` for disengagement."
        },
    )
    first_seen = fields.Date(metadata={"description": "Member-local date of the earliest evidence."})
    last_seen = fields.Date(metadata={"description": "Member-local date of the latest evidence."})
    created_at = Instant()
    updated_at = Instant()
    acknowledged_by = fields.UUID(allow_none=True)
    acknowledged_at = Instant(allow_none=True)
    resolved_by = fields.UUID(allow_none=True)
    resolved_at = Instant(allow_none=True)
    resolution_note = fields.String(allow_none=True)
    escalated_at = Instant(
        allow_none=True, metadata={"description": "When the admins were told it was overdue."}
    )
    cleared_at = Instant(
        allow_none=True,
        metadata={"description": "When a rescan found the flag no longer true (status `cleared`)."},
    )
    cleared_reason = fields.String(
        allow_none=True,
        metadata={"description": "Why it was cleared: codes and dates, never the member's own words."},
    )
    cleared_evidence = fields.List(
        fields.String(),
        metadata={"description": "The entries that showed it no longer true (ids as in `evidence`)."},
    )
    queue = fields.String(
        metadata={
            "enum": ["coach", "admins"],
            "description": "Routed to the member's coach, or to the admins.",
        }
    )
    assigned_coach_id = fields.UUID(allow_none=True)


class FlagPageSchema(Schema):
    items = fields.List(fields.Nested(FlagSchema))
    next_cursor = fields.String(allow_none=True)
