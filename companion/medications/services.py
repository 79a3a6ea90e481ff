"""Medication plans (written by coaches and admins), and the catalogue they choose from. The member's dose
check-ins are `medications.checkins`.

A plan row is converted to the pure `domain.plans.Plan` for every rule: validation, the regimen in
force on a day, dose slots. Services flush, never commit; they return what they did ("created",
"unchanged") so the API and the sync batch answer alike.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from companion.accounts.models import Member, User, local_today
from companion.audit import services as audit
from companion.auth.policy import member_for_staff
from companion.db import session, utcnow
from companion.domain import plans
from companion.domain.errors import InvalidInput, NotFound
from companion.domain.medications import CATALOGUE
from companion.medications.models import MedicationPlan, plan_to_domain
from companion.medications.schemas import PlanSchema
from companion.nudges import hooks as nudge_hooks
from companion.sync_seq import stamp
from companion.tracking.services import request_safety_scan

CREATED, UNCHANGED = "created", "unchanged"

INVALID_BODY = "The request body is invalid."


# --- catalogue --------------------------------------------------------------------------------------


def catalogue() -> list[dict[str, Any]]:
    """`GET /medications`: the medications a plan may name, with the side effects a check-in may report."""
    return [
        {
            "code": m.code,
            "name": m.name,
            "drug_class": m.drug_class,
            "side_effects": [{"code": s.code, "label": s.label} for s in m.side_effects],
        }
        for m in CATALOGUE
    ]


# --- plans ------------------------------------------------------------------------------------------


def _step_to_json(step: plans.PlanStep) -> dict[str, Any]:
    """How a step is stored in `medication_plans.steps` (JSONB): exact decimals as strings, "HH:MM" times,
    `taper` only when the coach marked the step (steps stored before it existed read as not marked)."""
    stored: dict[str, Any] = {
        "from_date": step.from_date.isoformat(),
        "dose_mg": str(step.dose_mg),
        "times": [t.strftime("%H:%M") for t in step.times],
    }
    if step.taper:
        stored["taper"] = True
    return stored


def plan_record(plan: plans.Plan) -> dict[str, Any]:
    """A plan as the audit log keeps it (JSON): what a staff write changed it from and to."""
    return {
        "medication": plan.medication,
        "dose_mg": str(plan.dose_mg),
        "times": [t.strftime("%H:%M") for t in plan.times],
        "start_date": plan.start_date.isoformat(),
        "end_date": plan.end_date.isoformat() if plan.end_date else None,
        "steps": [_step_to_json(s) for s in plan.steps],
    }


def _normal(dose: Decimal) -> Decimal:
    """10.00 -> 10, 7.50 -> 7.5: the JSON answer shows the dose as the coach wrote it."""
    normal = dose.normalize()
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def plan_view(row: MedicationPlan, *, today: date) -> dict[str, Any]:
    """A plan as the API shows it; `active` when it is in force on the member's local `today`."""
    plan = plan_to_domain(row)
    return {
        "id": row.id,
        "medication": row.medication,
        "dose_mg": _normal(plan.dose_mg),
        "times": list(plan.times),
        "start_date": row.start_date,
        "end_date": row.end_date,
        "steps": [
            {
                "from_date": s.from_date,
                "dose_mg": _normal(s.dose_mg),
                "times": list(s.times),
                "taper": s.taper,
            }
            for s in plan.steps
        ],
        "active": plans.is_active(plan, today),
        "confirm_high_dose": bool(row.high_dose_confirmed),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def plan_view_now(row: MedicationPlan, *, now: datetime) -> dict[str, Any]:
    """`plan_view` with `active` computed for the plan's member's local date at `now`."""
    member = session.get(Member, row.member_id)
    assert member is not None
    return plan_view(row, today=local_today(member, now))


def dump_plan(member: Member, row: MedicationPlan, *, now: datetime | None = None) -> dict[str, Any]:
    """JSON-ready, as `GET /medication-plans` shows it (what `GET /sync` hands out for a plan)."""
    return PlanSchema().dump(plan_view(row, today=local_today(member, now or utcnow())))


def list_plans(member: Member, *, now: datetime) -> list[dict[str, Any]]:
    """`GET /medication-plans`: the member's plans, earliest start first."""
    today = local_today(member, now)
    rows = session.execute(
        select(MedicationPlan)
        .where(MedicationPlan.member_id == member.id)
        .order_by(MedicationPlan.start_date, MedicationPlan.created_at, MedicationPlan.id)
    ).scalars()
    return [plan_view(row, today=today) for row in rows]


def _sorted_times(raw: Sequence[time]) -> tuple[time, ...]:
    """Times in order (the order a coach types them in means nothing); repeats are kept for the domain
    to report."""
    return tuple(sorted(raw))


def _step(raw: dict[str, Any]) -> plans.PlanStep:
    return plans.PlanStep(
        raw["from_date"], raw["dose_mg"], _sorted_times(raw["times"]), raw.get("taper", False)
    )


def create_plan(
    actor: User,
    member_id: uuid.UUID,
    data: dict[str, Any],
    *,
    now: datetime,
    plan_id: uuid.UUID | None = None,
) -> MedicationPlan:
    """`POST /coach/members/{id}/medication-plans`: a new plan for a member `actor` may manage.
    `plan_id`: the id the dashboard's form carries, so a resubmitted form cannot store twice.

    `start_date` defaults to the member's local today and may not be before it: adherence counts
    doses from the start date, and doses before the plan existed must never count as missed.

    :raises NotFound: the member is not `actor`'s to manage.
    :raises InvalidInput: naming each bad field (domain.plans.plan_problems).
    """
    member = member_for_staff(actor, member_id)
    today = local_today(member, now)
    start = data.get("start_date") or today
    if start < today:
        raise InvalidInput(INVALID_BODY, fields={"start_date": [_not_before_today(today)]})
    plan = plans.Plan(
        id=plan_id or uuid.uuid4(),
        medication=data["medication"],
        dose_mg=data["dose_mg"],
        times=_sorted_times(data["times"]),
        start_date=start,
        end_date=data.get("end_date"),
        steps=tuple(_step(s) for s in data.get("steps") or []),
    )
    plans.validate_plan(plan)
    confirmed = _check_dose_limits(plan, confirmed=data.get("confirm_high_dose", False))
    row = MedicationPlan(id=plan.id, member_id=member.id, created_by=actor.id, created_at=now)
    _store(row, plan, now=now)
    row.high_dose_confirmed = confirmed
    session.add(row)
    session.flush()
    if confirmed:
        _audit_high_dose(actor, member, plan, now=now)
    nudge_hooks.plan_changed(member.id, row.id, now=now)
    request_safety_scan(member, now=now)  # a new plan can make past entries matter (e.g. a contraindication)
    audit.record(
        "plan.created",
        actor_id=actor.id,
        now=now,
        subject_member_id=member.id,
        plan_id=str(row.id),
        after=plan_record(plan),
    )
    return row


def _check_dose_limits(plan: plans.Plan, *, confirmed: bool) -> bool:
    """Whether the plan is stored as a confirmed high dose: it is above the usual maximum and the coach
    confirmed it. :raises InvalidInput: naming `dose_mg` (or `steps`) when a regimen is above the usual
    maximum without the confirmation, or above twice it."""
    if problems := plans.dose_limit_problems(plan, confirmed=confirmed):
        raise InvalidInput("The daily dose is above the medication's usual maximum.", fields=problems)
    return confirmed and plans.is_high_dose(plan)


def _audit_high_dose(actor: User, member: Member, plan: plans.Plan, *, now: datetime) -> None:
    maximum = plans.DOSE_LIMITS.usual_max_mg[plan.medication]
    audit.record(
        "plan.high_dose_confirmed",
        actor_id=actor.id,
        now=now,
        subject_member_id=member.id,
        plan_id=str(plan.id),
        medication=plan.medication,
        daily_mg=f"{plans.highest_daily_mg(plan).normalize():f}",
        usual_max_mg=str(maximum),
    )


def _not_before_today(today: date) -> str:
    return f"Must not be before the member's local today ({today}): days before it are history."


def _store(row: MedicationPlan, plan: plans.Plan, *, now: datetime) -> None:
    row.medication = plan.medication
    row.dose_mg = plan.dose_mg
    row.times = list(plan.times)
    row.start_date = plan.start_date
    row.end_date = plan.end_date
    row.steps = [_step_to_json(s) for s in plan.steps]
    row.updated_at = now
    stamp(row, None)  # staff changes reach every device of the member through GET /sync


def update_plan(
    actor: User, member_id: uuid.UUID, plan_id: uuid.UUID, changes: dict[str, Any], *, now: datetime
) -> MedicationPlan:
    """`PATCH /coach/members/{id}/medication-plans/{plan_id}`; see `patched_plan` for the semantics.

    :raises NotFound: the member is not `actor`'s to manage, or the plan is not the member's.
    :raises InvalidInput: naming each bad field.
    """
    member = member_for_staff(actor, member_id)
    row = session.execute(
        select(MedicationPlan)
        .where(MedicationPlan.id == plan_id, MedicationPlan.member_id == member.id)
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("No such medication plan.")
    current = plan_to_domain(row)
    new = patched_plan(
        current,
        {k: v for k, v in changes.items() if k != "confirm_high_dose"},
        today=local_today(member, now),
    )
    plans.validate_plan(new)
    # A stored confirmation covers the plan's high dose as it was, not a higher one.
    kept = row.high_dose_confirmed and plans.highest_daily_mg(new) <= plans.highest_daily_mg(current)
    sent = changes.get("confirm_high_dose", False)
    confirmed = _check_dose_limits(new, confirmed=sent or kept)
    if new != current or confirmed != row.high_dose_confirmed:
        _store(row, new, now=now)
        row.high_dose_confirmed = confirmed
        session.flush()
        if sent and confirmed:
            _audit_high_dose(actor, member, new, now=now)
        nudge_hooks.plan_changed(member.id, row.id, now=now)
        request_safety_scan(member, now=now)
        audit.record(
            "plan.changed",
            actor_id=actor.id,
            now=now,
            subject_member_id=member.id,
            plan_id=str(row.id),
            before=plan_record(current),
            after=plan_record(new),
        )
    return row


def patched_plan(current: plans.Plan, changes: dict[str, Any], *, today: date) -> plans.Plan:
    """The plan after a PATCH, on the member's local `today`. Days before `today` are history: a PATCH
    never changes what the plan scheduled on them, so adherence already counted stays true.

    * Before the plan's first day has begun (start_date > today), or on it (start_date == today), each
      field given replaces the stored one; `start_date` only while start_date > today, and not to a
      day before today.
    * Once the plan has days behind it (start_date < today):
      - `dose_mg` / `times` do not rewrite the base regimen: the new regimen becomes a step from today
        (the missing one of the two is taken from the regimen in force today), replacing the steps from
        today on. Send `steps` in the same PATCH to schedule later changes after it. A change equal to
        the regimen in force is no change.
      - `steps` replace the stored steps from today on; steps before today are kept, and must be sent
        unchanged or left out (so `[]` removes the steps ahead).
      - `end_date` may move to today or later (or null: open-ended), never to a day before today.
    * A plan that ended before today cannot change: start a new one.
    * A plan already started cannot change its `start_date`.

    :raises InvalidInput: naming the field that would rewrite history.
    """
    if not changes:
        return current
    if current.end_date is not None and current.end_date < today:
        message = f"This plan ended on {current.end_date}; start a new plan instead."
        raise InvalidInput(INVALID_BODY, fields={name: [message] for name in sorted(changes)})

    start_date = current.start_date
    if "start_date" in changes and changes["start_date"] != current.start_date:
        if current.start_date <= today:
            message = f"The plan started on {current.start_date}."
            raise InvalidInput(INVALID_BODY, fields={"start_date": [message]})
        if changes["start_date"] < today:
            raise InvalidInput(INVALID_BODY, fields={"start_date": [_not_before_today(today)]})
        start_date = changes["start_date"]

    end_date = current.end_date
    if "end_date" in changes and changes["end_date"] != current.end_date:
        end_date = changes["end_date"]
        if current.start_date < today and end_date is not None and end_date < today:
            raise InvalidInput(INVALID_BODY, fields={"end_date": [_not_before_today(today)]})

    given_steps = tuple(_step(s) for s in changes["steps"]) if "steps" in changes else None
    dose_times_given = "dose_mg" in changes or "times" in changes

    if current.start_date >= today:
        # Nothing has been scheduled before today: the PATCH simply replaces what it names.
        return plans.Plan(
            id=current.id,
            medication=current.medication,
            dose_mg=changes.get("dose_mg", current.dose_mg),
            times=_sorted_times(changes["times"]) if "times" in changes else current.times,
            start_date=start_date,
            end_date=end_date,
            steps=given_steps if given_steps is not None else current.steps,
        )

    history = tuple(s for s in current.steps if s.from_date < today)
    if given_steps is not None:
        if tuple(s for s in given_steps if s.from_date < today) not in ((), history):
            raise InvalidInput(
                INVALID_BODY,
                fields={
                    "steps": [
                        f"Steps before the member's local today ({today}) are history: send them unchanged, "
                        "or send only the steps from today on (they are kept)."
                    ]
                },
            )
        ahead = tuple(s for s in given_steps if s.from_date >= today)
    else:
        ahead = tuple(s for s in current.steps if s.from_date >= today)

    if dose_times_given:
        in_force = plans.regimen_on(current, today)
        assert in_force is not None  # started before today and not ended before today
        dose = changes.get("dose_mg", in_force.dose_mg)
        times = _sorted_times(changes["times"]) if "times" in changes else in_force.times
        if (dose, times) != (in_force.dose_mg, in_force.times):
            ahead = (plans.PlanStep(today, dose, times), *(ahead if given_steps is not None else ()))

    return plans.Plan(
        id=current.id,
        medication=current.medication,
        dose_mg=current.dose_mg,
        times=current.times,
        start_date=current.start_date,
        end_date=end_date,
        steps=history + ahead,
    )
