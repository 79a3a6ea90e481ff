"""Cohort outcome measures for insurer reports (DOMAIN.md "Outcome measures", API.md "Insurer").

The insurer export reports, for one insurer's consenting members over whole calendar months, the
program's outcomes: engagement and retention, PDA, PHDD, PSNHDD, drinks per drinking day, weekly
drinks from baseline, the WHO risk-level shift, cravings and adherence, each with its denominator,
in total and broken down by medication, program month and goal type. The database computes it
(companion/exports/queries.py); this module is the definition it must agree with, exactly:

* `member_outcome` is one member's measures over one window, built from the same pure functions as
  the member's own summary (`domain.summary`), so the app, the coach and the insurer never disagree.
* `CellTotals` is what a report cell needs of its members: counts and sums only. Sums of
  per-member values already rounded by the summary functions are exact, so the SQL and this module
  can be compared with `==`, and chunks of a cohort merge by addition.
* `cell_measures` turns totals into the published values (rounded once, here); `build_report`
  applies the small-cell suppression of `domain.suppression`.

Semantics (ours unless DOMAIN.md says otherwise; named settings below):

* **Cohort**: the insurer's members who consent to outcome sharing when the report is built, and
  whose enrollment day (local) is on or before the period's last day. Consent withdrawn means
  absent from every later report.
* **A member's window**: from the later of the period's first day and their enrollment day, to the
  period's last day, in local dates. Days before enrollment are never counted.
* **Missing days** are missing, never zero drinks: every day-based measure counts logged days only.
* **Baseline** is the first BASELINE_DAYS days of enrollment (even before the period); **follow-up**
  is the last FOLLOW_UP_DAYS days of the window, starting no earlier than the day after baseline.
  Change measures need logged days (or ratings) in both.
* **PACS** (weekly, total 0-30): a member's baseline is their first PACS whose week ends on or after
  enrollment and starts within PACS_BASELINE_DAYS of it; their follow-up in a window is their latest
  PACS whose week starts in the window, PACS_FOLLOW_UP_MIN_DAYS or more after the baseline's week.
  Members with both are averaged: the mean PACS at baseline, at follow-up, and the change.
* **Drinks** are US standard drinks (14 g) whatever the member's country: an insurer adds members up.
* **Per-member means** (PDA, PHDD, DDD, weekly drinks) are the summary's own values, then averaged
  over the members who have one; **pooled rates** (engagement, adherence) divide summed counts.
* **Program month** *k* is enrollment days 30(k-1) .. 30k-1; from PROGRAM_MONTH_CAP on, one bucket.
  A member contributes to every program month their window touches, with that part of the window.
* **Medication** is the one medication whose plans are in force during the window, `none`, or
  `multiple`: a partition, so the categories add up to the total.
* **Retention at D days**: of the members enrolled at least D days before the period's end, those
  with any entry (a drink log, craving, dose check-in or breath reading) dated D or more days after
  enrollment and no later than the period's end. Not given per program month.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from companion.domain import summary
from companion.domain.drinking import WhoLevel
from companion.domain.errors import InvalidInput
from companion.domain.medications import CATALOGUE
from companion.domain.plans import CheckIn, Plan
from companion.domain.suppression import (
    MAX_SMALL_CELL,
    Column,
    TableDecision,
    differencing_hides,
    suppress_row,
    suppress_table,
)
from companion.domain.types import DateRange

#: Insurer reports count US standard drinks, whatever each member's own country is (ours).
REPORT_COUNTRY = "US"
#: Baseline: the first days of enrollment (DOMAIN.md "first 14 days").
BASELINE_DAYS = 14
#: Follow-up: the last days of a window (DOMAIN.md "the last 28 days").
FOLLOW_UP_DAYS = 28
#: A member is active in a window with an entry in its last this-many days (ours).
ACTIVE_DAYS = 28
#: Retention horizons, days after enrollment (DOMAIN.md: 30- and 90-day retention).
RETENTION_DAYS = (30, 90)
#: Length of a program month, days from enrollment (ours: enrollment days do not follow calendars).
PROGRAM_MONTH_DAYS = 30
#: Program months from this one on share one bucket, labelled "12+" (ours).
PROGRAM_MONTH_CAP = 12
#: PACS baseline: the member's first weekly PACS whose week (Monday to Sunday) ends on or after their
#: enrollment day and starts within this many days of it, enrollment day included (ours: 4 weeks).
PACS_BASELINE_DAYS = 28
#: PACS follow-up: the latest PACS whose week starts in the window, at least this many days after the
#: baseline PACS's week starts (ours: 4 weeks, so the two never recall overlapping weeks).
PACS_FOLLOW_UP_MIN_DAYS = 28
#: A member's mean craving is kept to this before it is averaged over members (ours).
MEMBER_CRAVING_QUANTUM = Decimal("0.01")
#: Published values: percentages, means and changes, to one decimal, half up.
VALUE_QUANTUM = Decimal("0.1")
#: A report covers at most this many whole months (ours).
MAX_PERIOD_MONTHS = 24

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class Breakdown(enum.StrEnum):
    MEDICATION = "medication"
    PROGRAM_MONTH = "program_month"
    GOAL_TYPE = "goal_type"


#: The total row's breakdown and category names in every format.
TOTAL = "total"
ALL = "all"
NO_MEDICATION = "none"
MULTIPLE_MEDICATIONS = "multiple"


# --- periods -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not (2000 <= self.year <= 2099 and 1 <= self.month <= 12):
            raise ValueError(f"not a month: {self.year}-{self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """`"2026-01"` -> Month(2026, 1). :raises ValueError: anything else."""
        found = _MONTH.match(text.strip()) if isinstance(text, str) else None
        if not found:
            raise ValueError(f"not a YYYY-MM month: {text!r}")
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Period:
    """Whole calendar months, `start` to `end` inclusive, in members' local dates; or, when the
    `end` month is the current one, up to `through` (its last day that is over): a partial report."""

    start: Month
    end: Month
    through: date | None = None

    @property
    def days(self) -> DateRange:
        return DateRange(self.start.first_day, self.through or self.end.last_day)

    @property
    def partial(self) -> bool:
        return self.through is not None

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1


def make_period(start: str, end: str, *, today: date) -> Period:
    """Validate a requested period: whole months that are over (`today` is the UTC date of the
    request), end not before start, at most MAX_PERIOD_MONTHS. The end may be the current month:
    the period then runs to yesterday (`partial`), once the month has a day that is over.

    :raises InvalidInput: naming `period.start` / `period.end`.
    """
    problems: dict[str, list[str]] = {}
    months: dict[str, Month] = {}
    for name, text in (("start", start), ("end", end)):
        try:
            months[name] = Month.parse(text)
        except ValueError:
            problems[f"period.{name}"] = ['A whole month, "YYYY-MM".']
    if not problems:
        period = Period(months["start"], months["end"])
        if period.end < period.start:
            problems["period.end"] = ["Must not be before the start month."]
        elif period.months > MAX_PERIOD_MONTHS:
            problems["period.end"] = [f"A report covers at most {MAX_PERIOD_MONTHS} months."]
        elif period.end.last_day < today:
            return period
        elif period.end != Month.of(today):
            problems["period.end"] = ["Must be a month that is over, or the current month (to date)."]
        elif today == period.end.first_day:
            problems["period.end"] = ["The current month has no day that is over yet."]
        else:
            return partial_period(period.start, period.end, today=today)
    raise InvalidInput("The period is invalid.", fields=problems)


def partial_period(start: Month, end: Month, *, today: date) -> Period:
    """Months up to the current one, counted to yesterday (UTC): the last day that is over."""
    return Period(start, end, through=today - timedelta(days=1))


# --- windows -------------------------------------------------------------------------------------


def member_window(enrolled_on: date, period: Period) -> DateRange | None:
    """The member's days in the period: from enrollment (or the period's start) to its end."""
    start = max(enrolled_on, period.days.start)
    return DateRange(start, period.days.end) if start <= period.days.end else None


def baseline_window(enrolled_on: date) -> DateRange:
    return DateRange(enrolled_on, enrolled_on + timedelta(days=BASELINE_DAYS - 1))


def follow_up_window(window: DateRange, enrolled_on: date) -> DateRange | None:
    """The last FOLLOW_UP_DAYS of `window`, after baseline; None when nothing is left."""
    start = max(
        window.end - timedelta(days=FOLLOW_UP_DAYS - 1),
        window.start,
        enrolled_on + timedelta(days=BASELINE_DAYS),
    )
    return DateRange(start, window.end) if start <= window.end else None


def active_window(window: DateRange) -> DateRange:
    return DateRange(max(window.start, window.end - timedelta(days=ACTIVE_DAYS - 1)), window.end)


def program_month(day: date, enrolled_on: date) -> int:
    """1 for enrollment days 0-29, 2 for 30-59, ..., capped at PROGRAM_MONTH_CAP."""
    return min((day - enrolled_on).days // PROGRAM_MONTH_DAYS + 1, PROGRAM_MONTH_CAP)


def program_month_label(month: int) -> str:
    return f"{month}+" if month >= PROGRAM_MONTH_CAP else str(month)


def program_month_windows(window: DateRange, enrolled_on: date) -> list[tuple[int, DateRange]]:
    """The parts of `window` in each program month it touches, in order."""
    parts = []
    for month in range(program_month(window.start, enrolled_on), program_month(window.end, enrolled_on) + 1):
        start = enrolled_on + timedelta(days=PROGRAM_MONTH_DAYS * (month - 1))
        end = enrolled_on + timedelta(days=PROGRAM_MONTH_DAYS * month - 1)
        if month == PROGRAM_MONTH_CAP:
            end = window.end
        parts.append((month, DateRange(max(start, window.start), min(end, window.end))))
    return parts


def medication_category(plans: Iterable[Plan], window: DateRange) -> str:
    """The one medication of the plans in force during `window`, `none` or `multiple`."""
    medications = {
        plan.medication
        for plan in plans
        if plan.start_date <= window.end and (plan.end_date is None or plan.end_date >= window.start)
    }
    if not medications:
        return NO_MEDICATION
    return medications.pop() if len(medications) == 1 else MULTIPLE_MEDICATIONS


def categories(breakdown: Breakdown) -> tuple[str, ...]:
    """Categories always listed (with 0 members if need be); program months list those present."""
    if breakdown == Breakdown.GOAL_TYPE:
        return tuple(g.value for g in summary.GoalType)
    if breakdown == Breakdown.MEDICATION:
        return (*(m.code for m in CATALOGUE), MULTIPLE_MEDICATIONS, NO_MEDICATION)
    return ()


def category_order(breakdown: Breakdown, category: str) -> tuple[int, str]:
    if breakdown == Breakdown.PROGRAM_MONTH:
        return int(category.rstrip("+")), category
    listed = categories(breakdown)
    return (listed.index(category) if category in listed else len(listed)), category


# --- one member ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """Everything the report needs of one member: their profile and their day rows."""

    enrolled_on: date
    zone: str
    sex: str
    goal_type: str
    day_logs: Sequence[summary.DayLog] = ()
    cravings: Sequence[summary.CravingRating] = ()
    #: Weekly PACS: (week_of, a local Monday; total, 0-30).
    pacs: Sequence[tuple[date, int]] = ()
    plans: Sequence[Plan] = ()
    checkins: Sequence[CheckIn] = ()
    #: Days with any entry: a drink log, a craving, a dose check-in or a breath reading.
    entry_days: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class MemberOutcome:
    """One member's measures over one window; None where the member has nothing to measure."""

    enrolled_days: int
    entry_days: int
    active: bool
    #: Per retention horizon (RETENTION_DAYS): None when not eligible (or not asked), else retained.
    retained: tuple[bool | None, ...]
    logged_days: int
    pda: Decimal | None
    phdd: Decimal | None
    no_heavy_days: bool | None
    drinking_days: int
    ddd: Decimal | None
    weekly_baseline: Decimal | None
    weekly_follow_up: Decimal | None
    who_baseline: WhoLevel | None
    who_follow_up: WhoLevel | None
    craving_baseline: Decimal | None
    craving_follow_up: Decimal | None
    pacs_baseline: int | None
    pacs_follow_up: int | None
    doses_taken: int
    doses_scheduled: int


