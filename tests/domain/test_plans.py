"""Medication plans: regimens by day, dose slots across DST, slot matching, tapers, validation."""

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.domain import localtime
from companion.domain.errors import InvalidInput
from companion.domain.plans import (
    DoseLimits,
    Plan,
    PlanStep,
    Regimen,
    dose_limit_problems,
    dose_slots,
    is_active,
    is_high_dose,
    is_tapering,
    plan_problems,
    regimen_on,
    slot_matches,
    step_problems,
    validate_plan,
)

NY, LONDON, SYDNEY, KOLKATA, AUCKLAND = (
    "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata", "Pacific/Auckland",
)  # fmt: skip
ZONES = (NY, LONDON, SYDNEY, KOLKATA, AUCKLAND)
PLAN_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
EST, EDT = timezone(timedelta(hours=-5)), timezone(timedelta(hours=-4))


def t(hhmm: str | time) -> time:
    return hhmm if isinstance(hhmm, time) else time.fromisoformat(hhmm)


def times(*hhmm: str) -> tuple[time, ...]:
    return tuple(t(x) for x in hhmm)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


#: Baclofen taper: 20 mg x3 (60 mg/day), then 10 mg x2 (20), then 5 mg x2 (10); ends 2026-11-08.
TAPER = Plan(
    PLAN_ID, "baclofen", D("20"), times("08:00", "14:00", "20:00"), date(2026, 10, 1), date(2026, 11, 8),
    steps=(
        PlanStep(date(2026, 10, 30), D("10"), times("08:00", "20:00")),
        PlanStep(date(2026, 11, 2),  D("5"),  times("08:00", "20:00")),
    ),
)  # fmt: skip

#: Baclofen titration as DOMAIN.md describes it: 5 mg x3, +5 mg per dose every 3 days; open-ended.
TITRATION = Plan(
    PLAN_ID, "baclofen", D("5"), times("08:00", "14:00", "20:00"), date(2026, 3, 1),
    steps=(
        PlanStep(date(2026, 3, 4), D("10"), times("08:00", "14:00", "20:00")),
        PlanStep(date(2026, 3, 7), D("15"), times("08:00", "14:00", "20:00")),
    ),
)  # fmt: skip


def simple(*hhmm: str, start=date(2026, 1, 1), end=None, steps=()) -> Plan:
    return Plan(PLAN_ID, "gabapentin", D("300"), times(*hhmm), start, end, steps)


@pytest.mark.parametrize(("plan", "day", "expected"), [
    (TAPER,      date(2026, 9, 30),   None),
    (TAPER,      date(2026, 10, 1),   Regimen(D("20"), times("08:00", "14:00", "20:00"), date(2026, 10, 1))),
    (TAPER,      date(2026, 10, 29),  Regimen(D("20"), times("08:00", "14:00", "20:00"), date(2026, 10, 1))),
    (TAPER,      date(2026, 10, 30),  Regimen(D("10"), times("08:00", "20:00"), date(2026, 10, 30))),
    (TAPER,      date(2026, 11, 1),   Regimen(D("10"), times("08:00", "20:00"), date(2026, 10, 30))),
    (TAPER,      date(2026, 11, 2),   Regimen(D("5"), times("08:00", "20:00"), date(2026, 11, 2))),
    (TAPER,      date(2026, 11, 8),   Regimen(D("5"), times("08:00", "20:00"), date(2026, 11, 2))),
    (TAPER,      date(2026, 11, 9),   None),
    (TITRATION,  date(2026, 3, 6),    Regimen(D("10"), times("08:00", "14:00", "20:00"), date(2026, 3, 4))),
    (TITRATION,  date(2030, 1, 1),    Regimen(D("15"), times("08:00", "14:00", "20:00"), date(2026, 3, 7))),
])  # fmt: skip
def test_regimen_on(plan, day, expected):
    assert regimen_on(plan, day) == expected
    assert is_active(plan, day) is (expected is not None)


def test_regimen_daily_total():
    assert regimen_on(TAPER, date(2026, 10, 1)).daily_mg == D("60")
    assert regimen_on(TAPER, date(2026, 11, 2)).daily_mg == D("10")


