"""Cohort outcome measures: windows, one member worked by hand, cohorts of 12 and 8."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest

from companion.domain import outcomes as o
from companion.domain.drinking import WhoLevel
from companion.domain.errors import InvalidInput
from companion.domain.plans import Plan
from companion.domain.summary import CravingRating, DayLog
from companion.domain.types import DateRange

D = date.fromisoformat
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
PERIOD = o.Period(o.Month(2026, 1), o.Month(2026, 2))


@pytest.mark.parametrize(
    ("start", "end", "problem"),
    [
        ("2026-01", "2026-02", None),
        ("2026-02", "2026-02", None),
        ("2026-03", "2026-03", None),  # the current month, to date: partial
        ("2026-04", "2026-04", "period.end"),  # not begun on 2026-03-15
        ("2026-02", "2026-01", "period.end"),
        ("2026-1", "2026-02", "period.start"),
        ("2026-13", "2026-02", "period.start"),
        ("2024-01", "2026-02", "period.end"),  # 26 months
        ("2024-03", "2026-02", None),  # 24 months
    ],
)
def test_make_period(start, end, problem):
    if problem is None:
        period = o.make_period(start, end, today=NOW.date())
        assert (str(period.start), str(period.end)) == (start, end)
        assert period.partial == (end == "2026-03")
    else:
        with pytest.raises(InvalidInput) as caught:
            o.make_period(start, end, today=NOW.date())
        assert problem in caught.value.fields


def test_the_current_month_counts_to_yesterday_and_not_on_its_first_day():
    period = o.make_period("2026-03", "2026-03", today=D("2026-03-15"))
    assert period.days == DateRange(D("2026-03-01"), D("2026-03-14"))
    with pytest.raises(InvalidInput) as caught:
        o.make_period("2026-03", "2026-03", today=D("2026-03-01"))
    assert caught.value.fields == {"period.end": ["The current month has no day that is over yet."]}


def test_period_days_are_whole_months():
    assert PERIOD.days == DateRange(D("2026-01-01"), D("2026-02-28"))
    assert o.Period(o.Month(2028, 2), o.Month(2028, 2)).days.end == D("2028-02-29")
    assert PERIOD.months == 2


@pytest.mark.parametrize(
    ("enrolled", "window", "follow_up"),
    [
        ("2025-06-01", ("2026-01-01", "2026-02-28"), ("2026-02-01", "2026-02-28")),
        ("2026-01-10", ("2026-01-10", "2026-02-28"), ("2026-02-01", "2026-02-28")),
        ("2026-02-10", ("2026-02-10", "2026-02-28"), ("2026-02-24", "2026-02-28")),  # after baseline
        ("2026-02-20", ("2026-02-20", "2026-02-28"), None),  # still in baseline at the period's end
        ("2026-03-01", None, None),  # enrolled after the period
    ],
)
def test_windows(enrolled, window, follow_up):
    got = o.member_window(D(enrolled), PERIOD)
    assert (got and (str(got.start), str(got.end))) == (window and window)
    if got is not None:
        f = o.follow_up_window(got, D(enrolled))
        assert (f and (str(f.start), str(f.end))) == follow_up


@pytest.mark.parametrize(
    ("enrolled", "window", "parts"),
    [
        ("2026-01-10", ("2026-01-10", "2026-02-28"), [(1, "01-10", "02-08"), (2, "02-09", "02-28")]),
        ("2026-01-01", ("2026-01-15", "2026-01-20"), [(1, "01-15", "01-20")]),
        ("2025-01-01", ("2026-01-01", "2026-01-31"), [(12, "01-01", "01-31")]),  # capped: 12+
    ],
)
def test_program_month_windows(enrolled, window, parts):
    w = DateRange(D(window[0]), D(window[1]))
    got = o.program_month_windows(w, D(enrolled))
    assert [(m, r.start.strftime("%m-%d"), r.end.strftime("%m-%d")) for m, r in got] == parts
    assert o.program_month_label(12) == "12+" and o.program_month_label(3) == "3"


def _plan(medication, start, end=None):
    return Plan(uuid.uuid4(), medication, Decimal(10), (time(8),), D(start), D(end) if end else None)


def test_medication_category():
    window = DateRange(D("2026-01-01"), D("2026-01-31"))
    assert o.medication_category([], window) == "none"
    assert o.medication_category([_plan("baclofen", "2025-12-01", "2025-12-31")], window) == "none"
    assert o.medication_category([_plan("baclofen", "2026-01-31")], window) == "baclofen"
    two = [_plan("baclofen", "2026-01-01", "2026-01-10"), _plan("baclofen", "2026-01-11")]
    assert o.medication_category(two, window) == "baclofen"
    assert o.medication_category([*two, _plan("naltrexone", "2026-01-20")], window) == "multiple"


def hand_member(**changes) -> o.MemberRecord:
    """Enrolled 2026-01-10 (woman, abstain goal). Baseline 01-10..01-23, follow-up 02-01..02-28."""
    grams = {
        "2026-01-10": 70,  # heavy: 5 US drinks
        "2026-01-11": 28,
        "2026-01-12": 0,
        "2026-01-13": 0,
        "2026-02-02": 14,
        "2026-02-03": 0,
        "2026-02-04": 0,
        "2026-02-05": 0,
    }
    logs = [DayLog(D(day), Decimal(g), g >= 56) for day, g in grams.items()]
    cravings = [CravingRating(D("2026-01-11"), 6), CravingRating(D("2026-01-12"), 8)]
    cravings.append(CravingRating(D("2026-02-03"), 3))
    record = o.MemberRecord(
        enrolled_on=D("2026-01-10"),
        zone="America/New_York",
        sex="female",
        goal_type="abstain",
        day_logs=logs,
        cravings=cravings,
        pacs=[(D("2026-01-05"), 20), (D("2026-01-12"), 30), (D("2026-02-02"), 9), (D("2026-02-09"), 11)],
        entry_days=frozenset({log.day for log in logs} | {c.day for c in cravings}),
    )
    return o.MemberRecord(**{**{f: getattr(record, f) for f in record.__slots__}, **changes})


def test_one_member_worked_by_hand():
    member = hand_member()
    window = o.member_window(member.enrolled_on, PERIOD)
    got = o.member_outcome(member, window, period=PERIOD, now=NOW, with_retention=True)
    assert got == o.MemberOutcome(
        enrolled_days=50,  # 01-10..02-28
        entry_days=8,
        active=True,  # entries in 02-01..02-28
        retained=(False, None),  # day 30 is 02-09: nothing logged since; day 90 is after the period
        logged_days=8,
        pda=Decimal("62.5"),  # 5 of 8
        phdd=Decimal("12.5"),  # 1 of 8
        no_heavy_days=False,
        drinking_days=3,
        ddd=Decimal("2.7"),  # 112 g / 3 / 14
        weekly_baseline=Decimal("12.3"),  # 98 g x 7 / 4 days / 14 = 12.25
        weekly_follow_up=Decimal("1.8"),  # 14 g x 7 / 4 / 14 = 1.75
        who_baseline=WhoLevel.MEDIUM,  # 24.5 g/day, a woman
        who_follow_up=WhoLevel.LOW,  # 3.5 g/day
        craving_baseline=Decimal("7.00"),
        craving_follow_up=Decimal("3.00"),
        pacs_baseline=20,  # the first PACS: the week of 01-05 ends after enrollment
        pacs_follow_up=11,  # the latest in the window, 28+ days after the baseline's week
        doses_taken=0,
        doses_scheduled=0,
    )


@pytest.mark.parametrize(
    ("pacs", "expected"),
    [
        ([("2026-01-05", 20), ("2026-02-02", 9)], (20, 9)),  # follow-up exactly 28 days after
        ([("2026-01-05", 20), ("2026-01-26", 9)], (None, None)),  # 21 days after: no follow-up
        ([("2026-01-12", 18), ("2026-02-09", 9)], (18, 9)),  # a baseline in the second week
        ([("2026-02-02", 18), ("2026-03-02", 9)], (None, None)),  # a baseline; 03-02 is after the period
        ([("2026-02-09", 18), ("2026-02-16", 9)], (None, None)),  # 30 days after enrollment: no baseline
        ([("2025-12-29", 25), ("2026-02-02", 9)], (None, None)),  # the week before enrollment's
        ([("2026-01-05", 20), ("2026-03-09", 9)], (None, None)),  # a follow-up after the period
    ],
)
def test_pacs_baseline_and_follow_up(pacs, expected):
    member = hand_member(pacs=[(D(day), total) for day, total in pacs])
    got = o.member_outcome(
        member, o.member_window(member.enrolled_on, PERIOD), period=PERIOD, now=NOW, with_retention=True
    )
    assert (got.pacs_baseline, got.pacs_follow_up) == expected


def test_mean_pacs_at_baseline_and_follow_up_suppressed_like_every_cell():
    # 7 members with 20 then 10, 5 with 17 then 13.
    members = [hand_member(pacs=[(D("2026-01-05"), 20), (D("2026-02-02"), 10)]) for _ in range(7)]
    members += [hand_member(pacs=[(D("2026-01-05"), 17), (D("2026-02-09"), 13)]) for _ in range(5)]
    totals = o.cohort_totals(members, period=PERIOD, breakdowns=[], now=NOW)
    got = _values(o.build_report(totals, period=PERIOD, breakdowns=[]), "total", "all")["pacs_change"]
    assert (got.baseline, got.follow_up, got.value, got.members) == (
        Decimal("18.8"),  # 225 / 12 = 18.75
        Decimal("11.3"),  # 135 / 12 = 11.25
        Decimal("-7.5"),  # -90 / 12
        12,
    )
    assert (got.unit, got.suppressed) == ("PACS score (0-30)", False)
    # Two of them without a follow-up: ten members with both, a small cell, hidden with its means.
    members[:2] = [hand_member(pacs=[(D("2026-01-05"), 30)]) for _ in range(2)]
    totals = o.cohort_totals(members, period=PERIOD, breakdowns=[], now=NOW)
    assert (totals[(o.TOTAL, o.ALL)].members, totals[(o.TOTAL, o.ALL)].pacs_members) == (12, 10)
    got = _values(o.build_report(totals, period=PERIOD, breakdowns=[]), "total", "all")["pacs_change"]
    assert (got.value, got.baseline, got.follow_up, got.members) == (None, None, None, None)
    assert (got.suppressed, got.reason) == (True, o.SMALL_CELL)


def _cohort(n: int) -> list[o.MemberRecord]:
    return [hand_member() for _ in range(n)]


def _values(report: o.Report, breakdown: str, category: str) -> dict[str, o.MeasureValue]:
    cell = next(c for c in report.cells if (c.breakdown, c.category) == (breakdown, category))
    return {m.name: m for m in cell.measures}


def test_a_cohort_of_12_is_reported_with_its_denominators():
    totals = o.cohort_totals(_cohort(12), period=PERIOD, breakdowns=[], now=NOW)
    report = o.build_report(totals, period=PERIOD, breakdowns=[])
    got = _values(report, "total", "all")
    assert got["members"].value == 12
    assert (got["pda"].value, got["pda"].members, got["pda"].units) == (Decimal("62.5"), 12, 96)
    assert (got["drinks_per_drinking_day"].value, got["drinks_per_drinking_day"].units) == (
        Decimal("2.7"),
        36,
    )
    weekly = got["weekly_drinks_change"]
    assert (weekly.baseline, weekly.follow_up, weekly.value) == (
        Decimal("12.3"),
        Decimal("1.8"),
        Decimal("-10.5"),
    )
    assert (got["who_improved_1_level"].value, got["who_improved_1_level"].numerator) == (Decimal(100), 12)
    assert got["who_improved_2_levels"].value == Decimal(0)  # 0 may be shown
    assert got["craving_change"].value == Decimal("-4.0")
    assert got["engagement"].value == Decimal(16)  # 96 / 600 member-days
    assert got["psnhdd"].value == Decimal(0)
    assert got["adherence"].value is None and got["adherence"].members == 0  # nobody on a plan
    assert got["retention_30d"].value == Decimal(0)  # 12 eligible, none retained
    assert not any(m.suppressed for m in got.values())
    assert report.row_count == len(o.MEASURES)


def test_a_cohort_of_8_is_suppressed_whole():
    totals = o.cohort_totals(_cohort(8), period=PERIOD, breakdowns=[], now=NOW)
    report = o.build_report(totals, period=PERIOD, breakdowns=[])
    (cell,) = report.cells
    assert cell.suppressed
    assert all(m.suppressed and m.value is None and m.members is None for m in cell.measures)


def test_breakdowns_complement_a_small_category():
    # 12 abstain members and 3 moderate: the moderate row is small, and hiding it alone would let
    # 15 - 12 = 3 be read off the total, so the abstain row is hidden with it.
    members = _cohort(12) + [hand_member(goal_type="moderate") for _ in range(3)]
    breakdowns = [o.Breakdown.GOAL_TYPE, o.Breakdown.PROGRAM_MONTH]
    totals = o.cohort_totals(members, period=PERIOD, breakdowns=breakdowns, now=NOW)
    report = o.build_report(totals, period=PERIOD, breakdowns=breakdowns)
    assert _values(report, "total", "all")["members"].value == 15
    assert _values(report, "goal_type", "moderate")["members"].suppressed
    assert _values(report, "goal_type", "abstain")["members"].suppressed
    month_1 = _values(report, "program_month", "1")
    assert month_1["members"].value == 15
    assert "retention_30d" not in month_1  # not given per program month
    assert month_1["pda"].value == Decimal("62.5")
