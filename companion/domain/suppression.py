"""Small-cell suppression for insurer reports (CMS cell-size policy, DOMAIN.md "Privacy").

A report is a set of tables. Each table is a total row and the rows of one breakdown (its
*categories*: goal types, medications, program months). Each row publishes member counts in named
*columns* (the row's members, the members behind each measure, the members meeting a share measure)
and measures computed from them. Columns nest: a column has a parent whose members it is a subset
of (members with a logged day are a subset of the row's members; members with no heavy drinking day
a subset of those with a logged day).

What is promised, and what `tests/domain/test_suppression.py` checks on random tables:

1. **Primary.** No published member count is 1..10 (0 may be shown). A row whose member count is
   1..10 is hidden whole.
2. **Differences within a row.** No published column differs from its published parent by 1..10:
   "48 of 50 had a heavy day" would tell that 2 did not. A hidden column hides its descendants.
3. **Complementary, across rows.** In a table whose total publishes a column, the categories that
   hide that column are never exactly one, and together never count 1..10 members: subtracting the
   published categories from the total yields only the sum of two or more hidden cells, and that sum
   is itself never a small cell. To get there the next-smallest published category (by that column's
   count, among categories with any members) is hidden too, again and again, as CMS describes.
4. Measures (percentages, means, their day and dose denominators) are published only with their
   column, so no percentage reveals a suppressed count.

The decision is deterministic: ties between equally small categories break by category key.
Suppression decides *what* is hidden; callers null the values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Cells counting this many members or fewer, but more than 0, are never shown (CMS).
MAX_SMALL_CELL = 10


@dataclass(frozen=True, slots=True)
class Column:
    """A published member count. `parent` is the column whose members this one's are a subset of;
    exactly one column (the row's member count) has none and comes first."""

    name: str
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class TableDecision:
    """Which columns each row hides: `total` for the total row, `categories` by category key."""

    total: frozenset[str]
    categories: Mapping[str, frozenset[str]]


def is_small(count: int) -> bool:
    """A count CMS forbids showing: 1..10 members. Zero may be shown."""
    if count < 0:
        raise ValueError(f"negative member count {count}")
    return 0 < count <= MAX_SMALL_CELL


def _check_columns(columns: Sequence[Column]) -> None:
    seen: set[str] = set()
    for index, column in enumerate(columns):
        if (column.parent is None) != (index == 0):
            raise ValueError("the first column, and only it, has no parent")
        if column.parent is not None and column.parent not in seen:
            raise ValueError(f"column {column.name} comes before its parent {column.parent}")
        if column.name in seen:
            raise ValueError(f"column {column.name} twice")
        seen.add(column.name)


def _row_hides(column: Column, counts: Mapping[str, int], hidden: set[str]) -> bool:
    """Rules 1 and 2 for one column of one row, given what the row already hides."""
    if column.name not in counts:
        return False  # not published in this row at all (a measure that does not apply)
    count = counts[column.name]
    if is_small(count):
        return True
    if column.parent is None:
        return False
    if column.parent in hidden:
        return True
    return is_small(counts[column.parent] - count)


def _hide_descendants(columns: Sequence[Column], hidden: set[str]) -> None:
    for column in columns:  # parents come first, so one pass reaches every descendant
        if column.parent is not None and column.parent in hidden:
            hidden.add(column.name)


def suppress_row(
    columns: Sequence[Column], counts: Mapping[str, int], forced: frozenset[str] = frozenset()
) -> frozenset[str]:
    """The columns a row hides on its own (rules 1 and 2): what a report without breakdowns needs.
    `forced` columns are hidden whatever their counts (differencing with earlier releases: see
    `differencing_hides`), and the rules then treat them as any hidden column."""
    _check_columns(columns)
    hidden: set[str] = set()
    for column in columns:
        if column.name in forced or _row_hides(column, counts, hidden):
            hidden.add(column.name)
    return frozenset(hidden)


def suppress_table(
    columns: Sequence[Column],
    total: Mapping[str, int],
    categories: Mapping[str, Mapping[str, int]],
    *,
    forced_total: frozenset[str] = frozenset(),
    forced: Mapping[str, frozenset[str]] | None = None,
) -> TableDecision:
    """Rules 1-3 for a total row and its categories. Counts are by column name; a column absent from
    a row is not published there. Categories need not partition the total (program months overlap
    in members): rule 3 is applied to every table, which is only ever more cautious. `forced_total`
    and `forced` (by category) are hidden whatever their counts, as in `suppress_row`."""
    _check_columns(columns)
    forced = forced or {}
    total_hidden: set[str] = set()
    hidden: dict[str, set[str]] = {key: set() for key in categories}
    root = columns[0].name
    for column in columns:
        if column.name in forced_total or _row_hides(column, total, total_hidden):
            total_hidden.add(column.name)
        for key, counts in categories.items():
            if column.name in forced.get(key, frozenset()) or _row_hides(column, counts, hidden[key]):
                hidden[key].add(column.name)
        if column.name in total and column.name not in total_hidden:
            _complement(column.name, root, categories, hidden)
    for key in categories:
        _hide_descendants(columns, hidden[key])
    return TableDecision(
        total=frozenset(total_hidden), categories={key: frozenset(cols) for key, cols in hidden.items()}
    )


def _complement(
    name: str,
    root: str,
    categories: Mapping[str, Mapping[str, int]],
    hidden: dict[str, set[str]],
) -> None:
    """Rule 3 for column `name`, which the total publishes: hide the next-smallest category until the
    hidden ones are safe."""

    def unsafe() -> bool:
        cells = [key for key, counts in categories.items() if name in counts and name in hidden[key]]
        return bool(cells) and (len(cells) < 2 or is_small(sum(categories[key][name] for key in cells)))

    while unsafe():
        candidates = sorted(
            (counts[name], key)
            for key, counts in categories.items()
            if name in counts and name not in hidden[key] and counts[root] > 0
        )
        if not candidates:
            # When the categories partition the total this cannot happen: a lone hidden category would
            # hold every member of the column, and rules 1 and 2 would have hidden the total's too.
            # Overlapping categories (program months) are not a sum of anything: nothing to derive.
            return
        hidden[candidates[0][1]].add(name)


def differencing_hides(
    published: Mapping[tuple[str, str], Mapping[str, int]],
    earlier: Sequence[Mapping[tuple[str, str], Mapping[str, int]]],
) -> dict[tuple[str, str], frozenset[str]]:
    """Rule 5, across releases (issue 21): the cells of a new release (by cell key, then column) whose
    published count differs by 1..10 from the same cell's count in an earlier release of the same
    plan over an overlapping period. Subtracting the two would reveal a small cell (the members of the
    month one period has and the other lacks, or the members who withdrew consent in between): they
    are hidden in the new release, and rules 1-3 run again around them."""
    found: dict[tuple[str, str], set[str]] = {}
    for release in earlier:
        for key, counts in published.items():
            before = release.get(key)
            if not before:
                continue
            for name, count in counts.items():
                if name in before and is_small(abs(count - before[name])):
                    found.setdefault(key, set()).add(name)
    return {key: frozenset(names) for key, names in found.items()}
