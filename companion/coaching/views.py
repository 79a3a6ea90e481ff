"""Coach reads API (API.md "Coach"): the caseload, one member, their timeline. Thin; every read audited."""

from __future__ import annotations

import uuid
from typing import Any

from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts.models import Role
from companion.auth.access import allow
from companion.coaching import schemas, services
from companion.coaching import timeline as timelines
from companion.db import unit_of_work, utcnow

blp = Blueprint("coaching", __name__, url_prefix="/api/v1", description="What coaches read about members")


@blp.route("/coach/members", methods=["GET"])
@blp.doc(operationId="listCaseload")
@allow(Role.COACH, Role.ADMIN)
@blp.arguments(schemas.CaseloadArgsSchema(), location="query")
@blp.response(200, schemas.CaseloadPageSchema)
def caseload(args: dict[str, Any]):
    """The caseload: members with urgent flags first, then those with most flags still to handle.

    A coach sees the members on their current caseload; an admin every member. Each member comes with
    their flag counts, when they last logged anything and their summary. Each member listed is written
    to the audit log.
    """
    with unit_of_work():
        return services.caseload(current_user, cursor=args.get("cursor"), limit=args["limit"], now=utcnow())


@blp.route("/coach/members/<uuid:member_id>", methods=["GET"])
@blp.doc(operationId="getCaseloadMember")
@allow(Role.COACH, Role.ADMIN)
@blp.response(200, schemas.CoachMemberSchema)
@blp.alt_response(404, description="No such member on your current caseload (admins: no such member).")
def member(member_id: uuid.UUID):
    """One member: profile, flag counts, last activity and summary. Written to the audit log."""
    with unit_of_work():
        return services.profile(current_user, member_id, now=utcnow())


@blp.route("/coach/members/<uuid:member_id>/timeline", methods=["GET"])
@blp.doc(operationId="getMemberTimeline")
@allow(Role.COACH, Role.ADMIN)
@blp.arguments(schemas.TimelineArgsSchema(), location="query")
@blp.response(200, schemas.TimelinePageSchema)
@blp.alt_response(404, description="No such member on your current caseload (admins: no such member).")
def timeline(args: dict[str, Any], member_id: uuid.UUID):
    """Drink logs, breath readings, cravings, dose check-ins, flags and messages in one list.

    Items whose member-local date is in `from`..`to` (inclusive; default the 30 days up to the member's
    today), oldest first; items at the same instant by `kind`, then `id`. Pages of `limit` items
    (default 100, at most 500) follow `next_cursor`. Each item names its `kind` and carries the record
    under the key of that name, as the member's own API shows it. Each read, with its range, is written
    to the audit log.
    """
    with unit_of_work():
        return timelines.timeline(
            current_user,
            member_id,
            start=args.get("from_"),
            end=args.get("to"),
            cursor=args.get("cursor"),
            limit=args["limit"],
            now=utcnow(),
        )
