"""GET /me/summary and the outcome measures behind it: missing days are missing, never zero."""

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal as D

import pytest

from companion.domain.drinking import (
    DrinkItem,
    DrinkKind,
    LogSource,
    WhoLevel,
    grams_from_standard_drinks,
    grams_of,
    is_heavy_day,
    log_source,
)
from companion.domain.localtime import local_date
from companion.domain.plans import CheckIn, CheckInStatus, Plan, PlanStep
from companion.domain.summary import (
    AdherenceSummary,
    CravingRating,
    CravingSummary,
    DayLog,
    Goal,
    GoalType,
    Last30Days,
    Measure,
    MemberSummary,
    Streak,
    Trend,
    WeekSummary,
    adherence_rate,
    adherence_summary,
    craving_summary,
    drinks_per_drinking_day,
    last_30_days,
    mean_grams_per_day,
    mean_weekly_drinks,
    no_heavy_drinking_days,
    percent_days_abstinent,
    percent_heavy_days,
    streaks,
    summarize,
    week_summary,
    who_risk_level,
    within_goal,
)
from companion.domain.types import DateRange

TODAY = date(2026, 11, 20)
NY = "America/New_York"
EST, EDT = timezone(timedelta(hours=-5)), timezone(timedelta(hours=-4))
ABSTAIN = Goal(GoalType.ABSTAIN)
MODERATE_7 = Goal(GoalType.MODERATE, D("7"))
MODERATE_14 = Goal(GoalType.MODERATE, D("14"))
PLAN_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
TAKEN, SKIPPED = CheckInStatus.TAKEN, CheckInStatus.SKIPPED


def ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def logs(*grams_by_days_ago: float | str | None, today: date = TODAY) -> list[DayLog]:
    """Logs from today backwards: a number is that day's grams (heavy for a woman), None is missing."""
    return [
        DayLog(today - timedelta(days=n), D(str(g)), is_heavy_day(D(str(g)), "female"))
        for n, g in enumerate(grams_by_days_ago)
        if g is not None
    ]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Streaks.


@pytest.mark.parametrize(("grams_by_days_ago", "alcohol_free"), [
    ((),                        0),
    ((None, 0, 0, 0),           3),    # today not logged yet: counts from yesterday
    ((0, 0, 0),                 3),
    ((14, 0, 0),                0),    # today logged with a drink
    ((None, None, 0, 0),        0),    # yesterday missing: the streak is broken
    ((0, None, 0, 0),           1),    # a missing day is not an alcohol-free day
    ((None, 14, 0),             0),
    ((0, 0, 14, 0),             2),
])  # fmt: skip
def test_alcohol_free_streak(grams_by_days_ago, alcohol_free):
    streak = streaks(logs(*grams_by_days_ago), goal=ABSTAIN, country="US", today=TODAY)
    assert streak == Streak(alcohol_free, alcohol_free)  # abstain: within goal means alcohol-free


@pytest.mark.parametrize(("grams_by_days_ago", "goal", "within_goal"), [
    ((None, 14, 14, 14),            MODERATE_7,  3),
    ((28, 28, 28, 14),              MODERATE_7,  4),   # today's 7 days: 98 g = 7.0 drinks, at the limit
    ((28, 28, 28, 28),              MODERATE_7,  0),   # today's 7 days: 112 g = 8.0 > 7
    ((0, 28, 28, 28, 28),           MODERATE_7,  0),   # a dry day is still over the week's limit
    ((None, 28, 28, 28, 28),        MODERATE_7,  0),
    ((0, 0, 0, 0, 0, 0, 0, 28, 28, 28, 28),
                                    MODERATE_7,  4),   # dry days 4-6 still have 112 g in their 7 days
    ((56, 0, 0),                    MODERATE_7,  0),   # a heavy day is never within goal
    ((0, 56, 0),                    MODERATE_7,  1),
    ((0, 0, None, 0),               MODERATE_7,  2),
    ((14, 0),                       Goal(GoalType.MODERATE, D("0.5")),  0),   # today logged, over: 0
    ((None, 0, 14, 0),              ABSTAIN,     1),
])  # fmt: skip
def test_within_goal_streak(grams_by_days_ago, goal, within_goal):
    streak = streaks(logs(*grams_by_days_ago), goal=goal, country="US", today=TODAY)
    assert streak.within_goal_days == within_goal


