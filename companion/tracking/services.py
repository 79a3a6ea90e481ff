"""Drink logs, cravings and breath readings: recorded exactly once, on the member's local date.

Every write is idempotent: a drink log is keyed by (member, local date); a craving or a reading by
(member, the phone's id), with the database's primary key deciding between concurrent duplicates.
Services flush, never commit; they return what they did ("created", "updated", "unchanged") so the
API and the sync batch answer the same way.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from companion import privacy
from companion.accounts.models import Member, local_today
from companion.config import backfill_days
from companion.db import new_detached, session
from companion.domain import drinking, localtime
from companion.domain.errors import Conflict, InvalidInput, NotFound
from companion.nudges import hooks as nudge_hooks
from companion.safety import watch as safety_watch
from companion.sync_seq import stamp
from companion.tracking import rowset
from companion.tracking.models import BacReading, Craving, DrinkLog
from companion.tracking.schemas import BacReadingSchema, CravingSchema, DrinkLogSchema

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"

#: A phone's clock may run this far ahead of ours before an instant counts as "in the future" (ours).
CLOCK_SKEW = timedelta(minutes=5)


def request_safety_scan(member: Member, *, now: datetime) -> None:
    """A new or changed entry: the safety rules run again for the member once this commits. The
    request is a row first (the sweep finds it if the message is lost), then a message unless a scan
    is already pending (`safety.watch`)."""
    safety_watch.request_check(member.id, now=now)


def parse_log_date(raw: str) -> date:
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput("The request is invalid.", fields={"date": ["Not a date (YYYY-MM-DD)."]}) from exc


@functools.lru_cache(maxsize=256)
def _oldest_loggable(zone: str, now: datetime, days: int) -> date:
    """The first local date a member may still log: the same for every item of a sync batch."""
    return localtime.local_date(now, zone) - timedelta(days=days)


def check_instant(name: str, instant: datetime, *, member: Member, now: datetime) -> None:
    """Instants from the phone: not in the future, not older than the backfill window."""
    if instant > now + CLOCK_SKEW:
        raise InvalidInput("The request body is invalid.", fields={name: ["Cannot be in the future."]})
    oldest = _oldest_loggable(member.timezone, now, backfill_days())
    if localtime.local_date(instant, member.timezone) < oldest:
        raise InvalidInput(
            "The request body is invalid.",
            fields={name: [f"Cannot be more than {backfill_days()} days ago."]},
        )


# --- drink logs -------------------------------------------------------------------------------------


def drink_log_view(log: DrinkLog, member: Member) -> dict[str, Any]:
    return {
        "date": log.date,
        "standard_drinks": drinking.standard_drinks_from_grams(log.grams_ethanol, member.country),
        "grams_ethanol": log.grams_ethanol,
        "drinks": log.drinks,
        "note": log.note,
        "heavy": log.heavy,
        "source": log.source,
        "created_at": log.created_at,
        "updated_at": log.updated_at,
    }


def _drink_items(data: dict[str, Any]) -> list[dict[str, Any]] | None:
    if data.get("drinks") is None:
        return None
    return [
        {
            "kind": d["kind"],
            "volume_ml": d["volume_ml"],
            "abv_percent": str(d["abv_percent"]),
            "count": d["count"],
        }
        for d in data["drinks"]
    ]


def _grams(data: dict[str, Any], country: str) -> Decimal:
    if data.get("standard_drinks") is not None:
        return drinking.grams_from_standard_drinks(data["standard_drinks"], country)
    items = [
        drinking.DrinkItem(drinking.DrinkKind(d["kind"]), d["volume_ml"], d["abv_percent"], d["count"])
        for d in data["drinks"]
    ]
    return drinking.grams_of(items)


def _same_drink_log(log: DrinkLog, data: dict[str, Any], grams: Decimal) -> bool:
    entered = data.get("standard_drinks")
    return (
        log.deleted_at is None
        and log.grams_ethanol == grams
        and log.entered_standard_drinks == (Decimal(entered) if entered is not None else None)
        and log.drinks == _drink_items(data)
        and log.note == data.get("note")
    )


DRINK_LOGS = rowset.RowSpec(
    "drink_logs",
    (
        rowset.Column("date", "date"),
        rowset.Column("grams_ethanol", "numeric"),
        rowset.Column("entered_standard_drinks", "numeric"),
        rowset.Column("drinks", "jsonb"),
        rowset.Column("heavy", "boolean"),
        rowset.Column("note", "text"),
        rowset.Column("source", "text"),
        rowset.Column("created_at", "timestamptz"),
        rowset.Column("updated_at", "timestamptz"),
        rowset.Column("server_updated_at", "timestamptz"),
    ),
    conflict=("member_id", "date"),
    key=("date",),
)


DRINK_LOG_COLUMNS = tuple(DrinkLog.__table__.columns.keys())


@dataclass(frozen=True)
class PreparedDrinkLog:
    """A valid drink log, its row as it would be inserted, before anything is read or written."""

    day: date
    data: dict[str, Any]
    grams: Decimal
    values: dict[str, Any]
    row: dict[str, Any]


def prepare_drink_log(member: Member, day: date, data: dict[str, Any], *, now: datetime) -> PreparedDrinkLog:
    """Check a day's log against the clock and compute what is stored. Raises InvalidInput."""
    today = local_today(member, now)
    drinking.check_loggable(day, today=today, backfill_days=backfill_days())
    grams = _grams(data, member.country)
    values = {
        "grams_ethanol": grams,
        "entered_standard_drinks": data.get("standard_drinks"),
        "drinks": _drink_items(data),
        "heavy": drinking.is_heavy_day(grams, member.sex),
        "note": data.get("note"),
        # Instants in UTC, as a read gives them back: the answer is built from these values.
        "updated_at": localtime.to_utc(data["updated_at"]) if data.get("updated_at") else now,
        "server_updated_at": now,
        "deleted_at": None,
    }
    row = {k: v for k, v in values.items() if k != "deleted_at"}
    row.update(date=day, source=drinking.log_source(day, today=today).value, created_at=now)
    return PreparedDrinkLog(day, data, grams, values, row)


