"""Inbox and coach messages API (API.md). Thin: validate, call one service, commit once."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts.models import Role
from companion.auth.access import allow
from companion.db import unit_of_work, utcnow
from companion.nudges import schemas, services

blp = Blueprint(
    "nudges", __name__, url_prefix="/api/v1", description="The member's inbox, and coach messages"
)


@blp.route("/me/messages")
class Inbox(MethodView):
    @allow(Role.MEMBER)
    @blp.doc(operationId="listMessages")
    @blp.arguments(schemas.InboxArgsSchema(), location="query")
    @blp.response(200, schemas.InboxPageSchema)
    def get(self, args: dict[str, Any]):
        """The inbox, newest first: nudges that reached the member, and coach messages.

        A snoozed item is hidden until its snooze ends, then pushed and shown again as unread. Push
        texts never carry health data; a coach message's text is only here and in `GET /sync`.
        """
        return services.inbox(
            current_user.member, cursor=args.get("cursor"), limit=args["limit"], now=utcnow()
        )


@blp.route("/me/messages/<uuid:nudge_id>/read", methods=["POST"])
@blp.doc(operationId="markMessageRead")
@allow(Role.MEMBER)
@blp.response(204)
@blp.alt_response(404, description="No such item in your inbox.")
def read(nudge_id: uuid.UUID):
    """Mark an inbox item read (idempotent: the first read time is kept)."""
    with unit_of_work():
        services.mark_read(current_user.member, nudge_id, now=utcnow())


@blp.route("/me/messages/<uuid:nudge_id>/snooze", methods=["POST"])
@blp.doc(operationId="snoozeMessage")
@allow(Role.MEMBER)
@blp.arguments(schemas.SnoozeSchema())
@blp.response(202, schemas.SnoozedSchema)
@blp.alt_response(404, description="No such item in your inbox.")
@blp.alt_response(409, description="Its push is leaving right now; try again in a moment.")
@blp.alt_response(422, description="`minutes` outside 10-240, or the item expires before then.")
def snooze(data: dict[str, Any], nudge_id: uuid.UUID):
    """Hide an item for `minutes` (10-240); it is then pushed again and shown as unread."""
    with unit_of_work():
        until = services.snooze(current_user.member, nudge_id, data["minutes"], now=utcnow())
    return {"id": nudge_id, "snoozed_until": until}


@blp.route("/coach/members/<uuid:member_id>/messages", methods=["POST"])
@allow(Role.COACH, Role.ADMIN)
@blp.arguments(schemas.MessageInputSchema())
@blp.response(201, schemas.MessageSchema)
@blp.alt_response(404, description="No such member on your current caseload (admins: no such member).")
def send_message(data: dict[str, Any], member_id: uuid.UUID):
    """Message a member: it is in their inbox and `GET /sync` at once, and pushed to their phones.

    The push says only that the coach wrote ("New message"); never capped or muted, held only by
    the member's quiet hours.
    """
    with unit_of_work():
        message = services.send_coach_message(current_user, member_id, data["body"], now=utcnow())
        return services.message_view(message)
