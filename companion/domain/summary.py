"""The member summary (`GET /me/summary`) and the outcome measures behind it.

One implementation for the member's app, the coach view and the insurer export, so they never
disagree. Rules every function here keeps (DOMAIN.md):

* A day with no log is *missing*, never zero drinks: it breaks a streak and is left out of every
  denominator.
* Every measure reports its denominator; a measure over nothing is None, not 0.
* Windows are whole local days ending on the member's local today, today included.
* Sums are taken in grams and converted to standard drinks once, in the member's country's size.

What callers load: drink logs for the streaks as far back as a streak may be counted (a streak stops at
the oldest log given; within-goal days also need the 6 days before it), and at least the last 30 days;
cravings for the last 14 local days; the member's plans; check-ins whose slots fall in the last 7 local
days (`localtime.day_bounds_utc(today - 6 days)[0]` onwards).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Generic, TypeVar
from uuid import UUID

from companion.domain import localtime
from companion.domain.drinking import WhoLevel, over_niaaa_weekly, standard_drinks_from_grams, who_level
from companion.domain.plans import CheckIn, CheckInStatus, Plan, dose_slots
from companion.domain.types import DateRange

#: Days in the summary's `week` and in the adherence and craving windows, today included.
WEEK_DAYS = 7
#: Days in `last_30_days`, today included.
MONTH_DAYS = 30
#: A craving trend is flat unless the last 7 days' mean differs from the 7 before by at least this (ours).
CRAVING_TREND_MIN_CHANGE = Decimal("0.5")
#: Craving means are shown to one decimal, like the 0-10 slider's labels.
CRAVING_QUANTUM = Decimal("0.1")
#: Rates (0-1) are given to two decimals, percentages to one.
RATE_QUANTUM = Decimal("0.01")
PERCENT_QUANTUM = Decimal("0.1")
#: Craving intensity range (the daily slider, DOMAIN.md).
CRAVING_MIN, CRAVING_MAX = 0, 10

T = TypeVar("T")


class GoalType(enum.StrEnum):
    ABSTAIN = "abstain"
    MODERATE = "moderate"


class Trend(enum.StrEnum):
    RISING = "rising"
    FALLING = "falling"
    FLAT = "flat"


@dataclass(frozen=True, slots=True)
class Goal:
    """The member's goal; `weekly_limit` (moderate only) is in the member's country's standard drinks."""

    type: GoalType
    weekly_limit: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.type == GoalType.MODERATE) != (self.weekly_limit is not None):
            raise ValueError("a weekly_limit goes with a moderate goal, and only with one")
        if self.weekly_limit is not None and self.weekly_limit < 0:
            raise ValueError("negative weekly_limit")


@dataclass(frozen=True, slots=True)
class DayLog:
    """One logged local day. `heavy` is as stored with the log (it depends on the member's sex)."""

    day: date
    grams: Decimal
    heavy: bool


@dataclass(frozen=True, slots=True)
class CravingRating:
    """One craving rating on its local day (the craving's `date`)."""

    day: date
    intensity: int

    def __post_init__(self) -> None:
        if not CRAVING_MIN <= self.intensity <= CRAVING_MAX:
            raise ValueError(f"craving intensity out of range: {self.intensity}")


@dataclass(frozen=True, slots=True)
class Measure(Generic[T]):
    """An outcome measure and its denominator; `value` is None when the denominator is 0."""

    value: T | None
    denominator: int


# The shapes of GET /me/summary (API.md), field for field.


@dataclass(frozen=True, slots=True)
class Streak:
    alcohol_free_days: int
    within_goal_days: int


@dataclass(frozen=True, slots=True)
class WeekSummary:
    #: Local days of the 7 with a drink log; days without one are missing, never "0 drinks".
    days_logged: int
    #: None when no day is logged (unknown, not zero).
    standard_drinks: Decimal | None
    #: None for an abstain goal (the member has no drink limit to show), as on the member's goal.
    weekly_limit: Decimal | None
    #: None when no day is logged.
    heavy_days: int | None
    #: The logged days reach NIAAA's heavy weekly use for the member's sex; None when none is logged.
    over_niaaa_weekly: bool | None


@dataclass(frozen=True, slots=True)
class Last30Days:
    days_logged: int
    alcohol_free_days: int
    heavy_days: int
    drinks_per_drinking_day: Decimal | None


