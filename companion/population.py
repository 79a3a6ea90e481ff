"""The one writer of synthetic populations: which columns each table's synthetic rows fill, how a value
is written in COPY text, and the COPY itself.

`companion simulate`, the benchmarks in bench/ and the export tests draw their members and histories
each in their own way (each run's figures depend on its own random stream), and write every row
through `Rows`: a method a table, with the table's columns as keyword arguments. A schema change is
made here, once: a new NOT NULL column gets its value (or its default) in one method, and `TABLES`
is the column list every COPY names.

Where the rows go is the caller's choice:

- `CopyWriters(url, tables)`: one connection and one open COPY a table, for large populations (the
  tables are parsed and indexed in parallel while Python generates); nothing is visible until `close`.
- `Lines()`: every row kept in memory, in order; `copy_lines(conn, lines.by_table())` then COPYs them
  on a connection the caller holds (a test's transaction, a benchmark's one connection).

The sync change sequence (`change_seq`) is numbered by `Numbers`, from the real sequence's next value
or from 1, and handed back with `settle` (the sequence is moved past the numbers used).

Values are written as PostgreSQL reads them in COPY text: None is NULL, booleans `t`/`f`, dates and
instants ISO 8601, sequences as arrays. A `str` is taken as already written (a caller that formats a
timestamp once for many rows passes the text); it must hold no tab, newline or backslash.
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from types import TracebackType
from typing import Any

import psycopg

from companion.domain import drinking, plans

NULL = "\\N"

#: The columns synthetic rows fill, table by table, in COPY order; every other column takes its default.
#: `change_seq` is last wherever a table has it (tests strip it to compare members' rows).
TABLES: dict[str, tuple[str, ...]] = {
    "users": ("id", "email", "password_hash", "display_name", "role", "created_at"),
    "members": (
        "id",
        "timezone",
        "country",
        "sex",
        "goal_type",
        "weekly_limit",
        "insurer_id",
        "outcome_sharing",
        "consents_updated_at",
        "log_time",
        "muted_kinds",
        "enrolled_at",
        "updated_at",
    ),
    "coach_assignments": ("id", "member_id", "coach_id", "started_at"),
    "medication_plans": (
        "id",
        "member_id",
        "medication",
        "dose_mg",
        "times",
        "start_date",
        "end_date",
        "steps",
        "created_by",
        "created_at",
        "updated_at",
        "change_seq",
    ),
    "drink_logs": (
        "member_id",
        "date",
        "grams_ethanol",
        "entered_standard_drinks",
        "drinks",
        "heavy",
        "source",
        "created_at",
        "updated_at",
        "server_updated_at",
        "deleted_at",
        "change_seq",
    ),
    "cravings": (
        "member_id",
        "id",
        "recorded_at",
        "date",
        "intensity",
        "triggers",
        "created_at",
        "change_seq",
    ),
    "medication_checkins": (
        "member_id",
        "id",
        "plan_id",
        "scheduled_for",
        "date",
        "status",
        "taken_at",
        "created_at",
        "change_seq",
    ),
    "side_effect_reports": ("member_id", "checkin_id", "medication", "date", "code", "severity"),
    "bac_readings": (
        "member_id",
        "id",
        "measured_at",
        "date",
        "bac_g_dl",
        "device_model",
        "created_at",
        "change_seq",
    ),
    "pacs_reports": ("member_id", "id", "week_of", "items", "total", "created_at", "change_seq"),
    "flags": (
        "id",
        "member_id",
        "rule",
        "rule_version",
        "tier",
        "status",
        "evidence",
        "summary",
        "symptoms",
        "medications",
        "first_seen",
        "last_seen",
        "created_at",
        "updated_at",
        "acknowledged_at",
        "resolved_at",
        "resolution_note",
        "assigned_coach_id",
    ),
    "messages": ("id", "member_id", "sender_id", "body", "created_at", "change_seq"),
    "devices": ("id", "member_id", "platform", "push_token", "active", "created_at", "last_seen_at"),
}
#: People first (day rows point at them), then what happens day by day.
PEOPLE_TABLES = ("users", "members", "coach_assignments", "medication_plans")
DAY_TABLES = (
    "drink_logs",
    "cravings",
    "medication_checkins",
    "side_effect_reports",
    "bac_readings",
    "pacs_reports",
)

#: An id, a day or an instant: the value, or its COPY text already written.
Id = uuid.UUID | str
Day = date | str
Instant = datetime | str
Amount = Decimal | int | str
Write = Callable[[str, str], None]


def columns(table: str) -> str:
    """The column list a COPY of `table` names."""
    return ", ".join(TABLES[table])


def _array(values: Iterable[object]) -> str:
    return "{" + ",".join([text(v) for v in values]) + "}"


def _bool(value: bool) -> str:
    return "t" if value else "f"


#: How each type of value is written, looked up by exact type (the load's hot path).
_FORMATS: dict[type, Callable[[Any], str]] = {
    str: str,
    uuid.UUID: str,
    int: str,
    Decimal: str,
    float: str,
    bool: _bool,
    date: date.isoformat,
    datetime: datetime.isoformat,
    time: time.isoformat,
    list: _array,
    tuple: _array,
}


def text(value: object) -> str:
    """`value` as COPY text."""
    if value is None:
        return NULL
    write = _FORMATS.get(type(value))
    if write is not None:
        return write(value)
    if isinstance(value, bool):
        return _bool(value)
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, list | tuple | frozenset | set):
        return _array(value)
    return str(value)


def _line(*values: object) -> str:
    return "\t".join([text(v) for v in values]) + "\n"


def hhmm(times: Iterable[time]) -> list[str]:
    return [t.strftime("%H:%M") for t in times]


def steps_json(steps: Iterable[plans.PlanStep]) -> str:
    """A plan's steps as the `steps` column holds them (as `medications.services` stores them: `taper`
    only on a step the coach marked)."""
    stored: list[dict[str, object]] = []
    for step in steps:
        one: dict[str, object] = {
            "from_date": step.from_date.isoformat(),
            "dose_mg": str(step.dose_mg),
            "times": hhmm(step.times),
        }
        if step.taper:
            one["taper"] = True
        stored.append(one)
    return json.dumps(stored)


def drinks_json(items: Sequence[drinking.DrinkItem]) -> str:
    """Drinks as entered, as the `drinks` column holds them."""
    return json.dumps(
        [
            {
                "kind": i.kind.value,
                "volume_ml": i.volume_ml,
                "abv_percent": str(i.abv_percent),
                "count": i.count,
            }
            for i in items
        ]
    )


def random_id(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from a seeded `random.Random` (the same seed, the same ids)."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class Numbers:
    """The sync change sequence: numbers from `start` on, handed back to the real sequence by `settle`."""

    def __init__(self, start: int = 1) -> None:
        self.last = start - 1

    def __call__(self) -> int:
        self.last += 1
        return self.last


class Rows:
    """Rows of a synthetic population, each written as one COPY text line to `write(table, line)`."""

    def __init__(self, write: Write, seq: Callable[[], int]) -> None:
        self.write = write
        self.seq = seq

    def user(
        self,
        id: Id,
        *,
        email: str,
        role: str,
        created_at: Instant,
        password_hash: str | None = None,
        display_name: str | None = None,
    ) -> None:
        self.write("users", _line(id, email, password_hash, display_name, role, created_at))

    def member(
        self,
        id: Id,
        *,
        timezone: str,
        country: str,
        sex: str,
        goal_type: str,
        enrolled_at: Instant,
        updated_at: Instant,
        weekly_limit: Amount | None = None,
        insurer_id: Id | None = None,
        outcome_sharing: bool = False,
        consents_updated_at: Instant | None = None,
        log_time: time | str = "20:00",
        muted_kinds: Sequence[str] = (),
    ) -> None:
        self.write(
            "members",
            _line(
                id,
                timezone,
                country,
                sex,
                goal_type,
                weekly_limit,
                insurer_id,
                outcome_sharing,
                consents_updated_at,
                log_time,
                muted_kinds,
                enrolled_at,
                updated_at,
            ),
        )

    def coach_assignment(self, id: Id, *, member_id: Id, coach_id: Id, started_at: Instant) -> None:
        self.write("coach_assignments", _line(id, member_id, coach_id, started_at))

    def plan(
        self,
        id: Id,
        *,
        member_id: Id,
        medication: str,
        dose_mg: Amount,
        times: Sequence[time],
        start_date: Day,
        created_at: Instant,
        updated_at: Instant,
        end_date: Day | None = None,
        steps: Sequence[plans.PlanStep] = (),
        created_by: Id | None = None,
    ) -> None:
        self.write(
            "medication_plans",
            _line(
                id,
                member_id,
                medication,
                dose_mg,
                hhmm(times),
                start_date,
                end_date,
                steps_json(steps),
                created_by,
                created_at,
                updated_at,
                self.seq(),
            ),
        )

    def drink_log(
        self,
        member_id: Id,
        *,
        date: Day,
        grams_ethanol: Amount,
        heavy: bool,
        source: str,
        created_at: Instant,
        entered_standard_drinks: Amount | None = None,
        drinks: Sequence[drinking.DrinkItem] | None = None,
        deleted_at: Instant | None = None,
    ) -> None:
        """A day's log, entered at `created_at` (and not changed since)."""
        self.write(
            "drink_logs",
            _line(
                member_id,
                date,
                grams_ethanol,
                entered_standard_drinks,
                None if drinks is None else drinks_json(drinks),
                heavy,
                source,
                created_at,
                created_at,
                created_at,
                deleted_at,
                self.seq(),
            ),
        )

    def craving(
        self,
        member_id: Id,
        *,
        id: Id,
        recorded_at: Instant,
        date: Day,
        intensity: int,
        created_at: Instant,
        triggers: Sequence[str] = (),
    ) -> None:
        self.write(
            "cravings", _line(member_id, id, recorded_at, date, intensity, triggers, created_at, self.seq())
        )

    def checkin(
        self,
        member_id: Id,
        *,
        id: Id,
        plan_id: Id,
        scheduled_for: Instant,
        date: Day,
        status: str,
        created_at: Instant,
        taken_at: Instant | None = None,
    ) -> None:
        self.write(
            "medication_checkins",
            _line(member_id, id, plan_id, scheduled_for, date, status, taken_at, created_at, self.seq()),
        )

    def side_effect(
        self, member_id: Id, *, checkin_id: Id, medication: str, date: Day, code: str, severity: str
    ) -> None:
        self.write("side_effect_reports", _line(member_id, checkin_id, medication, date, code, severity))

    def bac(
        self,
        member_id: Id,
        *,
        id: Id,
        measured_at: Instant,
        date: Day,
        bac_g_dl: Amount,
        created_at: Instant,
        device_model: str | None = None,
    ) -> None:
        self.write(
            "bac_readings",
            _line(member_id, id, measured_at, date, bac_g_dl, device_model, created_at, self.seq()),
        )

    def pacs(
        self, member_id: Id, *, id: Id, week_of: Day, items: list[int], total: int, created_at: Instant
    ) -> None:
        self.write("pacs_reports", _line(member_id, id, week_of, items, total, created_at, self.seq()))

    def flag(
        self,
        id: Id,
        *,
        member_id: Id,
        rule: str,
        rule_version: int,
        tier: int,
        status: str,
        evidence: Sequence[str],
        summary: str,
        symptoms: Sequence[str],
        medications: Sequence[str],
        first_seen: Day,
        last_seen: Day,
        created_at: Instant,
        updated_at: Instant,
        acknowledged_at: Instant | None = None,
        resolved_at: Instant | None = None,
        resolution_note: str | None = None,
        assigned_coach_id: Id | None = None,
    ) -> None:
        self.write(
            "flags",
            _line(
                id,
                member_id,
                rule,
                rule_version,
                tier,
                status,
                evidence,
                summary,
                symptoms,
                medications,
                first_seen,
                last_seen,
                created_at,
                updated_at,
                acknowledged_at,
                resolved_at,
                resolution_note,
                assigned_coach_id,
            ),
        )

    def message(self, id: Id, *, member_id: Id, sender_id: Id | None, body: str, created_at: Instant) -> None:
        self.write("messages", _line(id, member_id, sender_id, body, created_at, self.seq()))

    def device(
        self,
        id: Id,
        *,
        member_id: Id,
        platform: str,
        push_token: str,
        created_at: Instant,
        active: bool = True,
    ) -> None:
        """A phone registered for push, last seen when it registered."""
        self.write("devices", _line(id, member_id, platform, push_token, active, created_at, created_at))


