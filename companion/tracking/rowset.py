"""New member records inserted as a set: one statement for any number of rows of one type.

A single write (`PUT /drink-logs/{date}`, `POST /cravings`, ...) and a sync batch insert their new rows
the same way: one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING key`, which in the
same statement

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from companion.db import session
from companion.safety import watch as safety_watch
from companion.sync_seq import CHANGE_LOCK_NAMESPACE, holds_change_stream, mark_change_stream_held


@dataclass(frozen=True)
class Column:
    """One column a row supplies: its name, the SQL type of its parameter array, and the SQL that makes
    the stored value from `u.<name>` (default: the value itself)."""

    name: str
    array_type: str
    expression: str | None = None

    def select_sql(self) -> str:
        return self.expression.format(v=f"u.{self.name}") if self.expression else f"u.{self.name}"


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
        arrays = ", ".join(f"CAST(:{c.name} AS {c.array_type}[])" for c in self.columns)
        values = ", ".join(c.select_sql() for c in self.columns)
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
            f"FROM {lock_from}unnest({arrays}) AS u({names}) "
            f"ON CONFLICT {conflict} DO NOTHING RETURNING {key}), "
            f"watch AS ({safety_watch.REQUEST_SQL} WHERE EXISTS (SELECT FROM ins) "
            f"{safety_watch.REQUEST_CONFLICT_SQL}) "
            f"SELECT {key}, (SELECT publish FROM watch) AS publish FROM ins"
        )


def insert_new(
    spec: RowSpec,
    member_id: uuid.UUID,
    rows: Sequence[Mapping[str, Any]],
    *,
    origin: uuid.UUID | None,
    now: datetime,
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
) -> set[tuple[Any, ...]]:
    """Insert the rows that are new (by `spec.conflict`); the keys of those inserted. With any inserted,
    the member is due for a safety scan and its message is queued for after commit unless one is
    already pending (`safety.watch`)."""
    if not rows:
        return set()
    convert = convert or {}
    params: dict[str, Any] = {"member_id": member_id, "origin": origin, "now": now}
    for column in spec.columns:
        to_param = convert.get(column.name)
        values = [row[column.name] for row in rows]
        params[column.name] = [to_param(v) for v in values] if to_param else values
    lock = not holds_change_stream(member_id)
    found = session.execute(spec.statement(lock=lock), params).all()
    if lock:
        mark_change_stream_held(member_id)
    if found:
        safety_watch.requested(member_id, publish=bool(found[0][-1]))
    return {tuple(row[:-1]) for row in found}
