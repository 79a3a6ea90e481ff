"""Offline sync (API.md `POST /sync`, `GET /sync`).

POST: a batch of up to 500 records written on the phone while offline. Each item stands alone: it is
validated and stored in its own savepoint by the same services as the single-record endpoints, so a
bad or conflicting item never spoils the others, and a replayed batch changes nothing.

GET: what changed for the member since a cursor, made by another login (another phone, or staff).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import select

from companion.accounts.models import Member
from companion.db import session
from companion.domain.errors import Conflict, DomainError, TooLarge
from companion.medications import schemas as medication_schemas
from companion.medications import services as medication_services
from companion.medications.models import MedicationCheckin, MedicationPlan
from companion.nudges.models import Message
from companion.nudges.services import message_change
from companion.pacs import schemas as pacs_schemas
from companion.pacs import services as pacs_services
from companion.pacs.models import PacsReport
from companion.symptoms import schemas as symptom_schemas
from companion.symptoms import services as symptom_services
from companion.symptoms.models import SymptomReport
from companion.sync_seq import decode_cursor, encode_cursor
from companion.tracking import schemas, services
from companion.tracking.models import BacReading, Craving, DrinkLog

#: API.md: at most 500 items a batch (more is a 413).
MAX_BATCH = 500
#: At most this many changes per GET /sync answer; `has_more` says to ask again (ours).
MAX_CHANGES = 500


# --- POST /sync ---------------------------------------------------------------------------------------


def _put_drink_log(member: Member, data: dict[str, Any], origin: uuid.UUID | None, now: datetime):  # type: ignore[no-untyped-def]
    day = data.pop("date")
    log, outcome = services.put_drink_log(member, day, data, origin=origin, now=now)
    return {"date": log.date.isoformat()}, outcome


def _by_id(record_fn: Callable[..., Any]) -> Callable[..., Any]:
    def handle(member: Member, data: dict[str, Any], origin: uuid.UUID | None, now: datetime):  # type: ignore[no-untyped-def]
        record, outcome = record_fn(member, data, origin=origin, now=now)
        return {"id": str(record.id)}, outcome

    return handle


#: type -> (the same input schema as the single-record endpoint, the same service).
HANDLERS: dict[str, tuple[type[Schema], Callable[..., Any]]] = {
    "drink_log": (schemas.SyncDrinkLogInputSchema, _put_drink_log),
    "craving": (schemas.CravingInputSchema, _by_id(services.record_craving)),
    "medication_checkin": (medication_schemas.CheckinInputSchema, _by_id(medication_services.record_checkin)),
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
            if isinstance(data.get(key), str) and len(data[key]) <= 64:
                return {key: data[key]}
    return {}


def apply_batch(
    member: Member, items: list[Any], *, origin: uuid.UUID | None, now: datetime
) -> list[dict[str, Any]]:
    if len(items) > MAX_BATCH:
        raise TooLarge(
            f"At most {MAX_BATCH} items a batch.", fields={"items": [f"At most {MAX_BATCH} items."]}
        )
    return [_apply_item(member, index, item, origin=origin, now=now) for index, item in enumerate(items)]


def _apply_item(
    member: Member, index: int, item: Any, *, origin: uuid.UUID | None, now: datetime
) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, **_key_of(item)}
    if not isinstance(item, dict) or set(item) - {"type", "data"} or item.get("type") not in HANDLERS:
        return {
            **result,
            "status": "invalid",
            "errors": {"type": [f"Must be one of: {', '.join(HANDLERS)}; with `data`, and nothing else."]},
        }
    if not isinstance(item.get("data"), dict):
        return {**result, "status": "invalid", "errors": {"data": ["Must be an object."]}}
    schema_class, handle = HANDLERS[item["type"]]
    try:
        data = schema_class().load(item["data"])
    except ValidationError as exc:
        return {**result, "status": "invalid", "errors": exc.normalized_messages()}
    try:
        with session.begin_nested():
            key, outcome = handle(member, data, origin, now)
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
            "data": medication_services.dump_checkin(r),
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