def mean_craving(cravings: Iterable[summary.CravingRating], window: DateRange) -> Decimal | None:
    """A member's mean rating in `window` (each rating counts), to MEMBER_CRAVING_QUANTUM."""
    ratings = [c.intensity for c in cravings if c.day in window]
    if not ratings:
        return None
    return (Decimal(sum(ratings)) / len(ratings)).quantize(MEMBER_CRAVING_QUANTUM, rounding=ROUND_HALF_UP)


def pacs_baseline(pacs: Iterable[tuple[date, int]], enrolled_on: date) -> tuple[date, int] | None:
    """The member's baseline PACS (week_of, total): the first whose week ends on or after enrollment and
    starts within PACS_BASELINE_DAYS of it; None when there is none."""
    last_start = enrolled_on + timedelta(days=PACS_BASELINE_DAYS - 1)
    found = [(week, total) for week, total in pacs if enrolled_on - timedelta(days=6) <= week <= last_start]
    return min(found) if found else None


def pacs_follow_up(pacs: Iterable[tuple[date, int]], window: DateRange, baseline_week: date) -> int | None:
    """The total of the latest PACS whose week starts in `window`, at least PACS_FOLLOW_UP_MIN_DAYS
    after `baseline_week`; None when there is none."""
    earliest = baseline_week + timedelta(days=PACS_FOLLOW_UP_MIN_DAYS)
    found = [(week, total) for week, total in pacs if week in window and week >= earliest]
    return max(found)[1] if found else None


