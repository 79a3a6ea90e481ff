"""New member records inserted as a set: one statement for any number of rows of one type.

A single write (`PUT /drink-logs/{date}`, `POST /cravings`, ...) and a sync batch insert their new rows
the same way: one `INSERT ... SELECT FROM jsonb_to_recordset(:rows) ON CONFLICT DO NOTHING RETURNING key`
(the rows as one JSON parameter), which in the same statement

* takes the member's change lock (`sync_seq`) unless this transaction holds it already, before any row
  takes its sync number (the lock's CTE is joined to the rows, so no `nextval` runs before it),
* numbers each row from the change sequence, stamps the login that made it,
* marks the member due for a safety scan (`safety_watch`) if any row was inserted, and says whether
  the scan message must be published (`safety.watch.REQUEST_SQL`).

Rows that come back are the new ones; a key that does not come back met a stored record (a replay, an
edit, a conflict) and goes through the per-record path. Adding a record type is declaring a `RowSpec`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import text

from companion.db import session
from companion.safety import watch as safety_watch
from companion.sync_seq import CHANGE_LOCK_NAMESPACE, holds_change_stream, mark_change_stream_held


@dataclass(frozen=True)
class Column:
    """One column a row supplies: its name and SQL type (a `jsonb` or array column takes the row's
    JSON value as it is)."""

    name: str
    sql_type: str


@dataclass(frozen=True)
class RowSpec:
    """How one type of member record is inserted as a set.

    `columns` are the values each row supplies (besides `member_id`, `change_seq` and `changed_by`,
    which the statement adds); `conflict` is the key whose conflict makes a row "not new" (None: any
    unique key of the table); `key` the columns that come back for each inserted row."""

    table: str
    columns: tuple[Column, ...]
    conflict: tuple[str, ...] | None
    key: tuple[str, ...]
    _sql: dict[tuple[bool, str | None, str | None], Any] = field(
        default_factory=dict, compare=False, repr=False
    )

    def statement(self, *, lock: bool, update: str | None = None, guard: str | None = None) -> Any:
        """The statement (built once per spec, lock variant, update clause and guard). A `guard`
        (`FROM ... WHERE ...`) makes the lock, and so the whole write, happen only if it finds a row."""
        if (lock, update, guard) not in self._sql:
            self._sql[(lock, update, guard)] = text(self._build(lock=lock, update=update, guard=guard))
        return self._sql[(lock, update, guard)]

    def _build(self, *, lock: bool, update: str | None = None, guard: str | None = None) -> str:
        assert lock or guard is None, "a guard is checked where the lock is taken"
        names = ", ".join(c.name for c in self.columns)
        record = ", ".join(f"{c.name} {c.sql_type}" for c in self.columns)
        values = ", ".join(f"u.{c.name}" for c in self.columns)
        conflict = f"({', '.join(self.conflict)})" if self.conflict else ""
        # An upsert returns the whole row as stored, and whether it was inserted: a row version an
        # ON CONFLICT update wrote carries the updating transaction as its xmax (the lock it took on the
        # row), an inserted one has none. PostgreSQL does not document this, but it is the common test;
        # tests/api/test_tracking.py pins 201 against 200, and a sync batch's create-then-edit.
        action = f"DO UPDATE {update}" if update else "DO NOTHING"
        returning = "*, xmax = 0 AS inserted" if update else ", ".join(self.key)
        key = "*" if update else ", ".join(self.key)
        lock_cte = (
            f"lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({CHANGE_LOCK_NAMESPACE}, "
            f"hashtext(CAST(:member_id AS text))) {guard or ''}), "
            if lock
            else ""
        )
        lock_from = "lock, " if lock else ""
        return (
            f"WITH {lock_cte}"
            f"ins AS (INSERT INTO {self.table} (member_id, change_seq, changed_by, {names}) "
            f"SELECT CAST(:member_id AS uuid), nextval('sync_change_seq'), CAST(:origin AS uuid), {values} "
            f"FROM {lock_from}jsonb_to_recordset(CAST(:rows AS jsonb)) AS u({record}) "
            f"ON CONFLICT {conflict} {action} RETURNING {returning}), "
            f"watch AS ({safety_watch.REQUEST_SQL} WHERE EXISTS (SELECT FROM ins) "
            f"{safety_watch.REQUEST_CONFLICT_SQL}) "
            f"SELECT {key}, (SELECT publish FROM watch) AS publish FROM ins"
        )


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not a row value: {type(value).__name__}")


def statement_for(
    spec: RowSpec,
    member_id: uuid.UUID,
    rows: Sequence[Mapping[str, Any]],
    *,
    origin: uuid.UUID | None,
    now: datetime,
    lock: bool,
    update: str | None = None,
    params: Mapping[str, Any] | None = None,
    guard: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The statement and its parameters for `rows` (the change lock taken in it when `lock`, only if
    `guard` finds a row; `params` holds the values of `update` and `guard`)."""
    names = [c.name for c in spec.columns]
    document = orjson.dumps([{n: row[n] for n in names} for row in rows], default=_json_value)
    values = {"member_id": member_id, "origin": origin, "now": now, "rows": document.decode()}
    values.update(params or {})
    return spec.statement(lock=lock, update=update, guard=guard), values


def _execute(
    spec: RowSpec,
    member_id: uuid.UUID,
    rows: Sequence[Mapping[str, Any]],
    *,
    origin: uuid.UUID | None,
    now: datetime,
    update: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> list[Any]:
    lock = not holds_change_stream(member_id)
    statement, values = statement_for(
        spec, member_id, rows, origin=origin, now=now, lock=lock, update=update, params=params
    )
    found = session.connection().execute(statement, values).all()  # Core
    if lock:
        mark_change_stream_held(member_id)
    if found:
        safety_watch.requested(member_id, publish=bool(found[0][-1]))
    return found


def upsert_one(
    spec: RowSpec,
    member_id: uuid.UUID,
    row: Mapping[str, Any],
    *,
    update: str,
    origin: uuid.UUID | None,
    now: datetime,
    params: Mapping[str, Any] | None = None,
) -> Mapping[str, Any] | None:
    """Insert one row, or update the stored one in the same statement when `update` (`SET ... WHERE
    ...`, over the stored row and `EXCLUDED`, with `params`) allows it: the row as stored, with
    `inserted`, and a scan requested; None when the stored row was kept as it was (the caller then
    reads it: a replay, a refusal, a case the update leaves to it). One round trip, like an insert:
    change lock, write and safety request in one statement."""
    found = _execute(spec, member_id, [row], origin=origin, now=now, update=update, params=params)
    return found[0]._mapping if found else None


def insert_new(
    spec: RowSpec,
    member_id: uuid.UUID,
    rows: Sequence[Mapping[str, Any]],
    *,
    origin: uuid.UUID | None,
    now: datetime,
) -> set[tuple[Any, ...]]:
    """Insert the rows that are new (by `spec.conflict`); the keys of those inserted. With any inserted,
    the member is due for a safety scan and its message is queued for after commit unless one is
    already pending (`safety.watch`). The rows travel as one JSON parameter (orjson: a row costs a
    few microseconds; PostgreSQL parses each value by its column's type)."""
    if not rows:
        return set()
    found = _execute(spec, member_id, rows, origin=origin, now=now)
    return {tuple(row[:-1]) for row in found}
