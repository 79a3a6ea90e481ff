"""Nudges across every DST transition of 2026-2027 in the member zones: once a local day, never twice.

Each test plans every local day of 2026-01-01..2027-12-31 the way the dispatcher does, with
consecutive windows, and checks that each local day's reminder is planned by exactly one window, at
the instant `localtime.local_to_utc` gives (a time in a spring-forward gap moves forward by the gap,
a repeated time fires at its first occurrence).
"""

import itertools
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from companion.domain import localtime
from companion.domain.localtime import WallTimeKind
from companion.domain.nudges import (
    SEND,
    MemberSettings,
    NudgeKind,
    PlannedNudge,
    delivery_decision,
    plan_window,
)
from companion.domain.plans import Plan

NY, LONDON, SYDNEY, KOLKATA, AUCKLAND = (
    "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland",
)  # fmt: skip
ZONES = (NY, LONDON, SYDNEY, KOLKATA, AUCKLAND)
FIRST, LAST = date(2026, 1, 1), date(2027, 12, 31)
PLAN_ID = UUID("00000000-0000-4000-8000-000000000001")
GAP, REPEATED = WallTimeKind.GAP, WallTimeKind.AMBIGUOUS

#: The days 02:30 is skipped or repeated in 2026-2027, by zone (tzdata; as in test_localtime.py).
#: London changes at 01:00 GMT / 02:00 BST, so its 02:30 always exists once; India has no DST.
ODD_0230 = {
    NY:       {date(2026, 3, 8): GAP, date(2027, 3, 14): GAP},
    LONDON:   {},
    SYDNEY:   {date(2026, 4, 5): REPEATED, date(2026, 10, 4): GAP, date(2027, 4, 4): REPEATED,
               date(2027, 10, 3): GAP},
    KOLKATA:  {},
    AUCKLAND: {date(2026, 4, 5): REPEATED, date(2026, 9, 27): GAP, date(2027, 4, 4): REPEATED,
               date(2027, 9, 26): GAP},
}  # fmt: skip


#: Spring-forward days on which a gap time lands on the next hour's slot: the two are one slot, labelled
#: with the earlier time, so this later label has no reminder of its own (`plans.dose_slots`).
MERGED_SLOT = {
    NY:       {date(2026, 3, 8): time(3, 30), date(2027, 3, 14): time(3, 30)},    # 02:30 EST = 03:30 EDT
    LONDON:   {date(2026, 3, 29): time(2, 30), date(2027, 3, 28): time(2, 30)},   # 01:30 GMT = 02:30 BST
    SYDNEY:   {date(2026, 10, 4): time(3, 30), date(2027, 10, 3): time(3, 30)},
    KOLKATA:  {},
    AUCKLAND: {date(2026, 9, 27): time(3, 30), date(2027, 9, 26): time(3, 30)},
}  # fmt: skip


def all_days(first: date = FIRST, last: date = LAST):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def windows(start: datetime, end: datetime, step: timedelta):
    while start < end:
        yield start, min(start + step, end)
        start += step


def plan_all(settings_at, windows_, **inputs) -> list[tuple[int, PlannedNudge]]:
    """Every nudge planned over consecutive windows, with the window that planned it.
    `settings_at(window_start)` is the member's settings when that window is planned."""
    planned = []
    for index, (start, end) in enumerate(windows_):
        for nudge in plan_window(
            settings_at(start),
            plans=inputs.get("plans", ()),
            checkins=(),
            day_logs=(),
            last_entry_date=None,
            last_reengagement_date=None,
            window_start=start,
            window_end=end,
        ):
            assert start <= nudge.due_at < end
            if nudge.kind == NudgeKind.PACS_REMINDER:
                continue  # monthly at log time (tests/domain/test_nudges.py): these count daily ones
            planned.append((index, nudge))
    return planned


def span(zone: str) -> tuple[datetime, datetime]:
    """From the start of 2025-12-31 to the end of 2028-01-01, local: the years and a day either side."""
    return (
        localtime.day_bounds_utc(FIRST - timedelta(days=1), zone)[0],
        localtime.day_bounds_utc(LAST + timedelta(days=1), zone)[1],
    )


@pytest.mark.parametrize("zone", ZONES)
def test_a_0230_log_reminder_fires_once_every_local_day_planned_hour_by_hour(zone):
    settings = MemberSettings(zone, log_time=time(2, 30))
    planned = plan_all(lambda _: settings, windows(*span(zone), timedelta(hours=1)))
    by_day = Counter(nudge.local_date for _, nudge in planned)
    assert Counter(nudge.dedupe_key for _, nudge in planned).most_common(1)[0][1] == 1  # no key twice
    assert all(by_day[day] == 1 for day in all_days()), [d for d in all_days() if by_day[d] != 1]

    odd = {}
    tz = ZoneInfo(zone)
    for _, nudge in planned:
        day = nudge.local_date
        assert nudge.dedupe_key == f"log_reminder:{day.isoformat()}"
        assert nudge.due_at == localtime.local_to_utc(day, time(2, 30), zone)
        assert localtime.local_date(nudge.due_at, zone) == day
        wall = nudge.due_at.astimezone(tz).replace(tzinfo=None)
        kind = localtime.wall_time_kind(day, time(2, 30), zone)
        if kind is GAP:
            assert wall == datetime.combine(day, time(3, 30))  # forward by the one-hour gap
        else:
            assert wall == datetime.combine(day, time(2, 30))
        if kind is REPEATED:
            # The first occurrence: the second is an hour later, on the same wall clock.
            second = nudge.due_at + timedelta(hours=1)
            assert second.astimezone(tz).replace(tzinfo=None) == wall
        if kind is not WallTimeKind.NORMAL and FIRST <= day <= LAST:
            odd[day] = kind
        # Sent at its due instant: nothing in the way.
        assert delivery_decision(nudge, settings=settings, sent_today_count=0, now=nudge.due_at) == SEND
    assert odd == ODD_0230[zone]