def test_within_goal_compares_in_the_members_standard_drinks():
    # 98.40 g in a week is 7.03 US drinks, shown as 7.0: within a limit of 7. In the UK it is 12.3 units.
    week = {log.day: log for log in logs(28.40, 14, 56)}
    assert within_goal(TODAY, week, goal=MODERATE_7, country="US") is True
    assert within_goal(TODAY, week, goal=Goal(GoalType.MODERATE, D("12")), country="GB") is False
    assert within_goal(ago(5), week, goal=MODERATE_7, country="US") is False  # not logged


def test_logs_after_today_are_ignored_and_duplicates_are_bugs():
    future = [DayLog(TODAY + timedelta(days=1), D("0"), False)]
    assert streaks(future + logs(0), goal=ABSTAIN, country="US", today=TODAY) == Streak(1, 1)
    with pytest.raises(ValueError):
        streaks(logs(0, 0) + logs(0), goal=ABSTAIN, country="US", today=TODAY)


# Week and last 30 days.


def test_week_sums_grams_before_converting():
    # Three days of 4.66 g are 0.3 drinks each as shown, but 13.98 g = 1.0 drink together.
    week = week_summary(logs(4.66, 4.66, 4.66), goal=MODERATE_7, country="US", today=TODAY)
    assert week == WeekSummary(3, D("1.0"), D("7"), 0, False)


@pytest.mark.parametrize(("grams_by_days_ago", "goal", "country", "expected"), [
    # Nothing logged: unknown, never 0 drinks (issue 19).
    ((),                              ABSTAIN,     "US",  WeekSummary(0, None, None, None, None)),
    ((None, None, None, None, None, None, None, 140),
                                      MODERATE_7,  "US",  WeekSummary(0, None, D("7"), None, None)),
    ((14, None, 56, 0, 0, 0, 70),     MODERATE_7,  "US",  WeekSummary(6, D("10.0"), D("7"), 2, True)),
    ((0, 0, 0, 0, 0, 0, 0, 140),      MODERATE_7,  "US",  WeekSummary(7, D("0.0"), D("7"), 0, False)),
    ((16, 8),                         MODERATE_14, "GB",  WeekSummary(2, D("3.0"), D("14"), 0, False)),
    # NIAAA weekly use is in US drinks: 112 g (8 US drinks, 14 UK units) is over for a woman anywhere.
    ((56, 56),                        MODERATE_14, "GB",  WeekSummary(2, D("14.0"), D("14"), 2, True)),
    ((55.99, 56),                     MODERATE_14, "US",  WeekSummary(2, D("8.0"), D("14"), 1, False)),
])  # fmt: skip
def test_week_summary(grams_by_days_ago, goal, country, expected):
    assert (
        week_summary(logs(*grams_by_days_ago), goal=goal, country=country, today=TODAY, sex="female")
        == expected
    )


@pytest.mark.parametrize(("sex", "grams", "over"), [
    ("male", "209.99", False), ("male", "210", True), ("female", "111.99", False), ("female", "112", True),
    ("unspecified", "112", True), (None, "112", True),
])  # fmt: skip
def test_niaaa_weekly_follows_sex(sex, grams, over):
    week = week_summary(logs(grams), goal=ABSTAIN, country="US", today=TODAY, sex=sex)
    assert week.over_niaaa_weekly is over


@pytest.mark.parametrize(("grams_by_days_ago", "expected"), [
    ((),                                  Last30Days(0, 0, 0, None)),
    ((None, 0, 0),                        Last30Days(2, 2, 0, None)),       # no drinking day: no DDD
    ((14, 0, 56, None, 70),               Last30Days(4, 1, 2, D("3.3"))),   # 140 g / 3 days / 14 = 3.33
    ((0,) * 29 + (14,),                   Last30Days(30, 29, 0, D("1.0"))), # day 29 ago is in
    ((0,) * 30 + (14,),                   Last30Days(30, 30, 0, None)),     # day 30 ago is out
])  # fmt: skip
def test_last_30_days(grams_by_days_ago, expected):
    assert last_30_days(logs(*grams_by_days_ago), country="US", today=TODAY) == expected


# Cravings.


def _ratings(recent: list[int], previous: list[int]) -> list[CravingRating]:
    return [CravingRating(ago(i % 7), r) for i, r in enumerate(recent)] + [
        CravingRating(ago(7 + i % 7), r) for i, r in enumerate(previous)
    ]


