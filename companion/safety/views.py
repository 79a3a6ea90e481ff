"""Coach flags API (API.md "Coach"): the queue, acknowledge, resolve."""

from __future__ import annotations

import uuid
from typing import Any

from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts.models import Role
from companion.auth.access import allow
from companion.db import unit_of_work, utcnow
from companion.safety import queue, schemas

blp = Blueprint("safety", __name__, url_prefix="/api/v1", description="Safety flags for coaches")


@blp.route("/coach/flags", methods=["GET"])
@blp.doc(operationId="listFlags")
@allow(Role.COACH, Role.ADMIN)
@blp.arguments(schemas.FlagArgsSchema(), location="query")
@blp.response(200, schemas.FlagPageSchema)
def flags(args: dict[str, Any]):
    """Flags to handle, most urgent first, then oldest (by when the flag opened).

    A coach sees the flags of members on their current caseload; an admin sees every flag, those in
    the admins' queue (members without a coach, `queue: admins`) included. Without `status`, the
    flags still to handle: open and acknowledged. Each read is written to the audit log.
    """
    with unit_of_work():
        return queue.list_flags(
            current_user,
            status=args.get("status"),
            severity=args.get("severity"),
            cursor=args.get("cursor"),
            limit=args["limit"],
            now=utcnow(),
        )


@blp.route("/coach/flags/<uuid:flag_id>/acknowledge", methods=["POST"])
@blp.doc(operationId="acknowledgeFlag")
@allow(Role.COACH, Role.ADMIN)
@blp.response(200, schemas.FlagSchema)
@blp.alt_response(404, description="No such flag on your current caseload (admins: no such flag).")
@blp.alt_response(409, description="The flag is resolved; `error.current` holds it.")
def acknowledge(flag_id: uuid.UUID):
    """Take a flag in hand: it stops escalating. Acknowledging it again changes nothing."""
    with unit_of_work():
        return queue.flag_view(queue.acknowledge(current_user, flag_id, now=utcnow()))


@blp.route("/coach/flags/<uuid:flag_id>/resolve", methods=["POST"])
@blp.doc(operationId="resolveFlag")
@allow(Role.COACH, Role.ADMIN)
@blp.arguments(schemas.ResolveSchema())
@blp.response(200, schemas.FlagSchema)
@blp.alt_response(404, description="No such flag on your current caseload (admins: no such flag).")
@blp.alt_response(409, description="Already resolved; `error.current` holds the flag.")
@blp.alt_response(422, description="No note, or one too long.")
def resolve(data: dict[str, Any], flag_id: uuid.UUID):
    """Close a flag with a note (from open or acknowledged). The same pattern seen again later opens a
    new flag only on evidence this one does not hold."""
    with unit_of_work():
        return queue.flag_view(queue.resolve(current_user, flag_id, data["note"], now=utcnow()))