#: A stored day's log replaced in the statement that tried to insert it (`rowset.upsert_one`), when
#: `stored_drink_log` would replace it: a live log, and a body not older than it that either changes it
#: or is a newer edit of the same amounts. Otherwise the row is kept and `stored_drink_log` answers: a
#: replay, a 409, or a deleted day logged again (rare: a new log, with today's provenance).
REPLACE_STORED_LOG = (
    "SET grams_ethanol = EXCLUDED.grams_ethanol, entered_standard_drinks = EXCLUDED.entered_standard_drinks, "
    "drinks = EXCLUDED.drinks, heavy = EXCLUDED.heavy, note = EXCLUDED.note, "
    "updated_at = EXCLUDED.updated_at, server_updated_at = EXCLUDED.server_updated_at, "
    "change_seq = EXCLUDED.change_seq, changed_by = EXCLUDED.changed_by "
    "WHERE drink_logs.deleted_at IS NULL "
    "AND (CAST(:client_updated_at AS timestamptz) IS NULL OR EXCLUDED.updated_at >= drink_logs.updated_at) "
    "AND ((CAST(:client_updated_at AS timestamptz) IS NOT NULL "
    "AND EXCLUDED.updated_at > drink_logs.updated_at) "
    "OR (drink_logs.grams_ethanol, drink_logs.entered_standard_drinks, drink_logs.drinks, drink_logs.note) "
    "IS DISTINCT FROM (EXCLUDED.grams_ethanol, EXCLUDED.entered_standard_drinks, EXCLUDED.drinks, "
    "EXCLUDED.note))"
)


def put_drink_log(
    member: Member, day: date, data: dict[str, Any], *, origin: uuid.UUID | None, now: datetime
) -> tuple[DrinkLog, str]:
    """Create or replace the log of one local day. Safe to retry; a stale edit is a 409."""
    prepared = prepare_drink_log(member, day, data, now=now)
    # One statement inserts the day or replaces its stored log (change lock, write, safety request: the
    # primary key settles a race between two devices), and the answer is the row it returns. Only a
    # replay, a stale edit or a deleted day logged again reads the stored log (`stored_drink_log`).
    written = rowset.upsert_one(
        DRINK_LOGS, member.id, prepared.row, update=REPLACE_STORED_LOG, origin=origin, now=now,
        params={"client_updated_at": data.get("updated_at")},
    )  # fmt: skip
    if written is None:
        return stored_drink_log(member, prepared, origin=origin, now=now)
    return drink_log_written(written)


def drink_log_written(written: Mapping[str, Any]) -> tuple[DrinkLog, str]:
    """The day's log as the upsert returned it (`rowset.upsert_one`), and whether it was new or an edit."""
    # Built as the driver's rows are (`new_detached`): the ORM's constructor, with its attribute events,
    # was a tenth of a lane write of a day (issue 20); nothing adds this instance to a session.
    log = new_detached(DrinkLog, {name: written[name] for name in DRINK_LOG_COLUMNS})
    return log, CREATED if written["inserted"] else UPDATED


