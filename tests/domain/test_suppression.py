"""Small-cell suppression: worked tables, then the promises checked on random tables with hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.domain.outcomes import COLUMNS
from companion.domain.suppression import Column, is_small, suppress_row, suppress_table

SIZE = (Column("members"),)
NESTED = (Column("members"), Column("logged", "members"), Column("nhdd", "logged"))


def _table(categories: dict[str, int]) -> dict[str, dict[str, int]]:
    return {key: {"members": n} for key, n in categories.items()}


def _hidden_keys(decision) -> set[str]:
    return {key for key, cols in decision.categories.items() if "members" in cols}


@pytest.mark.parametrize(
    ("categories", "hidden"),
    [
        ({"a": 50, "b": 50}, set()),  # nothing small
        ({"a": 0, "b": 100}, set()),  # 0 may be shown
        ({"a": 5, "b": 45, "c": 50}, {"a", "b"}),  # the next-smallest hides a lone small cell
        ({"a": 11, "b": 1, "c": 88}, {"a", "b"}),
        ({"a": 3, "b": 4, "c": 93}, {"a", "b", "c"}),  # 3 + 4 = 7 would be derivable: hide more
        ({"a": 0, "b": 5, "c": 20, "d": 30}, {"b", "c"}),  # an empty category is no complement
        ({"a": 6, "b": 7, "c": 40}, {"a", "b"}),  # two small cells adding to 13 hide each other
        ({"a": 12, "b": 12}, set()),
    ],
)
def test_cell_sizes(categories, hidden):
    total = {"members": sum(categories.values())}
    assert _hidden_keys(suppress_table(SIZE, total, _table(categories))) == hidden


@pytest.mark.parametrize(
    ("counts", "hidden"),
    [
        ({"members": 8, "logged": 8, "nhdd": 2}, {"members", "logged", "nhdd"}),  # a small row hides all
        ({"members": 12, "logged": 12, "nhdd": 0}, set()),
        ({"members": 50, "logged": 45, "nhdd": 20}, {"logged", "nhdd"}),  # 5 did not log: derivable
        ({"members": 50, "logged": 50, "nhdd": 45}, {"nhdd"}),  # 5 had a heavy day
        ({"members": 50, "logged": 50, "nhdd": 3}, {"nhdd"}),
        ({"members": 0, "logged": 0, "nhdd": 0}, set()),
    ],
)
def test_a_row_on_its_own(counts, hidden):
    assert suppress_row(NESTED, counts) == hidden


def test_a_column_hidden_in_one_category_is_complemented_in_that_column_only():
    total = {"members": 100, "logged": 95, "nhdd": 40}
    cats = {
        "a": {"members": 40, "logged": 40, "nhdd": 20},
        "b": {"members": 30, "logged": 25, "nhdd": 10},  # 5 did not log; 10 with no heavy day
        "c": {"members": 30, "logged": 30, "nhdd": 10},
    }
    decision = suppress_table(NESTED, total, cats)
    assert decision.total == {"logged", "nhdd"}  # 100 - 95 = 5 did not log
    # The total hides `logged`, so nothing can be subtracted from it in that column; b hides its own.
    assert decision.categories["b"] == {"logged", "nhdd"}
    assert decision.categories["a"] == set()
    assert decision.categories["c"] == {"nhdd"}  # 10 is small


def test_measures_absent_from_a_row_are_not_published_there():
    assert suppress_row(NESTED, {"members": 20}) == set()


def test_columns_must_come_after_their_parents():
    with pytest.raises(ValueError):
        suppress_row((Column("members"), Column("nhdd", "logged"), Column("logged", "members")), {})
    with pytest.raises(ValueError):
        suppress_row((Column("members"), Column("other")), {})


def test_is_small():
    assert [is_small(n) for n in (0, 1, 10, 11)] == [False, True, True, False]
    with pytest.raises(ValueError):
        is_small(-1)


# --- properties on random partitions -------------------------------------------------------------


@st.composite
def partitions(draw, columns=COLUMNS):
    """A total and 1-6 categories that partition it: each column nested in its parent, cell by cell."""
    n_categories = draw(st.integers(1, 6))
    cats: dict[str, dict[str, int]] = {}
    for i in range(n_categories):
        counts: dict[str, int] = {}
        for column in columns:
            top = 60 if column.parent is None else counts[column.parent]
            # Small numbers are where the rules bite: draw them often.
            counts[column.name] = draw(st.one_of(st.integers(0, min(top, 12)), st.integers(0, top)))
        cats[f"c{i}"] = counts
    total = {c.name: sum(cat[c.name] for cat in cats.values()) for c in columns}
    return total, cats


def _check_row(columns, counts, hidden):
    for column in columns:
        if column.name in hidden:
            continue
        assert not is_small(counts[column.name]), (column.name, counts)
        if column.parent is not None:
            assert column.parent not in hidden, (column.name, "published under a hidden parent")
            assert not is_small(counts[column.parent] - counts[column.name]), (column.name, counts)


@settings(max_examples=400, deadline=None)
@given(partitions())
def test_no_small_count_is_published_or_derivable(table):
    total, cats = table
    decision = suppress_table(COLUMNS, total, cats)
    _check_row(COLUMNS, total, decision.total)
    for key, counts in cats.items():
        _check_row(COLUMNS, counts, decision.categories[key])
    for column in COLUMNS:
        if column.name in decision.total:
            continue
        hidden = [key for key in cats if column.name in decision.categories[key]]
        published = sum(cats[key][column.name] for key in cats if key not in hidden)
        derived = total[column.name] - published  # what anyone can compute from the file
        assert derived == sum(cats[key][column.name] for key in hidden)
        # No single suppressed cell is recoverable by subtraction, and the hidden ones together are
        # not a small cell either.
        assert len(hidden) != 1, (column.name, total, cats)
        assert not is_small(derived), (column.name, total, cats)


@settings(max_examples=200, deadline=None)
@given(partitions())
def test_suppression_is_deterministic_and_only_adds(table):
    total, cats = table
    first = suppress_table(COLUMNS, total, cats)
    assert suppress_table(COLUMNS, total, dict(reversed(list(cats.items())))) == first
    for key, counts in cats.items():
        assert suppress_row(COLUMNS, counts) <= first.categories[key]  # complements only ever add