@pytest.mark.parametrize(
    "log_time", [time(0, 0), time(1, 30), time(2, 0), time(2, 59), time(3, 0), time(23, 59)]
)
@pytest.mark.parametrize("zone", ZONES)
def test_every_log_time_fires_once_a_day_with_day_windows_at_an_odd_offset(zone, log_time):
    settings = MemberSettings(zone, log_time=log_time)
    start, end = span(zone)
    planned = plan_all(
        lambda _: settings, windows(start + timedelta(hours=13, minutes=17), end, timedelta(days=1))
    )
    by_day = Counter(nudge.local_date for _, nudge in planned)
    assert all(by_day[day] == 1 for day in all_days())
    assert len({nudge.dedupe_key for _, nudge in planned}) == len(planned)
    for _, nudge in planned:
        assert nudge.due_at == localtime.local_to_utc(nudge.local_date, log_time, zone)
        assert nudge.due_at < nudge.expires_at == localtime.day_bounds_utc(nudge.local_date, zone)[1]


@pytest.mark.parametrize("zone", ZONES)
def test_dose_reminders_fire_once_a_slot_and_each_expires_when_the_next_is_due(zone):
    # Times in every zone's transition hours: on a gap day two of them may be one instant (one slot).
    plan = Plan(PLAN_ID, "baclofen", Decimal("5"), (time(1, 30), time(2, 30), time(3, 30)), date(2025, 12, 1))
    settings = MemberSettings(zone)
    start, end = span(zone)
    planned = [
        n for _, n in plan_all(lambda _: settings, windows(start, end, timedelta(hours=6)), plans=[plan])
    ]
    doses = [n for n in planned if n.kind is NudgeKind.DOSE_REMINDER]
    assert len({n.dedupe_key for n in doses}) == len(doses)
    assert len({n.due_at for n in doses}) == len(doses)  # no instant reminded twice
    for day in all_days():
        slots = {n.local_slot for n in doses if n.local_date == day}
        merged = MERGED_SLOT[zone].get(day)
        assert slots == {time(1, 30), time(2, 30), time(3, 30)} - {merged}, day
    for this, after in itertools.pairwise(doses):
        # The next dose, or the end of the day plus the grace if sooner (never here: 01:30 < 02:00).
        day_end = localtime.day_bounds_utc(this.local_date, zone)[1]
        assert this.expires_at == min(after.due_at, day_end + timedelta(hours=2))
        assert this.expires_at == after.due_at


@pytest.mark.parametrize(("moves"), [
    # (instant, new zone): across DST changes, the date line and a half-hour offset.
    [(datetime(2026, 3, 8, 7, tzinfo=UTC), AUCKLAND),         # the NY gap instant
     (datetime(2026, 9, 27, 0, tzinfo=UTC), KOLKATA),         # just after Auckland springs forward
     (datetime(2026, 11, 1, 6, 15, tzinfo=UTC), NY),          # inside New York's repeated hour
     (datetime(2027, 4, 4, 0, tzinfo=UTC), SYDNEY),
     (datetime(2027, 10, 31, 1, 30, tzinfo=UTC), LONDON)],    # inside London's repeated hour
])  # fmt: skip
def test_a_member_changing_zone_is_reminded_at_most_once_a_local_day_and_then_at_the_new_time(moves):
    timeline = [(datetime(2000, 1, 1, tzinfo=UTC), NY), *moves]

    def zone_at(instant):
        return [zone for since, zone in timeline if since <= instant][-1]

    settings = {zone: MemberSettings(zone, log_time=time(2, 30)) for zone in ZONES}
    start, end = span(NY)
    planned = plan_all(lambda at: settings[zone_at(at)], windows(start, end, timedelta(hours=1)))
    rows: dict[str, PlannedNudge] = {}
    for _, nudge in planned:
        rows.setdefault(nudge.dedupe_key, nudge)  # the database keeps the first row per key
    by_day = Counter(nudge.local_date for nudge in rows.values())
    assert max(by_day.values()) == 1
    # Every row fired at 02:30 (or the gap-shifted time) in the zone the member was in when it fired.
    for nudge in rows.values():
        assert nudge.zone == zone_at(nudge.due_at)
        assert nudge.due_at == localtime.local_to_utc(nudge.local_date, time(2, 30), nudge.zone)
    # Only the day of a move may go without a reminder (its 02:30 had passed in the new zone, or the
    # day had one already under the old zone); every other day has one.
    missed = [day for day in all_days() if by_day[day] == 0]
    move_days = {localtime.local_date(at, zone) for at, zone in moves} | {
        localtime.local_date(at, zone_at(at - timedelta(seconds=1))) for at, _ in moves
    }
    assert set(missed) <= move_days