def retained(member: MemberRecord, period: Period, days: int) -> bool | None:
    """Retention at `days` (see the module docstring); None when not yet eligible."""
    horizon = member.enrolled_on + timedelta(days=days)
    if horizon > period.days.end:
        return None
    return any(horizon <= day <= period.days.end for day in member.entry_days)


def member_outcome(
    member: MemberRecord, window: DateRange, *, period: Period, now: datetime, with_retention: bool
) -> MemberOutcome:
    """The member's measures over `window` (their whole window, or one program month of it)."""
    logs = member.day_logs
    logged = [log for log in logs if log.day in window]
    nhdd = summary.no_heavy_drinking_days(logs, window)
    ddd = summary.drinks_per_drinking_day(logs, window, REPORT_COUNTRY)
    baseline = baseline_window(member.enrolled_on)
    follow_up = follow_up_window(window, member.enrolled_on)

    weekly: tuple[Decimal | None, Decimal | None] = (None, None)
    who: tuple[WhoLevel | None, WhoLevel | None] = (None, None)
    craving: tuple[Decimal | None, Decimal | None] = (None, None)
    if follow_up is not None:
        base_w = summary.mean_weekly_drinks(logs, baseline, REPORT_COUNTRY).value
        last_w = summary.mean_weekly_drinks(logs, follow_up, REPORT_COUNTRY).value
        if base_w is not None and last_w is not None:
            weekly = (base_w, last_w)
            who = (
                summary.who_risk_level(logs, baseline, member.sex).value,
                summary.who_risk_level(logs, follow_up, member.sex).value,
            )
        base_c = mean_craving(member.cravings, baseline)
        last_c = mean_craving(member.cravings, follow_up)
        if base_c is not None and last_c is not None:
            craving = (base_c, last_c)

    pacs: tuple[int | None, int | None] = (None, None)
    if (first := pacs_baseline(member.pacs, member.enrolled_on)) is not None:
        last = pacs_follow_up(member.pacs, window, first[0])
        if last is not None:
            pacs = (first[1], last)

    taken, scheduled = summary.dose_counts(
        member.plans, member.checkins, zone=member.zone, window=window, now=now
    )
    return MemberOutcome(
        enrolled_days=window.length,
        entry_days=sum(day in window for day in member.entry_days),
        active=any(day in active_window(window) for day in member.entry_days),
        retained=tuple(retained(member, period, d) if with_retention else None for d in RETENTION_DAYS),
        logged_days=len(logged),
        pda=summary.percent_days_abstinent(logs, window).value,
        phdd=summary.percent_heavy_days(logs, window).value,
        no_heavy_days=nhdd.value,
        drinking_days=ddd.denominator,
        ddd=ddd.value,
        weekly_baseline=weekly[0],
        weekly_follow_up=weekly[1],
        who_baseline=who[0],
        who_follow_up=who[1],
        craving_baseline=craving[0],
        craving_follow_up=craving[1],
        pacs_baseline=pacs[0],
        pacs_follow_up=pacs[1],
        doses_taken=taken,
        doses_scheduled=scheduled,
    )


