"""Offline sync (API.md `POST /sync`, `GET /sync`).

POST: a batch of up to 500 records written on the phone while offline. Each item stands alone: it is
validated and stored in its own savepoint by the same services as the single-record endpoints, so a
bad or conflicting item never spoils the others, and a replayed batch changes nothing.

GET: what changed for the member since a cursor, made by another login (another phone, or staff).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from marshmallow import Schema, ValidationError, fields
from sqlalchemy import bindparam, select

from companion.accounts.models import Member
from companion.db import attach_rows, loaded_columns, session
from companion.domain.errors import Conflict, DomainError, TooLarge
from companion.medications import checkins as medication_checkins
from companion.medications import schemas as medication_schemas
from companion.medications import services as medication_services
from companion.medications.models import MedicationCheckin, MedicationPlan
from companion.nudges import hooks as nudge_hooks
from companion.nudges import schemas as nudge_schemas
from companion.nudges.models import Message
from companion.nudges.services import message_change
from companion.pacs import schemas as pacs_schemas
from companion.pacs import services as pacs_services
from companion.pacs.models import PacsReport
from companion.symptoms import schemas as symptom_schemas
from companion.symptoms import services as symptom_services
from companion.symptoms.models import SymptomReport
from companion.sync_seq import decode_cursor, encode_cursor
from companion.tracking import rowset, schemas, services
from companion.tracking.models import BacReading, Craving, DrinkLog
from companion.validation import body_text_is_clean, text_problem

#: API.md: at most 500 items a batch (more is a 413).
MAX_BATCH = 500
#: At most this many changes per GET /sync answer; `has_more` says to ask again (ours).
MAX_CHANGES = 500


# --- POST /sync ---------------------------------------------------------------------------------------


def _put_drink_log(member: Member, data: dict[str, Any], origin: uuid.UUID | None, now: datetime):
    day = data.pop("date")
    log, outcome = services.put_drink_log(member, day, data, origin=origin, now=now)
    return {"date": log.date.isoformat()}, outcome


def _by_id(record_fn: Callable[..., Any]) -> Callable[..., Any]:
    def handle(member: Member, data: dict[str, Any], origin: uuid.UUID | None, now: datetime):
        record, outcome = record_fn(member, data, origin=origin, now=now)
        return {"id": str(record.id)}, outcome

    return handle


#: type -> (the same input schema as the single-record endpoint, the same service).
HANDLERS: dict[str, tuple[type[Schema], Callable[..., Any]]] = {
    "drink_log": (schemas.SyncDrinkLogInputSchema, _put_drink_log),
    "craving": (schemas.CravingInputSchema, _by_id(services.record_craving)),
    "medication_checkin": (medication_schemas.CheckinInputSchema, _by_id(medication_checkins.record_checkin)),
    "bac_reading": (schemas.BacReadingInputSchema, _by_id(services.record_bac_reading)),
    "symptom_report": (
        symptom_schemas.SymptomReportInputSchema,
        _by_id(symptom_services.record_symptom_report),
    ),
    "pacs": (pacs_schemas.PacsInputSchema, _by_id(pacs_services.record_pacs)),
}


def _key_of(item: Any) -> dict[str, Any]:
    """The record's id or date as sent, so the phone can match a result even for an invalid item."""
    data = item.get("data") if isinstance(item, dict) else None
    if isinstance(data, dict):
        for key in ("id", "date"):
            value = data.get(key)
            if isinstance(value, str) and len(value) <= 64 and text_problem(value) is None:
                return {key: value}
    return {}


#: A member's plans, read once a batch with Core and attached as loaded (`db.attach_rows`).
_PLANS_OF = select(*loaded_columns(MedicationPlan)).where(MedicationPlan.member_id == bindparam("member_id"))


@dataclass
class Batch:
    """What every item of one batch shares."""

    member: Member
    origin: uuid.UUID | None
    now: datetime
    _plans: dict[uuid.UUID, MedicationPlan] | None = None

    def plan(self, plan_id: uuid.UUID) -> MedicationPlan | None:
        """The member's plan by id (all of them read once a batch)."""
        if self._plans is None:
            rows = session.connection().execute(_PLANS_OF, {"member_id": self.member.id})
            self._plans = {p.id: p for p in attach_rows(MedicationPlan, rows)}
        return self._plans.get(plan_id)


@dataclass
class NewRow:
    """A valid item made into the row it inserts: `keys[0]` is what the insert returns for it, any
    other key is another unique key of its table (two items of a batch may not share any key)."""

    index: int
    data: dict[str, Any]
    row: dict[str, Any]
    keys: tuple[tuple[Any, ...], ...]
    answer: dict[str, Any]
    extra: Any = None


