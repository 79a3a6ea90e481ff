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
    _sql: dict[bool, Any] = field(default_factory=dict, compare=False, repr=False)

    def statement(self, *, lock: bool) -> Any:
        """The statement (built once per spec and lock variant)."""
        if lock not in self._sql:
            self._sql[lock] = text(self._build(lock=lock))
        return self._sql[lock]

    def _build(self, *, lock: bool) -> str:
        names = ", ".join(c.name for c in self.columns)
        record = ", ".join(f"{c.name} {c.sql_type}" for c in self.columns)
        values = ", ".join(f"u.{c.name}" for c in self.columns)
        conflict = f"({', '.join(self.conflict)})" if self.conflict else ""
        lock_cte = (
            f"lock AS MATERIALIZED (SELECT pg_advisory_xact_lock({CHANGE_LOCK_NAMESPACE}, "
            "hashtext(CAST(:member_id AS text)))), "
            if lock
            else ""
        )
        lock_from = "lock, " if lock else ""
        key = ", ".join(self.key)
        return (
            f"WITH {lock_cte}"
            f"ins AS (INSERT INTO {self.table} (member_id, change_seq, changed_by, {names}) "
            f"SELECT CAST(:member_id AS uuid), nextval('sync_change_seq'), CAST(:origin AS uuid), {values} "
            f"FROM {lock_from}jsonb_to_recordset(CAST(:rows AS jsonb)) AS u({record}) "
            f"ON CONFLICT {conflict} DO NOTHING RETURNING {key}), "
            f"watch AS ({safety_watch.REQUEST_SQL} WHERE EXISTS (SELECT FROM ins) "
            f"{safety_watch.REQUEST_CONFLICT_SQL}) "
            f"SELECT {key}, (SELECT publish FROM watch) AS publish FROM ins"
        )


def _json_value(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not a row value: {type(value).__name__}")


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
    names = [c.name for c in spec.columns]
    document = orjson.dumps([{n: row[n] for n in names} for row in rows], default=_json_value)
    params = {"member_id": member_id, "origin": origin, "now": now, "rows": document.decode()}
    lock = not holds_change_stream(member_id)
    found = session.connection().execute(spec.statement(lock=lock), params).all()  # Core: no ORM layer
    if lock:
        mark_change_stream_held(member_id)
    if found:
        safety_watch.requested(member_id, publish=bool(found[0][-1]))
    return {tuple(row[:-1]) for row in found}