@pytest.mark.parametrize(("recent", "previous", "expected"), [
    ([5, 6],       [4],       CravingSummary(D("5.5"), D("4.0"), Trend.RISING)),
    ([4, 5],       [4],       CravingSummary(D("4.5"), D("4.0"), Trend.RISING)),    # +0.5 is a change
    ([4, 4, 5],    [4],       CravingSummary(D("4.3"), D("4.0"), Trend.FLAT)),      # +0.33
    ([3],          [3, 4],    CravingSummary(D("3.0"), D("3.5"), Trend.FALLING)),   # -0.5
    ([3, 4, 4],    [4],       CravingSummary(D("3.7"), D("4.0"), Trend.FLAT)),      # -0.33
    ([2, 2, 2, 3], [10],      CravingSummary(D("2.3"), D("10.0"), Trend.FALLING)),  # 2.25 half up
    ([],           [5],       CravingSummary(None, D("5.0"), None)),
    ([5],          [],        CravingSummary(D("5.0"), None, None)),
    ([],           [],        CravingSummary(None, None, None)),
    ([0] * 8,      [0] * 8,   CravingSummary(D("0.0"), D("0.0"), Trend.FLAT)),
])  # fmt: skip
def test_craving_summary(recent, previous, expected):
    assert craving_summary(_ratings(recent, previous), today=TODAY) == expected


def test_cravings_outside_the_two_weeks_are_ignored():
    ratings = [CravingRating(ago(14), 10), CravingRating(ago(-1), 10), CravingRating(ago(0), 2)]
    assert craving_summary(ratings, today=TODAY) == CravingSummary(D("2.0"), None, None)
    with pytest.raises(ValueError):
        CravingRating(TODAY, 11)


# Adherence.

_TWICE = Plan(PLAN_ID, "naltrexone", D("50"), (time(8), time(20)), date(2026, 11, 1))
_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=EST)  # 17:00Z: today's 08:00 is due, 20:00 is not


def _slot(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), EST)  # November after the 1st: EST


def _in(n: int, hour: int, status: CheckInStatus = TAKEN, *, tz: timezone = EST) -> CheckIn:
    """A check-in for the slot `n` days ago at `hour`, named with offset `tz`."""
    return CheckIn(PLAN_ID, datetime.combine(ago(n), time(hour), tz), status)


@pytest.mark.parametrize(("checkins", "expected"), [
    # 6 full days x 2 + today's 08:00 = 13 doses due.
    ([],                                               AdherenceSummary(0, 13, D("0.00"))),
    ([_in(0, 8)],                                      AdherenceSummary(1, 13, D("0.08"))),
    ([_in(n, h) for n in range(1, 7) for h in (8, 20)]
     + [_in(0, 8)],                                    AdherenceSummary(13, 13, D("1.00"))),
    ([_in(0, 20)],                                     AdherenceSummary(1, 14, D("0.07"))),  # early
    ([_in(0, 20, SKIPPED)],                            AdherenceSummary(0, 14, D("0.00"))),
    ([_in(1, 8, SKIPPED)],                             AdherenceSummary(0, 13, D("0.00"))),
    ([_in(7, 8)],                                      AdherenceSummary(0, 13, D("0.00"))),  # too old
    ([_in(1, 8, tz=EDT)],                              AdherenceSummary(0, 13, D("0.00"))),  # stale offset
    ([CheckIn(uuid.uuid4(), _slot(ago(1), 8), TAKEN)], AdherenceSummary(0, 13, D("0.00"))),  # other plan
    ([_in(1, 8, tz=UTC), _in(1, 8)],                   AdherenceSummary(1, 13, D("0.08"))),  # 08:00Z: none
    ([CheckIn(PLAN_ID, _slot(ago(1), 8).astimezone(UTC), TAKEN),
      _in(1, 8)],                                      AdherenceSummary(1, 13, D("0.08"))),  # one slot
])  # fmt: skip
def test_adherence_summary(checkins, expected):
    assert adherence_summary([_TWICE], checkins, zone=NY, now=_NOW) == expected


def test_no_plan_in_force_means_no_rate():
    future = Plan(PLAN_ID, "naltrexone", D("50"), (time(8),), TODAY + timedelta(days=1))
    assert adherence_summary([future], [], zone=NY, now=_NOW) == AdherenceSummary(0, 0, None)
    assert adherence_summary([], [], zone=NY, now=_NOW) == AdherenceSummary(0, 0, None)


def test_adherence_rate_over_any_window():
    checkins = [CheckIn(PLAN_ID, _slot(date(2026, 11, d), 8), TAKEN) for d in range(2, 12)]
    november = DateRange(date(2026, 11, 1), date(2026, 11, 30))
    # Due by _NOW: Nov 1-19 at 2 a day (38) + Nov 20 08:00 (1) = 39; taken Nov 2-11 08:00: 10 / 39 = 0.256
    assert adherence_rate([_TWICE], checkins, zone=NY, window=november, now=_NOW) == Measure(D("0.26"), 39)