@dataclass(frozen=True)
class SetPath:
    """How one item type's new records are stored as a set (`tracking.rowset`): `make` turns a valid
    item into its row (raising DomainError sends it down the per-item path, which answers it), and
    `created` runs for the rows the insert stored (side effects, nudges). Adding a type to the set path
    is declaring one of these."""

    spec: rowset.RowSpec
    make: Callable[[Batch, int, dict[str, Any]], NewRow]
    created: Callable[[Batch, list[NewRow]], None] | None = None


def _drink_log_row(batch: Batch, index: int, data: dict[str, Any]) -> NewRow:
    rest = {k: v for k, v in data.items() if k != "date"}
    prepared = services.prepare_drink_log(batch.member, data["date"], rest, now=batch.now)
    day = prepared.row["date"]
    return NewRow(index, data, prepared.row, ((day,),), {"date": day.isoformat()})


def _by_id_row(values_of: Callable[..., dict[str, Any]]) -> Callable[[Batch, int, dict[str, Any]], NewRow]:
    def make(batch: Batch, index: int, data: dict[str, Any]) -> NewRow:
        values = values_of(batch.member, data, now=batch.now)
        row = {"id": data["id"], "created_at": batch.now, **values}
        return NewRow(index, data, row, ((data["id"],),), {"id": str(data["id"])})

    return make


class _NewCraving(NamedTuple):
    """What the craving-support hook reads of a new craving."""

    id: uuid.UUID
    intensity: int
    recorded_at: datetime


def _cravings_created(batch: Batch, rows: list[NewRow]) -> None:
    for new in rows:
        craving = _NewCraving(new.row["id"], new.row["intensity"], new.row["recorded_at"])
        nudge_hooks.craving_recorded(batch.member, craving, now=batch.now)


def _checkin_row(batch: Batch, index: int, data: dict[str, Any]) -> NewRow:
    plan = batch.plan(data["plan_id"])
    row, _ = medication_checkins.checkin_row(batch.member, plan, data, now=batch.now)
    keys = ((row["id"],), (row["plan_id"], row["scheduled_for"]))
    return NewRow(index, data, row, keys, {"id": str(row["id"])}, extra=plan)


def _checkins_created(batch: Batch, rows: list[NewRow]) -> None:
    medication_checkins.add_side_effects(
        batch.member, [(new.row, new.extra.medication, new.data) for new in rows]
    )


#: type -> its set path; a type without one goes item by item.
SET_PATHS: dict[str, SetPath] = {
    "drink_log": SetPath(services.DRINK_LOGS, _drink_log_row),
    "craving": SetPath(services.CRAVINGS, _by_id_row(services.craving_values), _cravings_created),
    "bac_reading": SetPath(services.BAC_READINGS, _by_id_row(services.bac_values)),
    "medication_checkin": SetPath(medication_checkins.CHECKINS, _checkin_row, created=_checkins_created),
}


def apply_batch(
    member: Member, items: list[Any], *, origin: uuid.UUID | None, now: datetime
) -> list[dict[str, Any]]:
    """Every item validated in Python, then each type's new records inserted in one statement (the
    first also takes the change lock; the member's safety request rides on them); the items the
    inserts did not store (replays, edits, conflicts, a key repeated in the batch, an item its type's
    checks refuse) then go one by one, in order, through the single-record services, each in its own
    savepoint. Each item's result is what it would have been alone, in the batch's order."""
    if len(items) > MAX_BATCH:
        raise TooLarge(
            f"At most {MAX_BATCH} items a batch.", fields={"items": [f"At most {MAX_BATCH} items."]}
        )
    batch = Batch(member, origin, now)
    results: list[dict[str, Any] | None] = [None] * len(items)
    keys = [_key_of(item) for item in items]
    indexes_of: dict[str, list[int]] = {}  # type -> its items' indexes, in the batch's order
    for index, item in enumerate(items):
        problem = _shape_problem(item)
        if problem is None:
            indexes_of.setdefault(item["type"], []).append(index)
        else:
            results[index] = {"index": index, **keys[index], "status": "invalid", "errors": problem}
    loaded: list[tuple[int, str, dict[str, Any]]] = []
    for kind, indexes in indexes_of.items():
        outcomes = _load_all(kind, [items[i]["data"] for i in indexes])
        for index, outcome in zip(indexes, outcomes, strict=True):
            if isinstance(outcome, ValidationError):
                errors = outcome.normalized_messages()
                results[index] = {"index": index, **keys[index], "status": "invalid", "errors": errors}
            else:
                loaded.append((index, kind, outcome))
    loaded.sort(key=lambda entry: entry[0])  # the batch's order: the first of two items with a key wins
    by_type: dict[str, list[NewRow]] = {}
    one_by_one: list[tuple[int, str, dict[str, Any]]] = []
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    for index, kind, data in loaded:
        path = SET_PATHS.get(kind)
        new = _new_row(path, batch, index, data) if path else None
        if new is None or any((kind, key) in seen for key in new.keys):
            one_by_one.append((index, kind, data))
            continue
        seen.update((kind, key) for key in new.keys)
        by_type.setdefault(kind, []).append(new)
    for kind, rows in by_type.items():
        path = SET_PATHS[kind]
        stored = rowset.insert_new(path.spec, member.id, [r.row for r in rows], origin=origin, now=now)
        created = [r for r in rows if r.keys[0] in stored]
        if path.created and created:
            path.created(batch, created)
        for r in rows:
            if r.keys[0] in stored:
                results[r.index] = {
                    "index": r.index,
                    **keys[r.index],
                    **r.answer,
                    "status": "created",
                }
            else:
                one_by_one.append((r.index, kind, r.data))
    for index, kind, data in sorted(one_by_one, key=lambda entry: entry[0]):
        results[index] = _apply_item(member, index, items[index], kind, data, origin=origin, now=now)
    return [r for r in results if r is not None]


