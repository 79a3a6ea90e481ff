"""Where the rows go: in memory (`Lines`, then `copy_lines` on the caller's connection) or one open COPY a
table (`CopyWriters`); the sync sequence's first number and its hand-back (`settle`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import psycopg

from companion.population.rows import Numbers
from companion.population.tables import columns


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