# Outcome measures.

_WINDOW = DateRange(ago(13), TODAY)
#: 10 logged days in the 14: 6 dry, 4 drinking (14, 28, 56 heavy, 70 heavy); one log before the window.
_OUTCOME_LOGS = logs(0, None, 14, 0, 28, None, 0, 56, 0, None, 70, 0, None, 0, 200)


@pytest.mark.parametrize(("measure", "expected"), [
    (lambda d, w: percent_days_abstinent(d, w),          Measure(D("60.0"), 10)),
    (lambda d, w: percent_heavy_days(d, w),              Measure(D("20.0"), 10)),
    (lambda d, w: no_heavy_drinking_days(d, w),          Measure(False, 10)),
    (lambda d, w: drinks_per_drinking_day(d, w, "US"),   Measure(D("3.0"), 4)),     # 168 g / 4 / 14
    (lambda d, w: mean_weekly_drinks(d, w, "US"),        Measure(D("8.4"), 10)),    # 168 g / 10 x 7 / 14
    (lambda d, w: mean_grams_per_day(d, w),              Measure(D("16.8"), 10)),
    (lambda d, w: who_risk_level(d, w, "female"),        Measure(WhoLevel.LOW, 10)),
    (lambda d, w: who_risk_level(d, w, "male"),          Measure(WhoLevel.LOW, 10)),
])  # fmt: skip
def test_outcome_measures(measure, expected):
    assert measure(_OUTCOME_LOGS, _WINDOW) == expected


@pytest.mark.parametrize("measure", [
    lambda d, w: percent_days_abstinent(d, w),
    lambda d, w: percent_heavy_days(d, w),
    lambda d, w: no_heavy_drinking_days(d, w),
    lambda d, w: drinks_per_drinking_day(d, w, "US"),
    lambda d, w: mean_weekly_drinks(d, w, "US"),
    lambda d, w: mean_grams_per_day(d, w),
    lambda d, w: who_risk_level(d, w, "male"),
])  # fmt: skip
def test_outcome_measures_over_nothing_are_none(measure):
    assert measure(logs(None, None, 14, today=ago(20)), _WINDOW) == Measure(None, 0)


def test_no_heavy_days_and_who_levels():
    assert no_heavy_drinking_days(logs(0, 14, 28), _WINDOW) == Measure(True, 3)
    assert who_risk_level(logs(70, 28), _WINDOW, "female") == Measure(WhoLevel.HIGH, 2)  # 49 g/day
    assert who_risk_level(logs(70, 28), _WINDOW, "male") == Measure(WhoLevel.MEDIUM, 2)


@pytest.mark.parametrize(("goal_type", "limit"), [
    (GoalType.MODERATE,  None),
    (GoalType.ABSTAIN,   D("7")),
    (GoalType.MODERATE,  D("-1")),
])  # fmt: skip
def test_inconsistent_goals_are_bugs(goal_type, limit):
    with pytest.raises(ValueError):
        Goal(goal_type, limit)


# A whole summary, worked by hand.