# --- a cell's totals -----------------------------------------------------------------------------


@dataclass(slots=True)
class CellTotals:
    """What a report cell needs of its members: counts and exact sums, so cells merge by addition."""

    members: int = 0
    active_members: int = 0
    enrolled_days: int = 0
    entry_days: int = 0
    retention_30d_eligible: int = 0
    retention_30d_retained: int = 0
    retention_90d_eligible: int = 0
    retention_90d_retained: int = 0
    logged_members: int = 0
    logged_days: int = 0
    pda_sum: Decimal = Decimal(0)
    phdd_sum: Decimal = Decimal(0)
    nhdd_members: int = 0
    drinking_members: int = 0
    drinking_days: int = 0
    ddd_sum: Decimal = Decimal(0)
    change_members: int = 0
    weekly_baseline_sum: Decimal = Decimal(0)
    weekly_follow_up_sum: Decimal = Decimal(0)
    who_improved_1: int = 0
    who_improved_2: int = 0
    craving_members: int = 0
    craving_baseline_sum: Decimal = Decimal(0)
    craving_follow_up_sum: Decimal = Decimal(0)
    pacs_members: int = 0
    pacs_baseline_sum: Decimal = Decimal(0)
    pacs_follow_up_sum: Decimal = Decimal(0)
    adherence_members: int = 0
    doses_taken: int = 0
    doses_scheduled: int = 0

    def add(self, outcome: MemberOutcome) -> None:
        self.members += 1
        self.active_members += outcome.active
        self.enrolled_days += outcome.enrolled_days
        self.entry_days += outcome.entry_days
        r30, r90 = outcome.retained
        self.retention_30d_eligible += r30 is not None
        self.retention_30d_retained += r30 is True
        self.retention_90d_eligible += r90 is not None
        self.retention_90d_retained += r90 is True
        if outcome.pda is not None and outcome.phdd is not None:
            self.logged_members += 1
            self.logged_days += outcome.logged_days
            self.pda_sum += outcome.pda
            self.phdd_sum += outcome.phdd
            self.nhdd_members += outcome.no_heavy_days is True
        if outcome.ddd is not None:
            self.drinking_members += 1
            self.drinking_days += outcome.drinking_days
            self.ddd_sum += outcome.ddd
        if outcome.weekly_baseline is not None and outcome.weekly_follow_up is not None:
            self.change_members += 1
            self.weekly_baseline_sum += outcome.weekly_baseline
            self.weekly_follow_up_sum += outcome.weekly_follow_up
            if outcome.who_baseline is not None and outcome.who_follow_up is not None:
                self.who_improved_1 += outcome.who_baseline - outcome.who_follow_up >= 1
                self.who_improved_2 += outcome.who_baseline - outcome.who_follow_up >= 2
        if outcome.craving_baseline is not None and outcome.craving_follow_up is not None:
            self.craving_members += 1
            self.craving_baseline_sum += outcome.craving_baseline
            self.craving_follow_up_sum += outcome.craving_follow_up
        if outcome.pacs_baseline is not None and outcome.pacs_follow_up is not None:
            self.pacs_members += 1
            self.pacs_baseline_sum += outcome.pacs_baseline
            self.pacs_follow_up_sum += outcome.pacs_follow_up
        if outcome.doses_scheduled:
            self.adherence_members += 1
            self.doses_taken += outcome.doses_taken
            self.doses_scheduled += outcome.doses_scheduled

    def merge(self, other: CellTotals) -> None:
        """Add another chunk of the same cell's members."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


#: A cell: (breakdown, category); the total is (TOTAL, ALL).
CellKey = tuple[str, str]


def cohort_totals(
    members: Iterable[MemberRecord], *, period: Period, breakdowns: Sequence[Breakdown], now: datetime
) -> dict[CellKey, CellTotals]:
    """The reference computation, member by member: what the SQL must reproduce exactly."""
    cells: dict[CellKey, CellTotals] = {(TOTAL, ALL): CellTotals()}
    for breakdown in breakdowns:
        for category in categories(breakdown):
            cells[(breakdown.value, category)] = CellTotals()
    for member in members:
        window = member_window(member.enrolled_on, period)
        if window is None:
            continue
        whole = member_outcome(member, window, period=period, now=now, with_retention=True)
        cells[(TOTAL, ALL)].add(whole)
        if Breakdown.GOAL_TYPE in breakdowns:
            cells[(Breakdown.GOAL_TYPE.value, member.goal_type)].add(whole)
        if Breakdown.MEDICATION in breakdowns:
            medication = medication_category(member.plans, window)
            cells.setdefault((Breakdown.MEDICATION.value, medication), CellTotals()).add(whole)
        if Breakdown.PROGRAM_MONTH in breakdowns:
            for month, part in program_month_windows(window, member.enrolled_on):
                outcome = member_outcome(member, part, period=period, now=now, with_retention=False)
                key = (Breakdown.PROGRAM_MONTH.value, program_month_label(month))
                cells.setdefault(key, CellTotals()).add(outcome)
    return cells


# --- published values ----------------------------------------------------------------------------


#: The member counts a cell publishes, each a subset of its parent's members (see domain.suppression).
COLUMNS: tuple[Column, ...] = (
    Column("members"),
    Column("active_members", "members"),
    Column("retention_30d_eligible", "members"),
    Column("retention_30d_retained", "retention_30d_eligible"),
    Column("retention_90d_eligible", "members"),
    Column("retention_90d_retained", "retention_90d_eligible"),
    Column("logged_members", "members"),
    Column("nhdd_members", "logged_members"),
    Column("drinking_members", "logged_members"),
    Column("change_members", "logged_members"),
    Column("who_improved_1", "change_members"),
    Column("who_improved_2", "who_improved_1"),
    Column("craving_members", "members"),
    Column("pacs_members", "members"),
    Column("adherence_members", "members"),
)

#: Columns not given per program month.
RETENTION_COLUMNS = frozenset(
    {"retention_30d_eligible", "retention_30d_retained", "retention_90d_eligible", "retention_90d_retained"}
)


@dataclass(frozen=True, slots=True)
class MeasureValue:
    """One published measure of one cell. `members` is the members it rests on; `numerator` the
    members meeting a share measure, or the days or doses counted by a pooled rate; `units` the days
    or doses in `units_of` (a pooled rate's denominator, the days a mean rests on). Everything but the
    names is None when suppressed; `reason` says why (`small_cell`, `complementary`), or that nobody
    was eligible (`not_applicable`: the value is None, nothing is hidden)."""

    name: str
    unit: str
    value: Decimal | None
    members: int | None
    numerator: int | None = None
    units: int | None = None
    units_of: str | None = None
    baseline: Decimal | None = None
    follow_up: Decimal | None = None
    suppressed: bool = False
    reason: str | None = None


#: Why a value is absent: its own count is 1-10; hidden to protect another count; nobody eligible.
SMALL_CELL = "small_cell"
COMPLEMENTARY = "complementary"
NOT_APPLICABLE = "not_applicable"


def hidden_reason(count: int) -> str:
    """A hidden count was small itself, or hidden for another's sake (complementary suppression)."""
    return SMALL_CELL if 0 < count <= MAX_SMALL_CELL else COMPLEMENTARY


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    column: str
    unit: str
    units_of: str | None = None


#: Every measure, in report order, and the column whose publication governs it.
MEASURES: tuple[_Spec, ...] = (
    _Spec("members", "members", "members"),
    _Spec("active_members", "active_members", "%"),
    _Spec("engagement", "members", "%", "days enrolled"),
    _Spec("retention_30d", "retention_30d_retained", "%"),
    _Spec("retention_90d", "retention_90d_retained", "%"),
    _Spec("pda", "logged_members", "%", "logged days"),
    _Spec("phdd", "logged_members", "%", "logged days"),
    _Spec("psnhdd", "nhdd_members", "%"),
    _Spec("drinks_per_drinking_day", "drinking_members", "US standard drinks", "drinking days"),
    _Spec("weekly_drinks_change", "change_members", "US standard drinks per week"),
    _Spec("who_improved_1_level", "who_improved_1", "%"),
    _Spec("who_improved_2_levels", "who_improved_2", "%"),
    _Spec("craving_change", "craving_members", "0-10 rating"),
    _Spec("pacs_change", "pacs_members", "PACS score (0-30)"),
    _Spec("adherence", "adherence_members", "%", "doses scheduled"),
)


def _q(value: Decimal) -> Decimal:
    return value.quantize(VALUE_QUANTUM, rounding=ROUND_HALF_UP)


def _share(numerator: int | Decimal, denominator: int) -> Decimal | None:
    return _q(Decimal(numerator) * 100 / denominator) if denominator else None


def _mean(total: Decimal, count: int) -> Decimal | None:
    return _q(total / count) if count else None


def column_counts(totals: CellTotals, *, with_retention: bool) -> dict[str, int]:
    counts = {c.name: getattr(totals, c.name) for c in COLUMNS}
    if not with_retention:
        for name in RETENTION_COLUMNS:
            del counts[name]
    return counts


@dataclass(frozen=True, slots=True)
class _Raw:
    value: Decimal | None
    members: int
    numerator: int | None = None
    units: int | None = None
    baseline: Decimal | None = None
    follow_up: Decimal | None = None


def _raw_values(t: CellTotals) -> dict[str, _Raw]:
    return {
        "members": _Raw(Decimal(t.members), t.members),
        "active_members": _Raw(_share(t.active_members, t.members), t.members, t.active_members),
        "engagement": _Raw(
            _share(t.entry_days, t.enrolled_days), t.members, t.entry_days, units=t.enrolled_days
        ),
        "retention_30d": _Raw(
            _share(t.retention_30d_retained, t.retention_30d_eligible),
            t.retention_30d_eligible,
            t.retention_30d_retained,
        ),
        "retention_90d": _Raw(
            _share(t.retention_90d_retained, t.retention_90d_eligible),
            t.retention_90d_eligible,
            t.retention_90d_retained,
        ),
        "pda": _Raw(_mean(t.pda_sum, t.logged_members), t.logged_members, units=t.logged_days),
        "phdd": _Raw(_mean(t.phdd_sum, t.logged_members), t.logged_members, units=t.logged_days),
        "psnhdd": _Raw(_share(t.nhdd_members, t.logged_members), t.logged_members, t.nhdd_members),
        "drinks_per_drinking_day": _Raw(
            _mean(t.ddd_sum, t.drinking_members), t.drinking_members, units=t.drinking_days
        ),
        "weekly_drinks_change": _Raw(
            _mean(t.weekly_follow_up_sum - t.weekly_baseline_sum, t.change_members),
            t.change_members,
            baseline=_mean(t.weekly_baseline_sum, t.change_members),
            follow_up=_mean(t.weekly_follow_up_sum, t.change_members),
        ),
        "who_improved_1_level": _Raw(
            _share(t.who_improved_1, t.change_members), t.change_members, t.who_improved_1
        ),
        "who_improved_2_levels": _Raw(
            _share(t.who_improved_2, t.change_members), t.change_members, t.who_improved_2
        ),
        "craving_change": _Raw(
            _mean(t.craving_follow_up_sum - t.craving_baseline_sum, t.craving_members),
            t.craving_members,
            baseline=_mean(t.craving_baseline_sum, t.craving_members),
            follow_up=_mean(t.craving_follow_up_sum, t.craving_members),
        ),
        "pacs_change": _Raw(
            _mean(t.pacs_follow_up_sum - t.pacs_baseline_sum, t.pacs_members),
            t.pacs_members,
            baseline=_mean(t.pacs_baseline_sum, t.pacs_members),
            follow_up=_mean(t.pacs_follow_up_sum, t.pacs_members),
        ),
        "adherence": _Raw(
            _share(t.doses_taken, t.doses_scheduled),
            t.adherence_members,
            t.doses_taken,
            units=t.doses_scheduled,
        ),
    }


def cell_measures(
    totals: CellTotals, *, with_retention: bool, hidden: frozenset[str] = frozenset()
) -> list[MeasureValue]:
    """The published measures of a cell; those whose column is in `hidden` are suppressed.

    Changes (weekly drinks, craving, PACS) are follow-up minus baseline: negative is a reduction."""
    raw = _raw_values(totals)
    values = []
    for spec in MEASURES:
        if not with_retention and spec.column in RETENTION_COLUMNS:
            continue
        if spec.column in hidden:
            reason = hidden_reason(getattr(totals, spec.column))
            values.append(MeasureValue(spec.name, spec.unit, None, None, suppressed=True, reason=reason))
            continue
        r = raw[spec.name]
        values.append(
            MeasureValue(
                name=spec.name,
                unit=spec.unit,
                value=r.value,
                members=r.members,
                numerator=r.numerator,
                units=r.units,
                units_of=spec.units_of if r.units is not None else None,
                baseline=r.baseline,
                follow_up=r.follow_up,
                reason=NOT_APPLICABLE if r.value is None else None,
            )
        )
    return values


# --- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportCell:
    breakdown: str
    category: str
    #: The whole row is hidden (it counts 1..10 members, or hides them for another row).
    suppressed: bool
    measures: tuple[MeasureValue, ...]
    #: `small_cell` or `complementary` when the row is hidden.
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    breakdowns: tuple[Breakdown, ...]
    cells: tuple[ReportCell, ...] = field(default_factory=tuple)

    @property
    def row_count(self) -> int:
        """Rows of the long (CSV) form: one per cell and measure."""
        return sum(len(cell.measures) for cell in self.cells)


Forced = Mapping[CellKey, frozenset[str]]


def decide(
    totals: Mapping[CellKey, CellTotals], breakdowns: Sequence[Breakdown], forced: Forced | None = None
) -> tuple[dict[CellKey, frozenset[str]], dict[CellKey, dict[str, int]]]:
    """What each cell hides, and every cell's member counts by column (published or not)."""
    forced = forced or {}
    total = totals.get((TOTAL, ALL), CellTotals())
    total_counts = column_counts(total, with_retention=True)
    counts: dict[CellKey, dict[str, int]] = {(TOTAL, ALL): total_counts}
    total_forced = forced.get((TOTAL, ALL), frozenset())
    decisions: dict[CellKey, frozenset[str]] = {
        (TOTAL, ALL): suppress_row(COLUMNS, total_counts, total_forced)
    }
    for breakdown in [Breakdown(b) for b in dict.fromkeys(breakdowns)]:
        with_retention = breakdown != Breakdown.PROGRAM_MONTH
        listed = set(categories(breakdown)) | {c for (b, c) in totals if b == breakdown.value}
        cats = {c: totals.get((breakdown.value, c), CellTotals()) for c in listed}
        for c, t in cats.items():
            counts[(breakdown.value, c)] = column_counts(t, with_retention=with_retention)
        decision: TableDecision = suppress_table(
            COLUMNS,
            total_counts,
            {c: counts[(breakdown.value, c)] for c in cats},
            forced_total=total_forced,
            forced={c: forced.get((breakdown.value, c), frozenset()) for c in cats},
        )
        for c in cats:
            decisions[(breakdown.value, c)] = decision.categories[c]
    return decisions, counts


def published_counts(
    totals: Mapping[CellKey, CellTotals], breakdowns: Sequence[Breakdown], forced: Forced | None = None
) -> dict[CellKey, dict[str, int]]:
    """The member counts a report publishes, by cell and column: what a release ledger keeps."""
    decisions, counts = decide(totals, breakdowns, forced)
    return {
        key: {name: n for name, n in row.items() if name not in decisions[key]} for key, row in counts.items()
    }


def release_forced(
    totals: Mapping[CellKey, CellTotals],
    breakdowns: Sequence[Breakdown],
    earlier: Sequence[Mapping[CellKey, Mapping[str, int]]],
) -> dict[CellKey, frozenset[str]]:
    """The cells to hide beyond rules 1-3 so that no published count differs by 1..10 from an earlier
    release's (`suppression.differencing_hides`); hiding one may publish nothing new, so a few rounds
    reach a fixed point."""
    forced: dict[CellKey, frozenset[str]] = {}
    while True:
        extra = differencing_hides(published_counts(totals, breakdowns, forced), earlier)
        if not extra:  # what is published excludes what is forced: each round hides something new
            return forced
        forced.update({key: forced.get(key, frozenset()) | names for key, names in extra.items()})


def build_report(
    totals: Mapping[CellKey, CellTotals],
    *,
    period: Period,
    breakdowns: Sequence[Breakdown],
    forced: Forced | None = None,
) -> Report:
    """Suppress and publish: the total row first, then each breakdown's categories in order. `forced`:
    cells hidden beyond rules 1-3 (`release_forced`)."""
    ordered = [Breakdown(b) for b in dict.fromkeys(breakdowns)]
    decisions, _ = decide(totals, ordered, forced)
    total = totals.get((TOTAL, ALL), CellTotals())
    cells = [_cell(TOTAL, ALL, total, decisions[(TOTAL, ALL)], with_retention=True)]
    for breakdown in ordered:
        keys = sorted(
            (c for (b, c) in decisions if b == breakdown.value), key=lambda c: category_order(breakdown, c)
        )
        for c in keys:
            t = totals.get((breakdown.value, c), CellTotals())
            cells.append(
                _cell(
                    breakdown.value,
                    c,
                    t,
                    decisions[(breakdown.value, c)],
                    with_retention=breakdown != Breakdown.PROGRAM_MONTH,
                )
            )
    return Report(period=period, breakdowns=tuple(ordered), cells=tuple(cells))


def _cell(
    breakdown: str, category: str, totals: CellTotals, hidden: frozenset[str], *, with_retention: bool
) -> ReportCell:
    return ReportCell(
        breakdown=breakdown,
        category=category,
        suppressed="members" in hidden,
        measures=tuple(cell_measures(totals, with_retention=with_retention, hidden=hidden)),
        reason=hidden_reason(totals.members) if "members" in hidden else None,
    )