@dataclass(frozen=True, slots=True)
class CravingSummary:
    avg_7d: Decimal | None
    avg_prev_7d: Decimal | None
    #: None when either week has no rating: a trend from one side would be made up.
    trend: Trend | None


@dataclass(frozen=True, slots=True)
class AdherenceSummary:
    taken: int
    scheduled: int
    rate_7d: Decimal | None


@dataclass(frozen=True, slots=True)
class MemberSummary:
    as_of: date
    streak: Streak
    week: WeekSummary
    last_30_days: Last30Days
    cravings: CravingSummary
    adherence: AdherenceSummary


# Helpers.


def _by_day(day_logs: Iterable[DayLog]) -> dict[date, DayLog]:
    logs: dict[date, DayLog] = {}
    for log in day_logs:
        if log.day in logs:
            raise ValueError(f"two logs for {log.day}")  # one log per member and day is the record
        logs[log.day] = log
    return logs


def _in(day_logs: Iterable[DayLog], window: DateRange) -> list[DayLog]:
    return [log for log in day_logs if log.day in window]


def _grams(logs: Iterable[DayLog]) -> Decimal:
    return sum((log.grams for log in logs), start=Decimal(0))


def _ratio(numerator: Decimal | int, denominator: int, quantum: Decimal, scale: int = 1) -> Decimal:
    return (Decimal(numerator) * scale / denominator).quantize(quantum, rounding=ROUND_HALF_UP)


# Outcome measures (DOMAIN.md): the coach view and insurer exports call these with their own windows.


def percent_days_abstinent(day_logs: Sequence[DayLog], window: DateRange) -> Measure[Decimal]:
    """PDA: logged days with 0 g / logged days in `window`, as a percentage to 0.1."""
    logged = _in(day_logs, window)
    if not logged:
        return Measure(None, 0)
    return Measure(
        _ratio(sum(log.grams == 0 for log in logged), len(logged), PERCENT_QUANTUM, 100), len(logged)
    )


def percent_heavy_days(day_logs: Sequence[DayLog], window: DateRange) -> Measure[Decimal]:
    """PHDD: heavy days / logged days in `window`, as a percentage to 0.1."""
    logged = _in(day_logs, window)
    if not logged:
        return Measure(None, 0)
    return Measure(_ratio(sum(log.heavy for log in logged), len(logged), PERCENT_QUANTUM, 100), len(logged))


def no_heavy_drinking_days(day_logs: Sequence[DayLog], window: DateRange) -> Measure[bool]:
    """NHDD: True when no logged day in `window` is heavy; None when nothing was logged."""
    logged = _in(day_logs, window)
    return Measure(not any(log.heavy for log in logged) if logged else None, len(logged))


def drinks_per_drinking_day(day_logs: Sequence[DayLog], window: DateRange, country: str) -> Measure[Decimal]:
    """DDD: standard drinks per drinking day (a logged day with any alcohol) in `window`."""
    drinking = [log for log in _in(day_logs, window) if log.grams > 0]
    if not drinking:
        return Measure(None, 0)
    return Measure(standard_drinks_from_grams(_grams(drinking) / len(drinking), country), len(drinking))


def mean_weekly_drinks(day_logs: Sequence[DayLog], window: DateRange, country: str) -> Measure[Decimal]:
    """Mean standard drinks per 7 days over the *logged* days of `window` (missing days are not zeros).

    The mean per logged day, times 7; the denominator is the number of logged days.
    """
    logged = _in(day_logs, window)
    if not logged:
        return Measure(None, 0)
    return Measure(standard_drinks_from_grams(_grams(logged) * WEEK_DAYS / len(logged), country), len(logged))


def mean_grams_per_day(day_logs: Sequence[DayLog], window: DateRange) -> Measure[Decimal]:
    """Mean grams of ethanol per logged day in `window` (unrounded): the WHO risk level's input."""
    logged = _in(day_logs, window)
    return Measure(_grams(logged) / len(logged) if logged else None, len(logged))


def who_risk_level(day_logs: Sequence[DayLog], window: DateRange, sex: str | None) -> Measure[WhoLevel]:
    """WHO risk drinking level of the mean grams per logged day in `window`."""
    mean = mean_grams_per_day(day_logs, window)
    return Measure(None if mean.value is None else who_level(mean.value, sex), mean.denominator)