# --- where the rows go ------------------------------------------------------------------------------------


class Lines:
    """Every row in memory, in the order written: `Lines()` is a `write`."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def __call__(self, table: str, line: str) -> None:
        self.rows.append((table, line))

    def by_table(self) -> dict[str, list[str]]:
        tables: dict[str, list[str]] = {}
        for table, line in self.rows:
            tables.setdefault(table, []).append(line)
        return tables


def copy_lines(conn: psycopg.Connection[Any], lines: dict[str, list[str]], *, block: int = 10_000) -> None:
    """COPY `lines` (table -> lines) on `conn`, in its transaction, tables in the order given."""
    for table, rows in lines.items():
        with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns(table)}) FROM STDIN") as copy:
            for start in range(0, len(rows), block):
                copy.write("".join(rows[start : start + block]))


def skip_fk_triggers(conn: psycopg.Connection[Any]) -> None:
    """Foreign keys are right by construction and their per-row triggers would dominate a large load, so a
    superuser skips them for this session; anyone else keeps them (slower, same rows). CHECK, NOT NULL and
    unique constraints apply either way."""
    autocommit = conn.autocommit
    conn.autocommit = True
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("SET session_replication_role = replica")
    conn.autocommit = autocommit


class CopyWriters:
    """One connection and one open COPY per table, so PostgreSQL parses and indexes the tables in parallel
    while Python generates; text is buffered and sent in blocks of `BLOCK` rows. Nothing is visible until
    `close` commits every table. A `write`, and a context manager that closes."""

    BLOCK = 8192

    def __init__(self, url: str, tables: Sequence[str]) -> None:
        self.stack = contextlib.ExitStack()
        self.copies: dict[str, psycopg.Copy] = {}
        self.buffers: dict[str, list[str]] = {t: [] for t in tables}
        self.rows: dict[str, int] = dict.fromkeys(tables, 0)
        try:
            for table in tables:
                conn = self.stack.enter_context(psycopg.connect(url))
                skip_fk_triggers(conn)
                conn.execute("SET synchronous_commit = off")
                cur = self.stack.enter_context(conn.cursor())
                self.copies[table] = self.stack.enter_context(
                    cur.copy(f"COPY {table} ({columns(table)}) FROM STDIN")
                )
        except BaseException:
            self.stack.close()
            raise

    def __call__(self, table: str, line: str) -> None:
        buf = self.buffers[table]
        buf.append(line)
        self.rows[table] += 1
        if len(buf) >= self.BLOCK:
            self.copies[table].write("".join(buf))
            buf.clear()

    def close(self) -> None:
        for table, buf in self.buffers.items():
            if buf:
                self.copies[table].write("".join(buf))
                buf.clear()
        self.stack.close()  # ends every COPY and commits each connection

    def __enter__(self) -> CopyWriters:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.stack.__exit__(kind, error, tb)  # the COPYs fail, the connections roll back


def first_number(conn: psycopg.Connection[Any]) -> int:
    """The real sync sequence's next value: where `Numbers` starts so the rows interleave with live ones."""
    row = conn.execute("SELECT nextval('sync_change_seq')").fetchone()
    assert row is not None
    return int(row[0])


def hand_back(conn: psycopg.Connection[Any], seq: Numbers) -> None:
    """Move the real sync sequence past the numbers `seq` handed out (never back)."""
    conn.execute(
        "SELECT setval('sync_change_seq', greatest(%s, (SELECT last_value FROM sync_change_seq)))",
        (seq.last,),
    )


def settle(url: str, seq: Numbers, tables: Iterable[str] | None, *, vacuum: bool = False) -> None:
    """`hand_back` the numbers `seq` handed out, and analyze (or vacuum and analyze) the tables written (None:
    every table in the database), so the planner sees the population."""
    with psycopg.connect(url, autocommit=True) as conn:
        hand_back(conn, seq)
        conn.execute(("VACUUM (ANALYZE) " if vacuum else "ANALYZE ") + ", ".join(tables or ()))