def _new_row(path: SetPath, batch: Batch, index: int, data: dict[str, Any]) -> NewRow | None:
    try:
        return path.make(batch, index, data)
    except DomainError:
        return None  # the per-item path answers it (or finds it stored: a replay)


def _shape_problem(item: Any) -> dict[str, list[str]] | None:
    """Why an item is not `{"type": <a known type>, "data": {...}}`, or None."""
    if not isinstance(item, dict) or set(item) - {"type", "data"} or item.get("type") not in HANDLERS:
        return {"type": [f"Must be one of: {', '.join(HANDLERS)}; with `data`, and nothing else."]}
    if not isinstance(item.get("data"), dict):
        return {"data": ["Must be an object."]}
    return None


def _load_all(kind: str, data: list[dict[str, Any]]) -> list[dict[str, Any] | ValidationError]:
    """Each item's data as its type's schema loads it, or the ValidationError it raised. One schema a
    type and batch, and one `load(many=True)` (per-item overhead is a tenth of validating a batch); when
    any item is invalid, marshmallow runs no post_load for any of them, so each is loaded alone."""
    schema = HANDLERS[kind][0]()
    # The body's source was found free of bad text: no item needs its own walk for it.
    schema.refuse_nul = not body_text_is_clean()
    try:
        return list(schema.load(data, many=True))
    except ValidationError:
        pass
    outcomes: list[dict[str, Any] | ValidationError] = []
    for one in data:
        try:
            outcomes.append(schema.load(one))
        except ValidationError as exc:
            outcomes.append(exc)
    return outcomes


def _apply_item(
    member: Member,
    index: int,
    item: Any,
    kind: str,
    data: dict[str, Any],
    *,
    origin: uuid.UUID | None,
    now: datetime,
) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, **_key_of(item)}
    _, handle = HANDLERS[kind]
    try:
        with session.begin_nested():
            key, outcome = handle(member, dict(data), origin, now)
    except Conflict as exc:
        conflict = {**result, "status": "conflict", "errors": exc.fields or {"_record": [exc.message]}}
        if "current" in exc.details:
            conflict["current"] = exc.details["current"]
        return conflict
    except DomainError as exc:
        return {**result, "status": "invalid", "errors": exc.fields or {"_record": [exc.message]}}
    return {**result, **key, "status": outcome}


# --- GET /sync ----------------------------------------------------------------------------------------


def _drink_log_change(member: Member, log: DrinkLog) -> dict[str, Any]:
    if log.deleted_at is not None:
        return {"type": "drink_log", "deleted": True, "data": {"date": log.date.isoformat()}}
    return {
        "type": "drink_log",
        "deleted": False,
        "data": schemas.DrinkLogSchema().dump(services.drink_log_view(log, member)),
    }


SOURCES: tuple[tuple[type, Callable[[Member, Any], dict[str, Any]]], ...] = (
    (DrinkLog, _drink_log_change),
    (
        Craving,
        lambda m, r: {
            "type": "craving",
            "deleted": False,
            "data": schemas.CravingSchema().dump(services.craving_view(r)),
        },
    ),
    (
        BacReading,
        lambda m, r: {
            "type": "bac_reading",
            "deleted": False,
            "data": schemas.BacReadingSchema().dump(services.bac_view(r)),
        },
    ),
    (
        SymptomReport,
        lambda m, r: {
            "type": "symptom_report",
            "deleted": False,
            "data": symptom_schemas.SymptomReportSchema().dump(symptom_services.report_view(r)),
        },
    ),
    (
        PacsReport,
        lambda m, r: {
            "type": "pacs",
            "deleted": False,
            "data": pacs_schemas.PacsSchema().dump(pacs_services.pacs_view(r)),
        },
    ),
    (
        MedicationCheckin,
        lambda m, r: {
            "type": "medication_checkin",
            "deleted": False,
            "data": medication_checkins.dump_checkin(r),
        },
    ),
    (
        MedicationPlan,
        lambda m, r: {
            "type": "medication_plan",
            "deleted": False,
            "data": medication_services.dump_plan(m, r),
        },
    ),
    (Message, message_change),
)


