"""The member's dose check-ins: recorded once per (member, phone id) and once per (plan, dose slot), the
database's keys deciding between concurrent duplicates; listed a page at a time; and the member's
medication records for `GET /me/export`. Services flush, never commit.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert

from companion import privacy
from companion.accounts.models import Member, local_today
from companion.config import backfill_days
from companion.db import get_row, new_detached, session, utcnow
from companion.domain import localtime, plans
from companion.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from companion.domain.medications import side_effect_codes
from companion.domain.types import DateRange
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport, plan_to_domain
from companion.medications.schemas import CheckinSchema, PlanSchema
from companion.medications.services import CREATED, INVALID_BODY, UNCHANGED, plan_view
from companion.pagination import decode_page_cursor, instant_cursor_key, page
from companion.tracking import rowset

#: A phone's clock may run this far ahead of ours before `taken_at` counts as "in the future" (ours).
CLOCK_SKEW = timedelta(minutes=5)
#: A dose may be checked in at most this long before its slot: taken a little early, or skipped
#: ahead of time; further ahead is a phone bug (ours).
CHECKIN_LEAD = timedelta(hours=12)


# --- check-ins --------------------------------------------------------------------------------------


def _side_effects(
    member_id: uuid.UUID, checkin_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[SideEffectReport]]:
    by_checkin: dict[uuid.UUID, list[SideEffectReport]] = defaultdict(list)
    if checkin_ids:
        rows = session.execute(
            select(SideEffectReport)
            .where(SideEffectReport.member_id == member_id, SideEffectReport.checkin_id.in_(checkin_ids))
            .order_by(SideEffectReport.id)
        ).scalars()
        for row in rows:
            by_checkin[row.checkin_id].append(row)
    return by_checkin


def _medications(plan_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not plan_ids:
        return {}
    rows = session.execute(
        select(MedicationPlan.id, MedicationPlan.medication).where(MedicationPlan.id.in_(plan_ids))
    )
    return dict(rows.all())  # rows of (id, medication)


def _view(checkin: MedicationCheckin, medication: str, effects: list[SideEffectReport]) -> dict[str, Any]:
    return {
        "id": checkin.id,
        "plan_id": checkin.plan_id,
        "medication": medication,
        "scheduled_for": checkin.scheduled_for,
        "date": checkin.date,
        "status": checkin.status,
        "taken_at": checkin.taken_at,
        "side_effects": [{"code": e.code, "severity": e.severity, "note": e.note} for e in effects],
        "note": checkin.note,
        "created_at": checkin.created_at,
    }


def checkin_views(
    checkins: Sequence[MedicationCheckin], medication_of: dict[uuid.UUID, str] | None = None
) -> list[dict[str, Any]]:
    """Check-ins as the API shows them (`CheckinSchema`), with their side effects, in two queries (one
    when the caller knows each plan's medication: `medication_of`)."""
    if not checkins:
        return []
    plan_ids = {c.plan_id for c in checkins}
    medications = medication_of if medication_of and plan_ids <= medication_of.keys() else None
    medications = medications or _medications(sorted(plan_ids))
    effects = _side_effects(checkins[0].member_id, [c.id for c in checkins])
    return [_view(c, medications.get(c.plan_id, ""), effects.get(c.id, [])) for c in checkins]


def checkin_view(checkin: MedicationCheckin) -> dict[str, Any]:
    """One check-in as the API shows it (dump it with `CheckinSchema`); one just written carries it."""
    written = getattr(checkin, "written_view", None)
    return written if written is not None else checkin_views([checkin])[0]


def dump_checkin(checkin: MedicationCheckin) -> dict[str, Any]:
    """JSON-ready: what a 409 carries under `error.current`."""
    return CheckinSchema().dump(checkin_view(checkin))


def _effect_key(code: str, severity: str, note: str | None) -> tuple[str, str, str]:
    return code, severity, note or ""


def _same_checkin(stored: MedicationCheckin, data: dict[str, Any]) -> bool:
    """Whether `data` is the stored check-in sent again: values compared after normalising (instants as
    UTC instants, absent and null alike, side effects in any order)."""
    effects = _side_effects(stored.member_id, [stored.id]).get(stored.id, [])
    stored_effects = sorted(_effect_key(e.code, e.severity, e.note) for e in effects)
    given_effects = sorted(
        _effect_key(e["code"], e["severity"], e.get("note")) for e in data.get("side_effects") or []
    )
    taken_at = data.get("taken_at")
    return (
        stored.plan_id == data["plan_id"]
        and stored.scheduled_for == localtime.to_utc(data["scheduled_for"])
        and stored.status == data["status"]
        and stored.taken_at == (localtime.to_utc(taken_at) if taken_at is not None else None)
        and (stored.note or "") == (data.get("note") or "")
        and stored_effects == given_effects
    )


def _stored_checkin(member_id: uuid.UUID, checkin_id: uuid.UUID) -> MedicationCheckin | None:
    return session.execute(
        select(MedicationCheckin)
        .where(MedicationCheckin.member_id == member_id, MedicationCheckin.id == checkin_id)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _replayed(stored: MedicationCheckin, data: dict[str, Any]) -> tuple[MedicationCheckin, str]:
    if not _same_checkin(stored, data):
        raise Conflict("A different check-in with this id is stored.", current=dump_checkin(stored))
    return stored, UNCHANGED


def _dose_slot(
    member: Member, plan: MedicationPlan, data: dict[str, Any], *, now: datetime
) -> plans.DoseSlot:
    """The slot `scheduled_for` names, checked against the plan and the clock."""
    scheduled_for = data["scheduled_for"]
    if scheduled_for > now + CHECKIN_LEAD:
        hours = int(CHECKIN_LEAD.total_seconds() // 3600)
        message = f"More than {hours} hours ahead: not due yet."
        raise InvalidInput(INVALID_BODY, fields={"scheduled_for": [message]})
    slot = plans.slot_matches(plan_to_domain(plan), scheduled_for, member.timezone)
    if slot is None:
        raise InvalidInput(
            INVALID_BODY,
            fields={
                "scheduled_for": [
                    "Not a dose this plan schedules: one of its times on a day it is in force, "
                    f"in {member.timezone}."
                ]
            },
        )
    oldest = local_today(member, now) - timedelta(days=backfill_days())
    if slot.local_date < oldest:
        message = f"Cannot be more than {backfill_days()} days ago."
        raise InvalidInput(INVALID_BODY, fields={"scheduled_for": [message]})
    return slot


def _check_details(plan: MedicationPlan, data: dict[str, Any], *, now: datetime) -> None:
    taken_at = data.get("taken_at")
    if taken_at is not None and taken_at > now + CLOCK_SKEW:
        raise InvalidInput(INVALID_BODY, fields={"taken_at": ["Cannot be in the future."]})
    allowed = side_effect_codes(plan.medication)
    message = f"Not a side effect of {plan.medication} (GET /medications); use 'other' with a note."
    unknown = {
        str(i): {"code": [message]}
        for i, effect in enumerate(data.get("side_effects") or [])
        if effect["code"] not in allowed
    }
    if unknown:
        raise InvalidInput(INVALID_BODY, fields={"side_effects": unknown})  # type: ignore[dict-item]  # field errors nested by item index, as the schemas give them


CHECKINS = rowset.RowSpec(
    "medication_checkins",
    (
        rowset.Column("id", "uuid"),
        rowset.Column("plan_id", "uuid"),
        rowset.Column("scheduled_for", "timestamptz"),
        rowset.Column("date", "date"),
        rowset.Column("status", "text"),
        rowset.Column("taken_at", "timestamptz"),
        rowset.Column("note", "text"),
        rowset.Column("created_at", "timestamptz"),
    ),
    conflict=None,  # its id, or its plan's dose slot (uq_medication_checkins_slot)
    key=("id",),
)


def checkin_row(
    member: Member, plan: MedicationPlan | None, data: dict[str, Any], *, now: datetime
) -> tuple[dict[str, Any], plans.DoseSlot]:
    """The row a new check-in inserts, checked against its plan and the clock (NotFound, InvalidInput)."""
    if plan is None or plan.member_id != member.id:
        raise NotFound("No such medication plan.", fields={"plan_id": ["No such plan."]})
    slot = _dose_slot(member, plan, data, now=now)
    _check_details(plan, data, now=now)
    taken_at = data.get("taken_at")
    row = {
        "id": data["id"],
        "plan_id": plan.id,
        "scheduled_for": slot.scheduled_for,
        "date": slot.local_date,
        "status": data["status"],
        "taken_at": localtime.to_utc(taken_at) if taken_at is not None else None,
        "note": data.get("note"),
        "created_at": now,
    }
    return row, slot


def add_side_effects(member: Member, checkins: Sequence[tuple[dict[str, Any], str, dict[str, Any]]]) -> None:
    """The side effects of new check-ins, in one statement: (check-in row, medication, its input)."""
    reports = [
        {
            "member_id": member.id,
            "checkin_id": row["id"],
            "medication": medication,
            "date": row["date"],
            "code": e["code"],
            "severity": e["severity"],
            "note": e.get("note"),
        }
        for row, medication, data in checkins
        for e in data.get("side_effects") or []
    ]
    if reports:
        session.execute(insert(SideEffectReport), reports)


def written_checkin(
    member: Member, plan: MedicationPlan, data: dict[str, Any], row: dict[str, Any], origin: uuid.UUID | None
) -> MedicationCheckin:
    """After the insert: the check-in's side effects (one statement, if any), and the check-in as
    written, carrying what its answer shows (no read back)."""
    add_side_effects(member, [(row, plan.medication, data)])
    checkin = new_detached(MedicationCheckin, {"member_id": member.id, "changed_by": origin, **row})
    view = _view(checkin, plan.medication, [])
    view["side_effects"] = [
        {"code": e["code"], "severity": e["severity"], "note": e.get("note")}
        for e in data.get("side_effects") or []
    ]
    checkin.written_view = view  # type: ignore[attr-defined]  # the answer rides on the ORM object; read back with getattr
    return checkin


def record_checkin(
    member: Member, data: dict[str, Any], *, origin: uuid.UUID | None, now: datetime
) -> tuple[MedicationCheckin, str]:
    """Record a dose taken or skipped, once. `data` is what `CheckinInputSchema` loads.

    * A new id for a slot not yet checked in: stored with its side effects, "created".
    * The same id with the same body (a retry): nothing changes, "unchanged", whatever happened to
      the plan since.
    * The same id with a different body: Conflict, with the stored check-in as `current`.
    * Another id for a slot already checked in: Conflict (the (plan, slot) key), with that check-in.

    Concurrent duplicates are settled by the database's keys: the insert is `ON CONFLICT DO NOTHING`
    (`tracking.rowset`, one statement with the change lock and the safety request), the second of two
    concurrent inserts waits for the first and inserts nothing, and then compares with what the first
    stored. Nothing is written unless "created" is returned. A body that fails against the plan is
    still a replay when its id is stored (the plan may have changed since).

    :raises NotFound: the plan is not the member's (field `plan_id`).
    :raises InvalidInput: `scheduled_for` is not a dose slot of the plan, `taken_at` is in the future,
        a side effect is not one of the medication's.
    :raises Conflict: see above.
    """
    plan = get_row(MedicationPlan, data["plan_id"])  # session.get, cheaper (every check-in reads it)
    try:
        row, slot = checkin_row(member, plan, data, now=now)
    except DomainError:
        stored = _stored_checkin(member.id, data["id"])
        if stored is not None:
            return _replayed(stored, data)
        raise
    assert plan is not None
    if rowset.insert_new(CHECKINS, member.id, [row], origin=origin, now=now):
        return written_checkin(member, plan, data, row, origin), CREATED
    return _already_stored(member, data, plan, slot)


def _already_stored(
    member: Member, data: dict[str, Any], plan: MedicationPlan, slot: plans.DoseSlot
) -> tuple[MedicationCheckin, str]:
    """After a duplicate key: the same id (a replay, or a different body), or another id for the slot."""
    stored = _stored_checkin(member.id, data["id"])
    if stored is not None:
        return _replayed(stored, data)
    other = session.execute(
        select(MedicationCheckin).where(
            MedicationCheckin.plan_id == plan.id, MedicationCheckin.scheduled_for == slot.scheduled_for
        )
    ).scalar_one_or_none()
    details = {"current": dump_checkin(other)} if other is not None else {}
    raise Conflict(
        "This dose is already checked in.",
        fields={"scheduled_for": ["This dose slot already has a check-in (with another id)."]},
        **details,
    )


def list_checkins(member: Member, window: DateRange, *, cursor: str | None, limit: int) -> dict[str, Any]:
    """`GET /medication-checkins`: check-ins whose slot falls on a local date in `window`, in slot order."""
    query = select(MedicationCheckin).where(
        MedicationCheckin.member_id == member.id, MedicationCheckin.date.between(window.start, window.end)
    )
    key = tuple_(MedicationCheckin.scheduled_for, MedicationCheckin.id)
    filters = ("medication_checkins", member.id, window.start, window.end)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        query = query.where(key > instant_cursor_key(after))
    rows = list(session.execute(query.order_by(*key.clauses).limit(limit + 1)).scalars())
    result = page(rows, limit, lambda c: [c.scheduled_for.isoformat(), str(c.id)], filters=filters)
    result["items"] = checkin_views(result["items"])
    return result


# --- GET /me/export ---------------------------------------------------------------------------------


def _export(member_id: uuid.UUID) -> dict[str, Any]:
    member = session.get(Member, member_id)
    assert member is not None
    today = local_today(member, utcnow())
    plan_rows = session.execute(
        select(MedicationPlan)
        .where(MedicationPlan.member_id == member_id)
        .order_by(MedicationPlan.start_date, MedicationPlan.created_at)
    ).scalars()
    checkins = list(
        session.execute(
            select(MedicationCheckin)
            .where(MedicationCheckin.member_id == member_id)
            .order_by(MedicationCheckin.scheduled_for, MedicationCheckin.id)
        ).scalars()
    )
    return {
        "medication_plans": PlanSchema(many=True).dump([plan_view(p, today=today) for p in plan_rows]),
        "medication_checkins": CheckinSchema(many=True).dump(checkin_views(checkins)),
    }


privacy.register_exporter("medications", _export)