@pytest.mark.parametrize(("plan", "day", "zone", "expected"), [
    # (local time, UTC instant, dose) of each slot.
    (TAPER, date(2026, 10, 31), NY,
     [("08:00", utc(2026, 10, 31, 12), "10"), ("20:00", utc(2026, 11, 1, 0), "10")]),
    # The fall-back day: 08:00 is EST now, an hour later in UTC than the day before.
    (TAPER, date(2026, 11, 1),  NY,
     [("08:00", utc(2026, 11, 1, 13), "10"),  ("20:00", utc(2026, 11, 2, 1), "10")]),
    (TAPER, date(2026, 11, 2),  NY,
     [("08:00", utc(2026, 11, 2, 13), "5"),   ("20:00", utc(2026, 11, 3, 1), "5")]),
    (TAPER, date(2026, 11, 9),  NY, []),
    # 02:30 on spring-forward day fires once, at 03:30 EDT.
    (simple("02:30"),           date(2026, 3, 8),  NY,     [("02:30", utc(2026, 3, 8, 7, 30), "300")]),
    # 01:30 on fall-back day fires once, at the first (EDT) 01:30.
    (simple("01:30"),           date(2026, 11, 1), NY,     [("01:30", utc(2026, 11, 1, 5, 30), "300")]),
    # 01:30 sits in London's gap and lands on 02:30 BST, the same instant as 02:30: one slot.
    (simple("01:30", "02:30"),  date(2026, 3, 29), LONDON, [("01:30", utc(2026, 3, 29, 1, 30), "300")]),
    (simple("01:30", "02:30"),  date(2026, 3, 30), LONDON, [("01:30", utc(2026, 3, 30, 0, 30), "300"),
                                                            ("02:30", utc(2026, 3, 30, 1, 30), "300")]),
])  # fmt: skip
def test_dose_slots(plan, day, zone, expected):
    slots = dose_slots(plan, day, zone)
    assert [(s.local_time.strftime("%H:%M"), s.scheduled_for, str(s.dose_mg)) for s in slots] == expected
    assert all(s.plan_id == PLAN_ID and s.local_date == day for s in slots)


@pytest.mark.parametrize(("scheduled_for", "expected_time"), [
    (utc(2026, 11, 1, 13),                             "08:00"),
    (datetime(2026, 11, 1, 8, 0, tzinfo=EST),          "08:00"),   # same instant, the member's offset
    (datetime(2026, 11, 1, 8, 0, tzinfo=EDT),          None),      # stale offset: an hour early
    (datetime(2026, 10, 31, 20, 0, tzinfo=EDT),        "20:00"),
    (datetime(2026, 10, 31, 14, 0, tzinfo=EDT),        None),      # the old regimen's 14:00 is gone
    (datetime(2026, 10, 29, 14, 0, tzinfo=EDT),        "14:00"),
    (datetime(2026, 11, 9, 8, 0, tzinfo=EST),          None),      # after end_date
    (utc(2026, 11, 1, 13, 0, 1),                       None),      # exact instants only
])  # fmt: skip
def test_slot_matches(scheduled_for, expected_time):
    slot = slot_matches(TAPER, scheduled_for, NY)
    assert (slot.local_time.strftime("%H:%M") if slot else None) == expected_time
    if slot:
        assert slot.scheduled_for == scheduled_for and slot.scheduled_for.tzinfo is UTC


def test_slot_matches_a_gap_time_at_its_shifted_instant():
    plan = simple("02:30")
    slot = slot_matches(plan, datetime(2026, 3, 8, 3, 30, tzinfo=EDT), NY)
    assert slot is not None and slot.local_time == t("02:30") and slot.local_date == date(2026, 3, 8)


def test_slot_matches_refuses_naive_instants():
    with pytest.raises(ValueError):
        slot_matches(TAPER, datetime(2026, 11, 1, 13, 0), NY)


# Plans for the taper table.
_ramp = simple(
    "08:00",
    start=date(2026, 1, 1),
    end=date(2026, 2, 28),
    steps=(PlanStep(date(2026, 1, 10), D("600"), times("08:00")),),
)  # up, then hold
_up_down = simple(
    "08:00",
    start=date(2026, 1, 1),
    end=date(2026, 2, 28),
    steps=(
        PlanStep(date(2026, 1, 10), D("600"), times("08:00")),
        PlanStep(date(2026, 2, 1), D("900"), times("08:00")),
        PlanStep(date(2026, 2, 20), D("300"), times("08:00")),
    ),
)
_lowered_for_good = simple(
    "08:00", "20:00", start=date(2026, 1, 1), steps=(PlanStep(date(2026, 1, 10), D("300"), times("08:00")),)
)  # 600 -> 300/day
_fewer_times_more_mg = simple(
    "08:00",
    "14:00",
    "20:00",
    start=date(2026, 1, 1),
    steps=(PlanStep(date(2026, 1, 10), D("400"), times("08:00", "20:00")),),
)