def test_hand_computed_summary_across_the_fall_back_with_a_baclofen_taper():
    """A woman in New York, US drinks (14 g), goal: moderate, 7 a week. As of Tue 2026-11-03, 12:00 EST.

    Windows: week = Oct 28..Nov 3; 30 days = Oct 5..Nov 3; cravings Oct 28..Nov 3 vs Oct 21..27.
    The clocks fell back on Sun Nov 1 (02:00 EDT -> 01:00 EST), inside every window.
    """
    now = datetime(2026, 11, 3, 12, 0, tzinfo=EST)  # 17:00Z
    today = date(2026, 11, 3)
    beer = DrinkItem(DrinkKind.BEER, 355, D("5"), 1)  # 14.00475 g
    wine = DrinkItem(DrinkKind.WINE, 150, D("12"), 2)  # 2 x 14.202 = 28.404 g

    def drinks(n: str) -> D:
        return grams_from_standard_drinks(D(n), "US")

    entries = {  # day: (grams, entered on)
        date(2026, 10, 1): (drinks("7"), date(2026, 10, 1)),  # before the 30 days
        date(2026, 10, 4): (drinks("2"), date(2026, 10, 4)),  # day 31 back: out
        date(2026, 10, 10): (drinks("5"), date(2026, 10, 10)),  # 70 g: heavy
        date(2026, 10, 12): (drinks("2"), date(2026, 10, 12)),  # 28 g
        **{date(2026, 10, d): (drinks("0"), date(2026, 10, d)) for d in range(15, 21)},  # 6 dry days
        # Oct 21: nothing logged (missing, not dry)
        date(2026, 10, 22): (drinks("3"), date(2026, 10, 22)),  # 42 g
        **{date(2026, 10, d): (drinks("0"), date(2026, 10, d)) for d in range(23, 27)},  # 4 dry days
        date(2026, 10, 27): (drinks("4"), date(2026, 10, 28)),  # 56 g: heavy for a woman
        date(2026, 10, 28): (drinks("0"), date(2026, 10, 28)),
        date(2026, 10, 29): (grams_of([beer]), date(2026, 11, 2)),  # 14.00 g, entered 4 days later
        date(2026, 10, 30): (drinks("0"), date(2026, 10, 30)),
        date(2026, 10, 31): (grams_of([wine]), date(2026, 10, 31)),  # 28.40 g
        date(2026, 11, 1): (drinks("0"), date(2026, 11, 2)),
        date(2026, 11, 2): (drinks("0"), date(2026, 11, 2)),
        # Nov 3 (today): not logged yet.
    }
    assert grams_of([beer]) == D("14.00") and grams_of([wine]) == D("28.40")
    assert log_source(date(2026, 10, 29), today=date(2026, 11, 2)) is LogSource.RECALL
    assert log_source(date(2026, 11, 1), today=date(2026, 11, 2)) is LogSource.REALTIME
    day_logs = [DayLog(day, g, is_heavy_day(g, "female")) for day, (g, _entered) in entries.items()]

    cravings = [  # (instant, intensity) -> the craving's local date
        (utc(2026, 10, 20, 16, 0), 9),  # Oct 20: before both windows
        (utc(2026, 10, 21, 23, 0), 7),  # Oct 21 19:00 EDT          previous week
        (utc(2026, 10, 24, 14, 0), 6),  # Oct 24                    previous week
        (utc(2026, 10, 28, 3, 30), 8),  # Oct 27 23:30 EDT (UTC says Oct 28): previous week
        (utc(2026, 10, 28, 22, 0), 6),  # Oct 28                    this week
        (utc(2026, 10, 30, 12, 0), 4),  # Oct 30
        (utc(2026, 11, 1, 5, 30), 3),  # Nov 1 01:30 EDT (the first 01:30)
        (utc(2026, 11, 1, 6, 30), 5),  # Nov 1 01:30 EST (the second)
        (utc(2026, 11, 3, 14, 0), 2),  # Nov 3 09:00 EST
    ]
    ratings = [CravingRating(local_date(at, NY), n) for at, n in cravings]

    # Baclofen 20 mg at 08:00/14:00/20:00 (60 mg/day); from Oct 30 10 mg at 08:00/20:00 (20);
    # from Nov 2 5 mg at 08:00/20:00 (10); ends Nov 8. A taper.
    plan = Plan(
        PLAN_ID, "baclofen", D("20"), (time(8), time(14), time(20)), date(2026, 10, 1), date(2026, 11, 8),
        steps=(
            PlanStep(date(2026, 10, 30), D("10"), (time(8), time(20))),
            PlanStep(date(2026, 11, 2), D("5"), (time(8), time(20))),
        ),
    )  # fmt: skip

    def at(day: int, hour: int, tz: timezone) -> datetime:
        return datetime(2026, 10 if day > 15 else 11, day, hour, 0, tzinfo=tz)

    checkins = [
        CheckIn(PLAN_ID, at(27, 20, EDT), TAKEN),  # Oct 27's slot (00:00Z on Oct 28): before the week
        CheckIn(PLAN_ID, at(28, 8, EDT), TAKEN),  # Oct 28: 3 of 3
        CheckIn(PLAN_ID, at(28, 14, EDT), TAKEN),
        CheckIn(PLAN_ID, at(28, 20, EDT), TAKEN),
        CheckIn(PLAN_ID, at(29, 8, EDT), TAKEN),  # Oct 29: 1 of 3 (14:00 skipped, 20:00 missed)
        CheckIn(PLAN_ID, at(29, 14, EDT), SKIPPED),
        CheckIn(PLAN_ID, at(30, 8, EDT), TAKEN),  # Oct 30: 2 of 2
        CheckIn(PLAN_ID, at(30, 14, EDT), TAKEN),  #   14:00 is no longer scheduled: ignored
        CheckIn(PLAN_ID, at(30, 20, EDT), TAKEN),
        CheckIn(PLAN_ID, at(31, 8, EDT), TAKEN),  # Oct 31: 1 of 2
        CheckIn(PLAN_ID, at(1, 8, EST), TAKEN),  # Nov 1: 08:00 EST = 13:00Z
        CheckIn(PLAN_ID, at(1, 20, EDT), TAKEN),  #   stale -04:00: 00:00Z is no slot (01:00Z is)
        CheckIn(PLAN_ID, at(2, 8, EST), TAKEN),  # Nov 2: 2 of 2
        CheckIn(PLAN_ID, at(2, 20, EST), TAKEN),
        CheckIn(PLAN_ID, at(3, 8, EST), TAKEN),  # Nov 3: 08:00 is due; 20:00 is not yet
    ]

    summary = summarize(
        now=now, zone=NY, country="US", goal=MODERATE_7,
        day_logs=day_logs, cravings=ratings, checkins=checkins, plans=[plan],
    )  # fmt: skip

    assert summary == MemberSummary(
        as_of=today,
        streak=Streak(
            # Nov 3 unlogged, so from Nov 2: Nov 2 (0), Nov 1 (0), then Oct 31 (28.40 g) stops it.
            alcohol_free_days=2,
            # Each day logged, not heavy, and its 7 days <= 7.0 drinks:
            #   Nov 2  Oct 27..Nov 2: 56 + 0 + 14 + 0 + 28.40 + 0 + 0 = 98.40 g = 7.03 -> 7.0  ok
            #   Nov 1  Oct 26..Nov 1: 0 + 56 + 0 + 14 + 0 + 28.40 + 0 = 98.40 g -> 7.0        ok
            #   Oct 31 Oct 25..31:    0 + 0 + 56 + 0 + 14 + 0 + 28.40 = 98.40 g -> 7.0        ok
            #   Oct 30 Oct 24..30:    56 + 14 = 70 g = 5.0                                    ok
            #   Oct 29 Oct 23..29:    56 + 14 = 70 g = 5.0                                    ok
            #   Oct 28 Oct 22..28:    42 + 56 = 98 g = 7.0                                    ok
            #   Oct 27 heavy (56 g >= 56 g)                                                   stop
            within_goal_days=6,
        ),
        # Oct 28..Nov 3: 0 + 14.00 + 0 + 28.40 + 0 + 0 (+ Nov 3 missing) = 42.40 g / 14 = 3.03 -> 3.0
        # 6 days logged; 42.40 g is under NIAAA's 112 g (sex unknown: the women's threshold).
        week=WeekSummary(
            days_logged=6,
            standard_drinks=D("3.0"),
            weekly_limit=D("7"),
            heavy_days=0,
            over_niaaa_weekly=False,
        ),
        last_30_days=Last30Days(
            # Oct 5..Nov 3: Oct 10, 12, 15-20 (6), 22, 23-26 (4), 27, 28, 29, 30, 31, Nov 1, Nov 2 = 20
            days_logged=20,
            # Oct 15-20 (6) + Oct 23-26 (4) + Oct 28, 30, Nov 1, Nov 2 (4) = 14
            alcohol_free_days=14,
            # Oct 10 (70 g) and Oct 27 (56 g)
            heavy_days=2,
            # Drinking days Oct 10, 12, 22, 27, 29, 31: 70 + 28 + 42 + 56 + 14 + 28.40 = 238.40 g
            # 238.40 / 6 = 39.73 g = 2.84 drinks -> 2.8
            drinks_per_drinking_day=D("2.8"),
        ),
        cravings=CravingSummary(
            avg_7d=D("4.0"),  # (6 + 4 + 3 + 5 + 2) / 5 = 20 / 5
            avg_prev_7d=D("7.0"),  # (7 + 6 + 8) / 3 = 21 / 3
            trend=Trend.FALLING,  # 4.0 - 7.0 = -3.0 <= -0.5
        ),
        adherence=AdherenceSummary(
            # Scheduled: Oct 28, 29 at 3 a day (6); Oct 30, 31, Nov 1, 2 at 2 a day (8); Nov 3 08:00 (1) = 15
            # Taken: 3 + 1 + 2 + 1 + 1 + 2 + 1 = 11; 11 / 15 = 0.733 -> 0.73
            taken=11,
            scheduled=15,
            rate_7d=D("0.73"),
        ),
    )
