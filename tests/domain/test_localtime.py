"""Local dates, wall-clock scheduling and day bounds across the 2026-2027 DST transitions."""

from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.domain.localtime import (
    WallTimeKind,
    day_bounds_utc,
    local_date,
    local_to_utc,
    to_utc,
    wall_time_kind,
)

NY, LONDON, SYDNEY, KOLKATA, AUCKLAND = (
    "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland",
)  # fmt: skip
ZONES = (NY, LONDON, SYDNEY, KOLKATA, AUCKLAND)
FIRST, LAST = date(2026, 1, 1), date(2027, 12, 31)

#: Every day in 2026-2027 that is not 24 hours long, by zone (tzdata; checked by hand against each
#: zone's rule: US 2nd Sun Mar / 1st Sun Nov, EU last Sun Mar / Oct, AU 1st Sun Apr / Oct,
#: NZ 1st Sun Apr / last Sun Sep). India has no DST.
DST_DAYS = {
    NY:       {date(2026, 3, 8): 23,  date(2026, 11, 1): 25, date(2027, 3, 14): 23, date(2027, 11, 7): 25},
    LONDON:   {date(2026, 3, 29): 23, date(2026, 10, 25): 25, date(2027, 3, 28): 23, date(2027, 10, 31): 25},
    SYDNEY:   {date(2026, 4, 5): 25,  date(2026, 10, 4): 23, date(2027, 4, 4): 25,  date(2027, 10, 3): 23},
    KOLKATA:  {},
    AUCKLAND: {date(2026, 4, 5): 25,  date(2026, 9, 27): 23, date(2027, 4, 4): 25,  date(2027, 9, 26): 23},
}  # fmt: skip


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def all_days():
    day = FIRST
    while day <= LAST:
        yield day
        day += timedelta(days=1)


@pytest.mark.parametrize(("instant", "zone", "expected"), [
    (utc(2026, 11, 20, 11, 30),  AUCKLAND,  date(2026, 11, 21)),   # 00:30 NZDT: already tomorrow
    (utc(2026, 11, 20, 10, 59),  AUCKLAND,  date(2026, 11, 20)),   # 23:59 NZDT
    (utc(2026, 11, 1, 3, 59),    NY,        date(2026, 10, 31)),   # 23:59 EDT
    (utc(2026, 11, 1, 5, 30),    NY,        date(2026, 11, 1)),    # first 01:30 (EDT)
    (utc(2026, 11, 1, 6, 30),    NY,        date(2026, 11, 1)),    # second 01:30 (EST)
    (utc(2026, 11, 2, 4, 59),    NY,        date(2026, 11, 1)),    # 23:59 EST, end of the 25-hour day
    (utc(2026, 11, 2, 5, 0),     NY,        date(2026, 11, 2)),
    (utc(2026, 6, 30, 18, 29),   KOLKATA,   date(2026, 6, 30)),    # 23:59 IST (+05:30)
    (utc(2026, 6, 30, 18, 30),   KOLKATA,   date(2026, 7, 1)),
    (utc(2026, 3, 29, 0, 30),    LONDON,    date(2026, 3, 29)),    # 00:30 GMT
    (utc(2026, 10, 4, 13, 30),   SYDNEY,    date(2026, 10, 5)),    # 00:30 AEDT
    (datetime(2026, 11, 20, 21, 15, tzinfo=timezone(timedelta(hours=-5))), NY, date(2026, 11, 20)),
    (datetime(2026, 11, 20, 21, 15, tzinfo=timezone(timedelta(hours=-5))), AUCKLAND, date(2026, 11, 21)),
])  # fmt: skip
def test_local_date(instant, zone, expected):
    assert local_date(instant, zone) == expected


def test_naive_instants_are_refused():
    with pytest.raises(ValueError):
        local_date(datetime(2026, 11, 20, 12, 0), NY)
    with pytest.raises(ValueError):
        to_utc(datetime(2026, 11, 20, 12, 0))


def test_to_utc_keeps_the_instant():
    instant = datetime(2026, 11, 20, 21, 15, tzinfo=timezone(timedelta(hours=-5)))
    assert to_utc(instant) == utc(2026, 11, 21, 2, 15)
    assert to_utc(instant).tzinfo is UTC


NORMAL, GAP, REPEATED = WallTimeKind.NORMAL, WallTimeKind.GAP, WallTimeKind.AMBIGUOUS