@pytest.mark.parametrize(("plan", "day", "tapering"), [
    (TAPER,                 date(2026, 10, 1),   False),
    (TAPER,                 date(2026, 10, 25),  False),
    (TAPER,                 date(2026, 10, 26),  True),    # last 14 days up to end_date (Nov 8)
    (TAPER,                 date(2026, 10, 30),  True),    # 20 mg/day after 60
    (TAPER,                 date(2026, 11, 2),   True),    # 10 after 20
    (TAPER,                 date(2026, 11, 8),   True),
    (TAPER,                 date(2026, 11, 9),   False),   # plan over
    (TITRATION,             date(2026, 3, 8),    False),   # rising doses are not a taper
    (_ramp,                 date(2026, 2, 27),   False),   # near the end, but no step ever lowered the dose
    (_up_down,              date(2026, 2, 1),    False),   # 900 after 600
    (_up_down,              date(2026, 2, 15),   True),    # within 14 days of the end; a later step lowers
    (_up_down,              date(2026, 2, 20),   True),
    (_lowered_for_good,     date(2026, 1, 9),    False),
    (_lowered_for_good,     date(2026, 6, 1),    True),    # a lowered dose stays a taper while in force
    (_fewer_times_more_mg,  date(2026, 1, 12),   True),    # 400 x2 = 800/day after 300 x3 = 900
])  # fmt: skip
def test_is_tapering(plan, day, tapering):
    assert is_tapering(plan, day) is tapering


_VALID = Plan(PLAN_ID, "baclofen", D("5"), times("08:00", "20:00"), date(2026, 1, 1), date(2026, 3, 1))
HHMM = 'Times must be local "HH:MM" wall-clock times.'
AFTER_START = "Step 1: from_date must be after the plan's start_date."
AFTER_STEP_1 = "Step 2: from_date must be after step 1's from_date."
AFTER_END = "Step 1: from_date must not be after the plan's end_date."


def P(**changes) -> Plan:
    """_VALID with `changes`."""
    fields = {f: getattr(_VALID, f) for f in Plan.__dataclass_fields__}
    return Plan(**{**fields, **changes})


def S(month: int, day: int, dose: str = "5", *hhmm: str) -> PlanStep:
    """A step from 2026-month-day."""
    return PlanStep(date(2026, month, day), D(dose), times(*(hhmm or ("08:00",))))


@pytest.mark.parametrize(("plan", "field", "message"), [
    (_VALID,                                  None,          None),
    (TAPER,                                   None,          None),
    (TITRATION,                               None,          None),
    (P(medication="aspirin"),                 "medication",  "Not a medication in the catalogue."),
    (P(dose_mg=D("0")),                       "dose_mg",     "Must be positive."),
    (P(times=()),                             "times",       "Between 1 and 6 times a day."),
    (P(times=times("01", "02", "03", "04", "05", "06", "07")),
                                              "times",       "Between 1 and 6 times a day."),
    (P(times=times("20:00", "08:00")),        "times",       "Times must be in order."),
    (P(times=times("08:00", "08:00")),        "times",       "Times must not repeat."),
    (P(times=(time(8, 0, 30),)),              "times",       HHMM),
    (P(times=(time(8, tzinfo=UTC), time(9))), "times",       HHMM),
    (P(end_date=date(2025, 12, 31)),          "end_date",    "Must not be before start_date."),
    (P(steps=(S(1, 1),)),                     "steps",       AFTER_START),
    (P(steps=(S(2, 1), S(2, 1))),             "steps",       AFTER_STEP_1),
    (P(steps=(S(2, 1), S(1, 15))),            "steps",       AFTER_STEP_1),
    (P(steps=(S(3, 2),)),                     "steps",       AFTER_END),
    (P(steps=(S(3, 1),)),                     None,          None),    # a step on the last day is allowed
    (P(steps=(S(2, 1, "-5"),)),               "steps",       "Step 1: dose_mg must be positive."),
    (P(steps=(S(2, 1, "5", "09:00", "08:00"),)),
                                              "steps",       "Step 1: times must be in order."),
    (P(steps=(PlanStep(date(2026, 2, 1), D("5"), ()),)),
                                              "steps",       "Step 1: between 1 and 6 times a day."),
])  # fmt: skip
def test_plan_problems(plan, field, message):
    assert plan_problems(plan) == ({field: [message]} if field else {})


def test_validate_plan_raises_invalid_input_naming_fields():
    validate_plan(TAPER)
    assert step_problems(TAPER) == []
    bad = P(dose_mg=D("0"), steps=(S(1, 1),))
    with pytest.raises(InvalidInput) as caught:
        validate_plan(bad)
    assert set(caught.value.fields) == {"dose_mg", "steps"}
    assert caught.value.fields["steps"] == step_problems(bad) == [AFTER_START]


#: Times that exercise every zone's transitions without two landing on one instant: 02:30 is in the
#: US, Sydney and Auckland spring-forward gaps and in Sydney's and Auckland's fall-back repeats; 01:15
#: is in London's gap and in the US and London repeats; 00:30 and 23:30 sit next to midnight.
EVERY_DAY_TIMES = times("00:30", "01:15", "02:30", "08:00", "20:00", "23:30")