def adherence_rate(
    plans: Sequence[Plan], checkins: Sequence[CheckIn], *, zone: str, window: DateRange, now: datetime
) -> Measure[Decimal]:
    """Doses taken / doses scheduled by the plan in force on each local day of `window`, as a 0-1 rate.

    A slot counts once it is due (scheduled_for <= `now`) or already answered (a dose taken a little
    early counts at once). Check-ins that name no slot of a plan in force (a stale offset, a time the
    plan no longer has) are ignored, so taken <= scheduled. The denominator is the doses scheduled.
    """
    taken, scheduled = _dose_counts(plans, checkins, zone=zone, window=window, now=now)
    return Measure(_ratio(taken, scheduled, RATE_QUANTUM) if scheduled else None, scheduled)


def dose_counts(
    plans: Sequence[Plan], checkins: Sequence[CheckIn], *, zone: str, window: DateRange, now: datetime
) -> tuple[int, int]:
    """(doses taken, doses scheduled) in `window`, counted as `adherence_rate` counts them: the counts
    a cohort adds up (insurer reports pool them over members)."""
    return _dose_counts(plans, checkins, zone=zone, window=window, now=now)


def _dose_counts(
    plans: Sequence[Plan], checkins: Sequence[CheckIn], *, zone: str, window: DateRange, now: datetime
) -> tuple[int, int]:
    by_day = dose_counts_by_day(plans, checkins, zone=zone, window=window, now=now)
    return sum(t for t, _ in by_day.values()), sum(s for _, s in by_day.values())


def dose_counts_by_day(
    plans: Sequence[Plan], checkins: Sequence[CheckIn], *, zone: str, window: DateRange, now: datetime
) -> dict[date, tuple[int, int]]:
    """(doses taken, doses scheduled) on each local day of `window`, counted as `adherence_rate`
    counts them (the coach's adherence chart)."""
    now_utc = localtime.to_utc(now)
    answers: dict[tuple[UUID, datetime], set[CheckInStatus]] = {}
    for checkin in checkins:
        key = (checkin.plan_id, localtime.to_utc(checkin.scheduled_for))
        answers.setdefault(key, set()).add(checkin.status)
    counts: dict[date, tuple[int, int]] = {}
    for day in window.days():
        taken = scheduled = 0
        for plan in plans:
            for slot in dose_slots(plan, day, zone):
                statuses = answers.get((plan.id, slot.scheduled_for), set())
                if slot.scheduled_for <= now_utc or statuses:
                    scheduled += 1
                    taken += CheckInStatus.TAKEN in statuses
        counts[day] = (taken, scheduled)
    return counts


# The summary's parts.


def within_goal(day: date, logs: Mapping[date, DayLog], *, goal: Goal, country: str) -> bool:
    """Whether `day` was logged (`logs`: the member's logs by day) and within the member's goal.

    Abstain: 0 g. Moderate: not a heavy day, and the standard drinks of the 7 days ending on `day`
    (missing days add nothing) at most `weekly_limit`, compared as the member sees them (to 0.1).
    A daily share of the weekly limit would punish one planned evening out, so the week is what counts.
    """
    log = logs.get(day)
    if log is None:
        return False
    if goal.weekly_limit is None:
        return log.grams == 0
    if log.heavy:
        return False
    week = (logs.get(d) for d in DateRange.ending(day, WEEK_DAYS).days())
    return standard_drinks_from_grams(_grams(w for w in week if w), country) <= goal.weekly_limit


def _streak(logs: dict[date, DayLog], today: date, counts: Callable[[DayLog], bool]) -> int:
    """Consecutive logged days meeting `counts`, ending today, or yesterday while today is unlogged."""
    day = today if today in logs else today - timedelta(days=1)
    days = 0
    while (log := logs.get(day)) is not None and counts(log):
        days += 1
        day -= timedelta(days=1)
    return days


def streaks(day_logs: Sequence[DayLog], *, goal: Goal, country: str, today: date) -> Streak:
    """Alcohol-free and within-goal streaks.

    Today not yet logged keeps the streak (it counts from yesterday); a missing day breaks it.
    """
    logs = _by_day(d for d in day_logs if d.day <= today)
    return Streak(
        alcohol_free_days=_streak(logs, today, lambda log: log.grams == 0),
        within_goal_days=_streak(
            logs, today, lambda log: within_goal(log.day, logs, goal=goal, country=country)
        ),
    )