@pytest.mark.parametrize(("day", "wall", "zone", "expected", "kind"), [
    # US spring forward, 2026-03-08: 02:00 EST -> 03:00 EDT. Gap times move forward by an hour.
    (date(2026, 3, 8),   time(1, 59),  NY,       utc(2026, 3, 8, 6, 59),    NORMAL),
    (date(2026, 3, 8),   time(2, 0),   NY,       utc(2026, 3, 8, 7, 0),     GAP),       # = 03:00 EDT
    (date(2026, 3, 8),   time(2, 30),  NY,       utc(2026, 3, 8, 7, 30),    GAP),       # = 03:30 EDT
    (date(2026, 3, 8),   time(3, 0),   NY,       utc(2026, 3, 8, 7, 0),     NORMAL),
    # US fall back, 2026-11-01: 02:00 EDT -> 01:00 EST. Repeated times take the first (EDT).
    (date(2026, 11, 1),  time(0, 59),  NY,       utc(2026, 11, 1, 4, 59),   NORMAL),
    (date(2026, 11, 1),  time(1, 30),  NY,       utc(2026, 11, 1, 5, 30),   REPEATED),
    (date(2026, 11, 1),  time(2, 0),   NY,       utc(2026, 11, 1, 7, 0),    NORMAL),    # EST
    # UK: 01:00 GMT -> 02:00 BST (2026-03-29); 02:00 BST -> 01:00 GMT (2026-10-25).
    (date(2026, 3, 29),  time(1, 30),  LONDON,   utc(2026, 3, 29, 1, 30),   GAP),       # = 02:30 BST
    (date(2026, 10, 25), time(1, 30),  LONDON,   utc(2026, 10, 25, 0, 30),  REPEATED),  # BST
    # Sydney: 02:00 AEST -> 03:00 AEDT (2026-10-04); 03:00 AEDT -> 02:00 AEST (2026-04-05).
    (date(2026, 10, 4),  time(2, 30),  SYDNEY,   utc(2026, 10, 3, 16, 30),  GAP),       # +10
    (date(2026, 4, 5),   time(2, 30),  SYDNEY,   utc(2026, 4, 4, 15, 30),   REPEATED),  # +11
    # Auckland: 02:00 NZST -> 03:00 NZDT (2026-09-27); 03:00 NZDT -> 02:00 NZST (2026-04-05).
    (date(2026, 9, 27),  time(2, 30),  AUCKLAND, utc(2026, 9, 26, 14, 30),  GAP),       # +12
    (date(2026, 4, 5),   time(2, 30),  AUCKLAND, utc(2026, 4, 4, 13, 30),   REPEATED),  # +13
    (date(2026, 11, 21), time(0, 30),  AUCKLAND, utc(2026, 11, 20, 11, 30), NORMAL),
    # India: +05:30 all year.
    (date(2026, 3, 8),   time(2, 30),  KOLKATA,  utc(2026, 3, 7, 21, 0),    NORMAL),
])  # fmt: skip
def test_local_to_utc(day, wall, zone, expected, kind):
    instant = local_to_utc(day, wall, zone)
    assert instant == expected
    assert instant.tzinfo is UTC
    assert local_date(instant, zone) == day
    assert wall_time_kind(day, wall, zone) is kind


def test_aware_wall_times_are_refused():
    with pytest.raises(ValueError):
        local_to_utc(date(2026, 3, 8), time(2, 30, tzinfo=UTC), NY)
    with pytest.raises(ValueError):
        wall_time_kind(date(2026, 3, 8), time(2, 30, tzinfo=UTC), NY)


@pytest.mark.parametrize(("zone", "day", "start", "end"), [
    (NY,        date(2026, 3, 8),    utc(2026, 3, 8, 5),     utc(2026, 3, 9, 4)),      # 23 h
    (NY,        date(2026, 11, 1),   utc(2026, 11, 1, 4),    utc(2026, 11, 2, 5)),     # 25 h
    (NY,        date(2026, 11, 20),  utc(2026, 11, 20, 5),   utc(2026, 11, 21, 5)),
    (LONDON,    date(2026, 3, 29),   utc(2026, 3, 29, 0),    utc(2026, 3, 29, 23)),
    (LONDON,    date(2026, 10, 25),  utc(2026, 10, 24, 23),  utc(2026, 10, 26, 0)),
    (SYDNEY,    date(2026, 10, 4),   utc(2026, 10, 3, 14),   utc(2026, 10, 4, 13)),
    (AUCKLAND,  date(2026, 4, 5),    utc(2026, 4, 4, 11),    utc(2026, 4, 5, 12)),
    (KOLKATA,   date(2026, 7, 1),    utc(2026, 6, 30, 18, 30), utc(2026, 7, 1, 18, 30)),
])  # fmt: skip
def test_day_bounds_utc(zone, day, start, end):
    assert day_bounds_utc(day, zone) == (start, end)


@pytest.mark.parametrize("zone", ZONES)
def test_every_day_of_2026_and_2027_has_one_date_and_23_24_or_25_hours(zone):
    long_or_short = {}
    previous_end = None
    for day in all_days():
        start, end = day_bounds_utc(day, zone)
        hours = (end - start) / timedelta(hours=1)
        if hours != 24:
            long_or_short[day] = hours
        assert previous_end is None or start == previous_end  # days tile time with no gap or overlap
        assert local_date(start, zone) == day
        assert local_date(end - timedelta(microseconds=1), zone) == day
        previous_end = end
    assert long_or_short == DST_DAYS[zone]


@given(
    day=st.dates(FIRST, LAST),
    wall=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    zone=st.sampled_from(ZONES),
)
def test_local_to_utc_lands_on_the_day_at_the_wall_time(day, wall, zone):
    instant = local_to_utc(day, wall, zone)
    assert local_date(instant, zone) == day
    start, end = day_bounds_utc(day, zone)
    assert start <= instant < end
    local = instant.astimezone(ZoneInfo(zone))
    shown = datetime.combine(day, wall)
    if wall_time_kind(day, wall, zone) is WallTimeKind.GAP:
        assert local.replace(tzinfo=None) == shown + timedelta(hours=1)  # every gap here is an hour
    else:
        assert local.replace(tzinfo=None) == shown