def changes_since(member: Member, cursor: str | None, *, login: uuid.UUID | None) -> dict[str, Any]:
    """Changes after `cursor`, oldest first; the member's own login's changes advance the cursor silently."""
    since = decode_cursor(cursor)
    found: list[tuple[int, Any, Callable[[Member, Any], dict[str, Any]]]] = []
    for model, render in SOURCES:
        rows = session.execute(
            select(model)
            .where(model.member_id == member.id, model.change_seq > since)
            .order_by(model.change_seq)
            .limit(MAX_CHANGES + 1)
        ).scalars()
        found.extend((row.change_seq, row, render) for row in rows)
    found.sort(key=lambda entry: entry[0])
    has_more = len(found) > MAX_CHANGES
    found = found[:MAX_CHANGES]
    changes = [
        render(member, row) for _, row, render in found if row.changed_by is None or row.changed_by != login
    ]
    last = found[-1][0] if found else since
    return {"changes": changes, "cursor": encode_cursor(last), "has_more": has_more}


# --- the OpenAPI document -----------------------------------------------------------------------------

#: What `GET /sync` hands out under `data`, by `type` (the SOURCES above dump these schemas).
CHANGE_SCHEMAS: dict[str, type[Schema]] = {
    "drink_log": schemas.DrinkLogSchema,
    "craving": schemas.CravingSchema,
    "bac_reading": schemas.BacReadingSchema,
    "medication_checkin": medication_schemas.CheckinSchema,
    "medication_plan": medication_schemas.PlanSchema,
    "message": nudge_schemas.MessageChangeSchema,
    "symptom_report": symptom_schemas.SymptomReportSchema,
    "pacs": pacs_schemas.PacsSchema,
}


class DeletedDrinkLogSchema(Schema):
    date = fields.Date(metadata={"description": "The local date whose log was deleted."})


def _camel(type_name: str) -> str:
    return "".join(part.title() for part in type_name.split("_"))


def _typed_union(spec: Any, kind: str, body: dict[str, dict[str, Any]], extra: dict[str, Any]) -> dict:
    """One component per `type` ({type, data, ...extra}) and the oneOf of them, discriminated by `type`."""
    mapping = {}
    for type_name, data in body.items():
        name = f"Sync{_camel(type_name)}{kind}"
        spec.components.schema(
            name,
            {
                "type": "object",
                "description": f"A `{type_name}` {kind.lower()}.",
                "properties": {
                    "type": {"type": "string", "enum": [type_name], "description": "The record type."},
                    **extra,
                    "data": data,
                },
                "required": ["type", *extra, "data"],
                "additionalProperties": False,
            },
        )
        mapping[type_name] = f"#/components/schemas/{name}"
    return {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }


def document(spec: Any, converter: Any) -> None:
    """Type the sync batch's items and the changes' `data` in the OpenAPI document, from HANDLERS and
    CHANGE_SCHEMAS: a record type added there is documented with no other change."""

    def ref(schema: type[Schema]) -> dict[str, Any]:
        return converter.resolve_nested_schema(schema)

    items = _typed_union(
        spec,
        "Item",
        {
            t: {**ref(schema), "description": "The body of the single-record call."}
            for t, (schema, _) in HANDLERS.items()
        },
        {},
    )
    batch = spec.components.schemas["SyncBatch"]["properties"]["items"]
    batch["items"] = items
    data = {
        t: {**ref(schema), "description": "The record, as its own GET answers it."}
        for t, schema in CHANGE_SCHEMAS.items()
    }
    data["drink_log"] = {
        "anyOf": [ref(schemas.DrinkLogSchema), ref(DeletedDrinkLogSchema)],
        "description": "The log, or only its date when it was deleted.",
    }
    deleted = {
        "deleted": {
            "type": "boolean",
            "description": "The record was deleted; `data` then holds only its key (a drink log's date).",
        }
    }
    changes = spec.components.schemas["SyncChanges"]["properties"]["changes"]
    changes["items"] = _typed_union(spec, "Change", data, deleted)
    spec.components.schemas.pop("SyncChange", None)
