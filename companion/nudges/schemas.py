"""Inbox and coach message bodies in and out (API.md `/me/messages`, `POST /coach/members/{id}/messages`)."""

from __future__ import annotations

from typing import Any, ClassVar

from marshmallow import Schema, fields, validate

from companion.domain.nudges import NudgeKind
from companion.nudges.services import INBOX_MAX_PAGE, INBOX_PAGE, MAX_MESSAGE_LENGTH, SNOOZE_MINUTES
from companion.validation import Instant, StrictSchema


class InboxArgsSchema(StrictSchema):
    cursor = fields.String(
        validate=validate.Length(max=200), metadata={"description": "next_cursor of the previous page."}
    )
    limit = fields.Integer(
        load_default=INBOX_PAGE,
        validate=validate.Range(min=1, max=INBOX_MAX_PAGE),
        metadata={"description": f"Page size, at most {INBOX_MAX_PAGE}."},
    )


class InboxItemSchema(Schema):
    id = fields.UUID(metadata={"description": "The id to mark read or snooze (a coach message's own id)."})
    kind = fields.String(metadata={"enum": [k.value for k in NudgeKind]})
    title = fields.String()
    body = fields.String(metadata={"description": "A coach message's text; otherwise the nudge's text."})
    sent_at = Instant(
        allow_none=True,
        metadata={"description": "When it reached the inbox; null for a coach message whose push waits."},
    )
    read_at = Instant(allow_none=True)
    expires_at = Instant(allow_none=True, metadata={"description": "A reminder is moot after this."})


class InboxPageSchema(Schema):
    items = fields.List(fields.Nested(InboxItemSchema))
    next_cursor = fields.String(allow_none=True)


class SnoozeSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {"minutes": 30}

    minutes = fields.Integer(
        required=True, validate=validate.Range(min=SNOOZE_MINUTES[0], max=SNOOZE_MINUTES[1])
    )


class SnoozedSchema(Schema):
    id = fields.UUID()
    snoozed_until = Instant(metadata={"description": "Hidden from the inbox until then, then pushed again."})


class MessageInputSchema(StrictSchema):
    EXAMPLE: ClassVar[dict[str, Any]] = {"body": "Great week, Sam. Shall we talk on Thursday?"}

    body = fields.String(required=True, validate=validate.Length(min=1, max=MAX_MESSAGE_LENGTH))


class MessageSchema(Schema):
    id = fields.UUID()
    member_id = fields.UUID()
    sender_id = fields.UUID(allow_none=True)
    body = fields.String()
    created_at = Instant()


class MessageChangeSchema(Schema):
    """A coach message as `GET /sync` hands it out (nudges.services.message_change)."""

    id = fields.UUID(metadata={"description": "The inbox item's id."})
    kind = fields.String(metadata={"enum": [NudgeKind.COACH_MESSAGE.value]})
    title = fields.String()
    body = fields.String()
    sender_id = fields.UUID(allow_none=True, metadata={"description": "The coach who wrote it."})
    created_at = Instant()
