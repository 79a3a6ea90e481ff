"""DateRange: the inclusive local-day windows every measure is computed over."""

from datetime import date, datetime

import pytest

from companion.domain.types import DateRange

D1 = date(2026, 11, 1)


@pytest.mark.parametrize(("end", "days", "start", "length"), [
    (date(2026, 11, 7),   7,   date(2026, 11, 1),  7),
    (date(2026, 11, 1),   1,   date(2026, 11, 1),  1),
    (date(2026, 3, 1),    30,  date(2026, 1, 31),  30),
    (date(2028, 3, 1),    2,   date(2028, 2, 29),  2),
])  # fmt: skip
def test_ending(end, days, start, length):
    window = DateRange.ending(end, days)
    assert window == DateRange(start, end)
    assert window.length == length == len(list(window.days()))
    assert next(iter(window.days())) == start


def test_membership():
    week = DateRange.ending(date(2026, 11, 7), 7)
    assert D1 in week and date(2026, 11, 7) in week
    assert date(2026, 10, 31) not in week and date(2026, 11, 8) not in week
    assert datetime(2026, 11, 3, 12, 0) not in week  # an instant is not a day
    assert "2026-11-03" not in week


def test_empty_ranges_are_bugs():
    with pytest.raises(ValueError):
        DateRange(D1, date(2026, 10, 31))
    with pytest.raises(ValueError):
        DateRange.ending(D1, 0)