@pytest.mark.parametrize("zone", ZONES)
def test_each_local_day_of_2026_and_2027_fires_each_time_exactly_once(zone):
    plan = simple(*EVERY_DAY_TIMES, start=date(2026, 1, 1), end=date(2027, 12, 31))
    instants = []
    day = date(2026, 1, 1)
    while day <= date(2027, 12, 31):
        slots = dose_slots(plan, day, zone)
        assert [s.local_time for s in slots] == list(EVERY_DAY_TIMES)
        start, end = localtime.day_bounds_utc(day, zone)
        assert all(start <= s.scheduled_for < end for s in slots)
        instants += [s.scheduled_for for s in slots]
        day += timedelta(days=1)
    assert len(instants) == len(set(instants)) == 730 * len(EVERY_DAY_TIMES)
    assert instants == sorted(instants)


@pytest.mark.parametrize("zone", ZONES)
def test_every_slot_on_a_dst_day_matches_itself(zone):
    plan = simple(*EVERY_DAY_TIMES, start=date(2026, 1, 1))
    for day in (
        date(2026, 3, 8),
        date(2026, 3, 29),
        date(2026, 4, 5),
        date(2026, 9, 27),
        date(2026, 10, 4),
        date(2026, 10, 25),
        date(2026, 11, 1),
    ):
        for slot in dose_slots(plan, day, zone):
            assert slot_matches(plan, slot.scheduled_for, zone) == slot


@given(
    day=st.dates(date(2026, 1, 1), date(2027, 12, 31)),
    minutes=st.sets(st.integers(0, 24 * 60 - 1), min_size=1, max_size=6),
    zone=st.sampled_from(ZONES),
)
def test_slots_are_distinct_instants_on_their_day_and_match_back(day, minutes, zone):
    plan = simple(*(f"{m // 60:02d}:{m % 60:02d}" for m in sorted(minutes)), start=day, end=day)
    slots = dose_slots(plan, day, zone)
    distinct = {localtime.local_to_utc(day, t, zone) for t in plan.times}
    assert len(slots) == len(distinct)  # fewer only when two gap times collide
    assert [s.scheduled_for for s in slots] == sorted(distinct)
    for slot in slots:
        assert localtime.local_date(slot.scheduled_for, zone) == day
        assert slot_matches(plan, slot.scheduled_for, zone) == slot


# Dose limits (issue 19).


def _daily(medication: str, mg: str, times: int = 1, steps=()) -> Plan:
    hhmm = tuple(time(h) for h in (8, 12, 16, 20)[:times])
    return Plan(uuid.uuid4(), medication, D(mg), hhmm, date(2026, 11, 1), None, tuple(steps))


@pytest.mark.parametrize(("plan", "confirmed", "problems"), [
    (_daily("baclofen", "20", 4),      False, set()),
    (_daily("baclofen", "20.5", 4),    False, {"dose_mg"}),
    (_daily("baclofen", "20.5", 4),    True,  set()),
    (_daily("baclofen", "40", 4),      True,  set()),              # 160 mg: twice, not above it
    (_daily("baclofen", "40.5", 4),    True,  {"dose_mg"}),
    (_daily("naltrexone", "50"),       False, set()),
    (_daily("naltrexone", "51"),       False, {"dose_mg"}),
    (_daily("acamprosate", "666", 3),  False, set()),
    (_daily("gabapentin", "1200", 3),  False, set()),
    (_daily("gabapentin", "1201", 3),  False, {"dose_mg"}),
    (_daily("topiramate", "150", 2),   False, set()),
    (_daily("topiramate", "151", 2),   False, {"dose_mg"}),
    (_daily("disulfiram", "500"),      False, set()),
    (_daily("disulfiram", "1001"),     True,  {"dose_mg"}),
    (_daily("baclofen", "10", 1, [PlanStep(date(2026, 11, 5), D("90"), (time(8),))]), False, {"steps"}),
    (_daily("baclofen", "10", 1, [PlanStep(date(2026, 11, 5), D("90"), (time(8),))]), True,  set()),
])  # fmt: skip
def test_dose_limits(plan, confirmed, problems):
    assert set(dose_limit_problems(plan, confirmed=confirmed)) == problems
    assert is_high_dose(plan) is (dose_limit_problems(plan, confirmed=False) != {})


def test_dose_limits_are_settings():
    limits = DoseLimits(usual_max_mg={"baclofen": D("100")}, refused_factor=D("1.5"))
    assert dose_limit_problems(_daily("baclofen", "30", 3), confirmed=False, limits=limits) == {}
    assert set(dose_limit_problems(_daily("baclofen", "51", 3), confirmed=True, limits=limits)) == {"dose_mg"}
    assert (
        dose_limit_problems(_daily("naltrexone", "500"), confirmed=False, limits=limits) == {}
    )  # no limit set
