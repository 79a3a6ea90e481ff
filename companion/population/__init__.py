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

from companion.population.copy import (
    CopyWriters,
    Lines,
    copy_lines,
    first_number,
    hand_back,
    settle,
    skip_fk_triggers,
)
from companion.population.rows import Numbers, Rows
from companion.population.tables import (
    DAY_TABLES,
    NULL,
    PEOPLE_TABLES,
    TABLES,
    columns,
    drinks_json,
    hhmm,
    random_id,
    steps_json,
    text,
)

__all__ = [
    "DAY_TABLES",
    "NULL",
    "PEOPLE_TABLES",
    "TABLES",
    "CopyWriters",
    "Lines",
    "Numbers",
    "Rows",
    "columns",
    "copy_lines",
    "drinks_json",
    "first_number",
    "hand_back",
    "hhmm",
    "random_id",
    "settle",
    "skip_fk_triggers",
    "steps_json",
    "text",
]