def stored_drink_log(
    member: Member, prepared: PreparedDrinkLog, *, origin: uuid.UUID | None, now: datetime
) -> tuple[DrinkLog, str]:
    """The day has a stored log (the insert met it): revive, replace, keep or refuse (409) it."""
    day, data, values = prepared.day, prepared.data, dict(prepared.values)
    log = session.execute(
        select(DrinkLog)
        .where(DrinkLog.member_id == member.id, DrinkLog.date == day)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()
    if log.deleted_at is not None:
        # A deleted day logged again is a new log, with today's provenance.
        values.update(source=prepared.row["source"], created_at=now)
        _apply(log, values, origin)
        request_safety_scan(member, now=now)
        return log, CREATED
    if data.get("updated_at") is not None and data["updated_at"] < log.updated_at:
        raise Conflict("A newer version of this day's log is stored.", current=_dump_drink_log(log, member))
    newer_edit = data.get("updated_at") is not None and data["updated_at"] > log.updated_at
    if _same_drink_log(log, data, prepared.grams) and not newer_edit:
        return log, UNCHANGED
    # A newer edit of the same amounts still moves `updated_at`, or an older edit would later win.
    _apply(log, values, origin)
    request_safety_scan(member, now=now)
    return log, UPDATED


def _apply(record: Any, values: dict[str, Any], origin: uuid.UUID | None) -> None:
    for name, value in values.items():
        setattr(record, name, value)
    stamp(record, origin)
    session.flush()


def _dump_drink_log(log: DrinkLog, member: Member) -> dict[str, Any]:
    return DrinkLogSchema().dump(drink_log_view(log, member))


def get_drink_log(member: Member, day: date) -> DrinkLog:
    log = session.execute(
        select(DrinkLog).where(
            DrinkLog.member_id == member.id, DrinkLog.date == day, DrinkLog.deleted_at.is_(None)
        )
    ).scalar_one_or_none()
    if log is None:
        raise NotFound("No drink log for this date.")
    return log


def delete_drink_log(member: Member, day: date, *, origin: uuid.UUID | None, now: datetime) -> None:
    """A tombstone, so the member's other devices learn of the deletion through sync."""
    log = get_drink_log(member, day)
    _apply(log, {"deleted_at": now, "server_updated_at": now}, origin)
    request_safety_scan(member, now=now)  # a heavy day removed can complete a relapse pattern


# --- cravings and breath readings: records the phone names by id ------------------------------------


CRAVINGS = rowset.RowSpec(
    "cravings",
    (
        rowset.Column("id", "uuid"),
        rowset.Column("recorded_at", "timestamptz"),
        rowset.Column("date", "date"),
        rowset.Column("intensity", "smallint"),
        rowset.Column("triggers", "text[]"),
        rowset.Column("note", "text"),
        rowset.Column("created_at", "timestamptz"),
    ),
    conflict=("member_id", "id"),
    key=("id",),
)

BAC_READINGS = rowset.RowSpec(
    "bac_readings",
    (
        rowset.Column("id", "uuid"),
        rowset.Column("measured_at", "timestamptz"),
        rowset.Column("date", "date"),
        rowset.Column("bac_g_dl", "numeric"),
        rowset.Column("device_model", "text"),
        rowset.Column("device_serial", "text"),
        rowset.Column("created_at", "timestamptz"),
    ),
    conflict=("member_id", "id"),
    key=("id",),
)


@dataclass(frozen=True)
class ById:
    """A record type the phone names by id (cravings, breath readings): how it is inserted, compared
    with a stored one, and shown in a 409."""

    model: type
    spec: rowset.RowSpec
    same: Any  # (stored record, values) -> bool
    dump: Any  # stored record -> JSON-ready dict


def _record_once(
    kind: ById,
    member: Member,
    record_id: uuid.UUID,
    values: dict[str, Any],
    *,
    origin: uuid.UUID | None,
    now: datetime,
):
    """Insert (member, id) once. The same id again: unchanged if the body matches, else a 409.
    A new record is one statement (`rowset`), answered from what was written; only a repeated id reads
    the stored one."""
    row = new_row(record_id, values, now=now)
    if rowset.insert_new(kind.spec, member.id, [row], origin=origin, now=now):
        return kind.model(member_id=member.id, changed_by=origin, **row), CREATED
    return stored_by_id(kind, member, record_id, values)


def new_row(record_id: uuid.UUID, values: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """The row a new record the phone names by id inserts."""
    return {"id": record_id, "created_at": now, **values}


def stored_by_id(kind: ById, member: Member, record_id: uuid.UUID, values: dict[str, Any]):
    """The id is stored (the insert met it): the same body is "unchanged", another one a 409."""
    model = kind.model
    record = session.execute(
        select(model)
        .where(model.member_id == member.id, model.id == record_id)
        .execution_options(populate_existing=True)
    ).scalar_one()
    if not kind.same(record, values):
        raise Conflict("A different record with this id is stored.", current=kind.dump(record))
    return record, UNCHANGED


def craving_view(craving: Craving) -> dict[str, Any]:
    return {
        "id": craving.id,
        "recorded_at": craving.recorded_at,
        "date": craving.date,
        "intensity": craving.intensity,
        "triggers": list(craving.triggers),
        "note": craving.note,
        "created_at": craving.created_at,
    }


def craving_values(member: Member, data: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """What a craving stores, checked against the clock. Raises InvalidInput."""
    check_instant("recorded_at", data["recorded_at"], member=member, now=now)
    return {
        "recorded_at": localtime.to_utc(data["recorded_at"]),  # as a read gives it back
        "date": localtime.local_date(data["recorded_at"], member.timezone),
        "intensity": data["intensity"],
        "triggers": list(data.get("triggers") or []),
        "note": data.get("note"),
    }


def _same_craving(stored: Craving, new: dict[str, Any]) -> bool:
    return (stored.recorded_at, stored.intensity, list(stored.triggers), stored.note) == (
        new["recorded_at"],
        new["intensity"],
        new["triggers"],
        new["note"],
    )


def _dump_craving(stored: Craving) -> dict[str, Any]:
    return CravingSchema().dump(craving_view(stored))


CRAVING = ById(Craving, CRAVINGS, _same_craving, _dump_craving)


def record_craving(
    member: Member, data: dict[str, Any], *, origin: uuid.UUID | None, now: datetime
) -> tuple[Craving, str]:
    values = craving_values(member, data, now=now)
    craving, outcome = _record_once(CRAVING, member, data["id"], values, origin=origin, now=now)
    if outcome == CREATED:
        nudge_hooks.craving_recorded(member, craving, now=now)  # support after a high rating
    return craving, outcome


def bac_view(reading: BacReading) -> dict[str, Any]:
    device = None
    if reading.device_model is not None or reading.device_serial is not None:
        device = {"model": reading.device_model, "serial": reading.device_serial}
    return {
        "id": reading.id,
        "measured_at": reading.measured_at,
        "date": reading.date,
        "bac_g_dl": reading.bac_g_dl,
        "device": device,
        "created_at": reading.created_at,
    }


def bac_values(member: Member, data: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    """What a breath reading stores, checked against the clock. Raises InvalidInput."""
    check_instant("measured_at", data["measured_at"], member=member, now=now)
    device = data.get("device") or {}
    return {
        "measured_at": localtime.to_utc(data["measured_at"]),  # as a read gives it back
        "date": localtime.local_date(data["measured_at"], member.timezone),
        "bac_g_dl": data["bac_g_dl"],
        "device_model": device.get("model"),
        "device_serial": device.get("serial"),
    }


def _same_bac(stored: BacReading, new: dict[str, Any]) -> bool:
    return (stored.measured_at, stored.bac_g_dl, stored.device_model, stored.device_serial) == (
        new["measured_at"],
        new["bac_g_dl"],
        new["device_model"],
        new["device_serial"],
    )


def _dump_bac(stored: BacReading) -> dict[str, Any]:
    return BacReadingSchema().dump(bac_view(stored))


BAC_READING = ById(BacReading, BAC_READINGS, _same_bac, _dump_bac)


def record_bac_reading(
    member: Member, data: dict[str, Any], *, origin: uuid.UUID | None, now: datetime
) -> tuple[BacReading, str]:
    values = bac_values(member, data, now=now)
    return _record_once(BAC_READING, member, data["id"], values, origin=origin, now=now)


# --- GET /me/export ---------------------------------------------------------------------------------


def _export(member_id: uuid.UUID) -> dict[str, Any]:
    member = session.get(Member, member_id)
    assert member is not None
    logs = session.execute(
        select(DrinkLog)
        .where(DrinkLog.member_id == member_id, DrinkLog.deleted_at.is_(None))
        .order_by(DrinkLog.date)
    ).scalars()
    cravings = session.execute(
        select(Craving).where(Craving.member_id == member_id).order_by(Craving.recorded_at)
    )
    readings = session.execute(
        select(BacReading).where(BacReading.member_id == member_id).order_by(BacReading.measured_at)
    )
    return {
        "drink_logs": DrinkLogSchema(many=True).dump([drink_log_view(log, member) for log in logs]),
        "cravings": CravingSchema(many=True).dump([craving_view(c) for c in cravings.scalars()]),
        "bac_readings": BacReadingSchema(many=True).dump([bac_view(r) for r in readings.scalars()]),
    }


privacy.register_exporter("tracking", _export)
