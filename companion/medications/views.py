"""Medications API (API.md "Tracking": catalogue, plans, check-ins; "Coach": plan writes)."""

from __future__ import annotations

import uuid
from typing import Any

from flask.views import MethodView
from flask_login import current_user
from flask_smorest import Blueprint

from companion.accounts.models import Role, local_today
from companion.auth.access import allow
from companion.db import unit_of_work, utcnow
from companion.medications import checkins, schemas, services
from companion.pagination import RangeArgsSchema, resolve_range
from companion.sync_seq import current_login

blp = Blueprint(
    "medications", __name__, url_prefix="/api/v1", description="Medication catalogue, plans, dose check-ins"
)


def _member():
    return current_user.member


@blp.route("/medications", methods=["GET"])
@blp.doc(operationId="listMedications")
@allow(Role.MEMBER, Role.COACH, Role.ADMIN, Role.INSURER_ANALYST)
@blp.response(200, schemas.MedicationListSchema)
def medications():
    """The medication catalogue, with the side effects a check-in may report for each."""
    return {"items": services.catalogue()}


@blp.route("/medication-plans", methods=["GET"])
@blp.doc(operationId="listMedicationPlans")
@allow(Role.MEMBER)
@blp.response(200, schemas.PlanListSchema)
def medication_plans():
    """The member's medication plans, earliest start first; `active` when in force on the local today."""
    return {"items": services.list_plans(_member(), now=utcnow())}


@blp.route("/coach/members/<uuid:member_id>/medication-plans", methods=["POST"])
@blp.doc(operationId="createMedicationPlan")
@allow(Role.COACH, Role.ADMIN)
@blp.arguments(schemas.PlanInputSchema())
@blp.response(201, schemas.PlanSchema)
@blp.alt_response(404, description="No such member on your current caseload (admins: no such member).")
@blp.alt_response(422, description="Invalid plan: each bad field is named.")
def create_plan(data: dict[str, Any], member_id: uuid.UUID):
    """Start a medication plan for a member.

    `times` are local wall-clock times in the member's zone, stored in order. `start_date` defaults to
    the member's local today and may not be before it. `steps` (a titration or taper) each replace the
    regimen from their `from_date`, after `start_date` and no later than `end_date`, in date order.
    """
    with unit_of_work():
        plan = services.create_plan(current_user, member_id, data, now=utcnow())
        return services.plan_view_now(plan, now=utcnow())


@blp.route("/coach/members/<uuid:member_id>/medication-plans/<uuid:plan_id>", methods=["PATCH"])
@blp.doc(operationId="updateMedicationPlan")
@allow(Role.COACH, Role.ADMIN)
@blp.arguments(schemas.PlanPatchSchema())
@blp.response(200, schemas.PlanSchema)
@blp.alt_response(404, description="No such member on your caseload, or no such plan of theirs.")
@blp.alt_response(422, description="An invalid change, or one rewriting days before the member's today.")
def update_plan(changes: dict[str, Any], member_id: uuid.UUID, plan_id: uuid.UUID):
    """Change a medication plan (dose, times, steps, end) without rewriting its past.

    Days before the member's local today are history: what the plan scheduled on them, and so the
    adherence already counted, never changes.

    - **Not started yet** (`start_date` after today) **or starting today**: each field given replaces
      the stored one. `start_date` may change only while it is after today, and not to a day before it.
    - **Started before today**:
      - `dose_mg` and `times` do not rewrite the base regimen. The new regimen is recorded as a step
        from today (a missing one of the two is taken from the regimen in force today) and replaces
        the steps from today on; send `steps` too to schedule later changes after it. A change equal
        to the regimen in force changes nothing.
      - `steps` replace the stored steps from today on. Steps before today are kept: send them
        unchanged or leave them out (so `[]` removes the steps ahead).
      - `end_date` may move to today or later, or to null (open-ended); `start_date` cannot change.
    - **Ended before today**: cannot change; start a new plan.
    - `medication` never changes (422): end the plan and start a new one.

    The member's phones receive the change through `GET /sync`.
    """
    with unit_of_work():
        plan = services.update_plan(current_user, member_id, plan_id, changes, now=utcnow())
        return services.plan_view_now(plan, now=utcnow())


@blp.route("/medication-checkins")
class MedicationCheckins(MethodView):
    @allow(Role.MEMBER)
    @blp.arguments(RangeArgsSchema(), location="query")
    @blp.response(200, schemas.CheckinPageSchema)
    def get(self, args: dict[str, Any]):
        """Dose check-ins whose slot is in a local date range (default: the last 30 days), in slot order."""
        member = _member()
        window = resolve_range(args, local_today(member, utcnow()))
        return checkins.list_checkins(member, window, cursor=args.get("cursor"), limit=args["limit"])

    @allow(Role.MEMBER)
    @blp.arguments(schemas.CheckinInputSchema())
    @blp.response(201, schemas.CheckinSchema, description="A new check-in.")
    @blp.alt_response(200, schema=schemas.CheckinSchema, description="The same id and body again: as stored.")
    @blp.alt_response(404, description="No such plan of yours (`fields.plan_id`).")
    @blp.alt_response(
        409,
        description="The same id with a different body, or another id for a dose slot already checked in; "
        "`error.current` holds the stored check-in.",
    )
    @blp.alt_response(
        422,
        description="Invalid body; `scheduled_for` not a dose slot the plan schedules (its times in the "
        "member's zone; a repeated fall-back time names its first occurrence); `taken_at` in the future; "
        "a side effect not of this medication.",
    )
    def post(self, data: dict[str, Any]):
        """Check in a dose: taken or skipped, with any side effects. Idempotent by the phone's id."""
        with unit_of_work():
            checkin, outcome = checkins.record_checkin(_member(), data, origin=current_login(), now=utcnow())
            body = checkins.checkin_view(checkin)
        return body, 201 if outcome == services.CREATED else 200