def week_summary(
    day_logs: Sequence[DayLog], *, goal: Goal, country: str, today: date, sex: str | None = None
) -> WeekSummary:
    """The last 7 local days, today included: days logged, standard drinks (summed in grams), limit,
    heavy days, NIAAA heavy weekly use (for `sex`). With no day logged the drinking figures are None:
    missing days are missing. With some days logged they count what was logged (a lower bound)."""
    logged = _in(day_logs, DateRange.ending(today, WEEK_DAYS))
    if not logged:
        return WeekSummary(0, None, goal.weekly_limit, None, None)
    grams = _grams(logged)
    return WeekSummary(
        days_logged=len(logged),
        standard_drinks=standard_drinks_from_grams(grams, country),
        weekly_limit=goal.weekly_limit,
        heavy_days=sum(log.heavy for log in logged),
        over_niaaa_weekly=over_niaaa_weekly(grams, sex),
    )


def last_30_days(day_logs: Sequence[DayLog], *, country: str, today: date) -> Last30Days:
    """The last 30 local days, today included."""
    window = DateRange.ending(today, MONTH_DAYS)
    logged = _in(day_logs, window)
    return Last30Days(
        days_logged=len(logged),
        alcohol_free_days=sum(log.grams == 0 for log in logged),
        heavy_days=sum(log.heavy for log in logged),
        drinks_per_drinking_day=drinks_per_drinking_day(logged, window, country).value,
    )


def _mean(values: Sequence[int]) -> Decimal | None:
    return Decimal(sum(values)) / len(values) if values else None


def craving_summary(cravings: Sequence[CravingRating], *, today: date) -> CravingSummary:
    """Mean rating of the last 7 local days and of the 7 before, and the trend between them.

    Each rating counts (two on one day weigh twice). The trend compares the unrounded means.
    """
    recent = DateRange.ending(today, WEEK_DAYS)
    previous = DateRange.ending(recent.start - timedelta(days=1), WEEK_DAYS)
    now_mean = _mean([c.intensity for c in cravings if c.day in recent])
    before_mean = _mean([c.intensity for c in cravings if c.day in previous])
    trend: Trend | None = None
    if now_mean is not None and before_mean is not None:
        change = now_mean - before_mean
        if change >= CRAVING_TREND_MIN_CHANGE:
            trend = Trend.RISING
        elif change <= -CRAVING_TREND_MIN_CHANGE:
            trend = Trend.FALLING
        else:
            trend = Trend.FLAT

    def shown(mean: Decimal | None) -> Decimal | None:
        return None if mean is None else mean.quantize(CRAVING_QUANTUM, rounding=ROUND_HALF_UP)

    return CravingSummary(avg_7d=shown(now_mean), avg_prev_7d=shown(before_mean), trend=trend)


def adherence_summary(
    plans: Sequence[Plan], checkins: Sequence[CheckIn], *, zone: str, now: datetime
) -> AdherenceSummary:
    """Adherence over the last 7 local days up to `now` (see `adherence_rate` for what counts)."""
    window = DateRange.ending(localtime.local_date(now, zone), WEEK_DAYS)
    taken, scheduled = _dose_counts(plans, checkins, zone=zone, window=window, now=now)
    return AdherenceSummary(
        taken=taken,
        scheduled=scheduled,
        rate_7d=_ratio(taken, scheduled, RATE_QUANTUM) if scheduled else None,
    )


def summarize(
    *,
    now: datetime,
    zone: str,
    country: str,
    goal: Goal,
    day_logs: Sequence[DayLog],
    cravings: Sequence[CravingRating],
    checkins: Sequence[CheckIn],
    plans: Sequence[Plan],
    sex: str | None = None,
) -> MemberSummary:
    """`GET /me/summary` as of `now` (aware), in the member's `zone`; `as_of` is the local today."""
    today = localtime.local_date(now, zone)
    return MemberSummary(
        as_of=today,
        streak=streaks(day_logs, goal=goal, country=country, today=today),
        week=week_summary(day_logs, goal=goal, country=country, today=today, sex=sex),
        last_30_days=last_30_days(day_logs, country=country, today=today),
        cravings=craving_summary(cravings, today=today),
        adherence=adherence_summary(plans, checkins, zone=zone, now=now),
    )
