"""Safety rules (DOMAIN.md "Safety rules"): side-effect, medication and drinking patterns a coach must see.

Pure: values in, values out; the clock is an argument (`MemberHistory.now`). The same rules run after
each new entry, in the periodic sweep and in an analyst's notebook. The persistence layer turns each
`Finding` into a flag: one open flag per member and rule (and `key`), updated when the finding's
evidence grows, re-opened after resolution only on new evidence.

Every rule is a function `(history, settings) -> Finding | None`, registered in `RULES` under its
name with a version and a tier; `evaluate` runs them all in registry order. Thresholds are fields of
`SafetySettings`, whose defaults are DOMAIN.md's; each default marked *(ours)* is a product choice.

**Evidence ids.** A finding cites the entries it rests on as strings, sorted, each naming its kind:

* ``side_effect:<id>`` a side-effect report; ``checkin:<uuid>`` a dose check-in (a `skipped` dose);
* ``dose:<plan uuid>:<UTC instant>`` a dose slot that is past due with no check-in at all (absence
  has no entry to cite, so the slot itself is named, as `plans.dose_slots` computes it);
* ``drink_log:<YYYY-MM-DD>`` a drink log (one per member and local day);
* ``craving:<uuid>`` a craving rating; ``breath:<uuid>`` a breath alcohol reading.

`first_seen` and `last_seen` are the earliest and latest local dates among the evidence. Summaries
are built from codes, labels, counts and dates only: no record here carries a member's free-text
note, so none can be copied into a flag.

**What callers load** (`lookback_days(settings)`, `LOOKBACK_DAYS` for the defaults; per rule in
`RULE_LOOKBACK_DAYS`): entries whose local date is within the last LOOKBACK_DAYS local days, today
included (dose check-ins and side effects by their slot's local date), the member's plans in force on
any of those days (steps included), the local date of the member's latest entry of any kind ever
(`last_entry_date`) and the enrolment date. Rules read only their own window, so loading more
changes nothing. Rules that fire on one reported symptom read the whole backfill window
(`report_backfill_days`, 60): a report entered late still counts, and its flag says it was late
(`SideEffectRecord.entered_on`). A caller may load less of what those rules do not read: the
withdrawal rule reads dose check-ins of its recent window and of the days up to
`withdrawal_sign_days` before each withdrawal sign, and withdrawal after a stop those of the days up
to `withdrawal_after_stop_days` before each withdrawal sign.

Semantics where DOMAIN.md is silent (each one a setting where it is a number):

* **Missed dose**: a slot of a plan (`plans.dose_slots`, in the member's zone, DST aware) that has a
  `skipped` check-in, or no check-in and is at least `missed_dose_grace` past due. A `taken` check-in
  means taken. A slot not yet that late and unanswered is neither taken nor missed.
* **Missed day** (withdrawal): a local day on which a withdrawal-risk medication had due slots on
  plans not tapering that day, and ANY of them was missed (`MissedDay.ANY_DOSE`, the default) - or,
  with `MissedDay.EVERY_DOSE`, all of them. ANY is the safer reading: a missed check-in cannot be told
  from a missed dose, and an abrupt *reduction* (two of three daily baclofen doses dropped) also
  precipitates withdrawal; a false alarm costs the coach a message, a missed one can cost a seizure.
  Days of every plan of one medication are pooled, so a stop across a plan change still counts.
* **Consecutive days**: calendar-consecutive missed days, all within `withdrawal_window_days`, while
  a plan of that medication is still in force today (a plan that has ended is a prescriber's stop,
  not a missed dose).
* **Tapering** (`taper_in_progress`): a step the coach marked `taper`, or the plan's last steps lowering
  the dose to its end within `taper_final_days`; narrower than `plans.is_tapering`, which treats any
  lowered step as a taper for as long as it is in force (a dose cut would silence this rule).
* **Doses stopped being taken** (withdrawal after a stop, version 2): a withdrawal sign on local day
  D, no plan of the medication in force on D; its last `taken` check-in (any of its plans) is 1 to
  `withdrawal_after_stop_days` days before D, its plan was not tapering on its day (stopping during a
  planned taper is a taper cut short, not this stop), and at least one due dose after it and before D
  was missed. So a plan that ends in a taper the member never took still counts. With a plan in
  force on D, doses stopped are missed doses before the sign: withdrawal risk's, not a second flag.
* **After missed doses**: a withdrawal sign reported on local day D, with a missed dose of baclofen or
  gabapentin on D or the `withdrawal_sign_days` days before it (tapering or not).
* **"While on" a medication**: the report was made on that medication's check-in, or a plan of it was
  in force on the report's local day.
* **Same side effect**: the same code, on any medication. `other` is never "the same" as another
  `other` (what it is lives in the note, which rules do not read); the severe rule still sees it.
* **Consecutive reports**: the reports of one code in time order (local day, then the check-in's slot
  instant, then report id), whether or not check-ins without it came between.
* **Craving means**: every rating counts (two on one day weigh twice, as in the member summary);
  days without a rating are missing, not zero; without a rating in both windows there is no finding.
* **Relapse**: the `relapse_free_days` days before the earliest heavy day of the window hold no heavy
  day and at least `relapse_min_logged_days` logged days: silence is not a heavy-free stretch, and a
  new member's first heavy week is their baseline, not a relapse.
* **Disengagement**: days since the latest entry of any kind, today counting as a day without one
  (or since enrolment when there is none).
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from companion.domain import localtime
from companion.domain.drinking import standard_drinks_from_grams
from companion.domain.medications import (
    CONTRAINDICATED_MEDICATIONS,
    CONTRAINDICATION_SIGNS,
    KIDNEY_STONE_MEDICATIONS,
    KIDNEY_STONE_SIGNS,
    LABELS,
    LIVER_SIGNS,
    LIVER_WATCH_MEDICATIONS,
    OPIOID_SIGNS,
    OPIOID_WATCH_MEDICATIONS,
    OTHER,
    SEDATING_MEDICATIONS,
    SEDATION_SIGNS,
    SUICIDAL_SIGNS,
    WITHDRAWAL_RISK_MEDICATIONS,
    WITHDRAWAL_SIGNS,
    Severity,
    get_medication,
)
from companion.domain.plans import CheckInStatus, Plan, dose_slots, is_active, regimen_on, regimens
from companion.domain.summary import CRAVING_MAX, CRAVING_MIN, DayLog
from companion.domain.types import DateRange

#: Medications with which any drinking causes a reaction: the disulfiram-with-drinking rule.
ALCOHOL_REACTION_MEDICATIONS = frozenset({"disulfiram"})

#: Highest breath alcohol reading accepted, g/dL (DOMAIN.md: 0.000-0.500).
BAC_MAX = Decimal("0.500")

_DAY = timedelta(days=1)
_LAST_INSTANT = datetime.max.replace(tzinfo=UTC)


class Tier(enum.IntEnum):
    """A finding's tier (ours, not CTCAE grades). Ordered: `tier >= Tier.WARNING` reads naturally."""

    INFO = 1
    WARNING = 2
    URGENT = 3

    @property
    def label(self) -> str:
        """The API's spelling: `info`, `warning`, `urgent`."""
        return self.name.lower()


class MissedDay(enum.StrEnum):
    """When a local day counts as a missed day for the withdrawal-risk rule."""

    #: Any due dose of the day was missed (the default: see the module docstring).
    ANY_DOSE = "any_dose"
    #: Every due dose of the day was missed.
    EVERY_DOSE = "every_dose"


@dataclass(frozen=True, slots=True)
class SafetySettings:
    """Every threshold of the safety rules. Defaults are DOMAIN.md's; *(ours)* marks product choices.

    Windows are whole local days ending on the member's local today, today included.
    """

    #: Drinking rules on one day (sedation with drinking, disulfiram with drinking) read entries of this
    #: many local days (ours): the Timeline Followback's reliable recall span (DOMAIN.md).
    recent_days: int = 14
    #: Rules that fire on one reported symptom (severe side effect, liver signs, contraindication,
    #: withdrawal signs, suicidal thoughts, opioid use, kidney stones) read reports of this many local
    #: days: the whole backfill window (API.md: entries up to 60 days late), so a late report counts.
    report_backfill_days: int = 60
    #: A report entered more than this many days after its own local day is "late": its flag says so
    #: (a day entered after the next local day is a recall entry, DOMAIN.md).
    late_report_days: int = 1

    #: Persistent side effect: the same side effect at this severity or worse ...
    persistent_min_severity: Severity = Severity.MODERATE
    #: ... on at least this many distinct local days ...
    persistent_min_days: int = 3
    #: ... of the last this-many local days.
    persistent_window_days: int = 5

    #: Escalating side effect: this many consecutive reports of one side effect never fall in
    #: severity and end higher than they start (mild, moderate, moderate rises; with three levels a
    #: strict rise at every report would only ever be mild, moderate, severe, which the severe rule
    #: already flags) ...
    escalating_reports: int = 3
    #: ... all within the last this-many local days (ours).
    escalating_window_days: int = 14

    #: Withdrawal risk: this many consecutive missed days of baclofen or gabapentin ...
    withdrawal_missed_days: int = 2
    #: ... where a day is missed when any (or every) due dose of it was (ours; see MissedDay) ...
    withdrawal_missed_day: MissedDay = MissedDay.ANY_DOSE
    #: ... within the last this-many local days (ours); withdrawal signs are looked for here too.
    withdrawal_window_days: int = 7
    #: A dose with no check-in counts as missed once it is this late (ours).
    missed_dose_grace: timedelta = timedelta(hours=3)
    #: A withdrawal sign counts as "after missed doses" when a dose was missed on its day or this many
    #: days before (ours).
    withdrawal_sign_days: int = 3
    #: Withdrawal after a stop: a withdrawal sign within this many days after a baclofen or gabapentin
    #: plan ended without a taper (ours).
    withdrawal_after_stop_days: int = 14
    #: A lowered dose not marked `taper` by the coach is a taper only when the plan's last steps lower
    #: it to the plan's end within this many days, both counted (ours; see taper_in_progress).
    taper_final_days: int = 28

    #: Sedation with drinking: a breath alcohol reading at or above this, g/dL, on the report's day.
    sedation_bac_g_dl: Decimal = Decimal("0.080")
    #: Disulfiram with drinking: a breath reading above this, g/dL, is drinking, drink log or not (ours).
    disulfiram_bac_g_dl: Decimal = Decimal("0.020")

    #: Craving escalation: the mean rating of the last this-many local days ...
    craving_recent_days: int = 3
    #: ... at least this high ...
    craving_high_mean: Decimal = Decimal("7")
    #: ... and at least this many points above the mean of ...
    craving_min_rise: Decimal = Decimal("2")
    #: ... the this-many local days before them.
    craving_baseline_days: int = 7
    #: Craving escalation on the weekly PACS (issue 19): a total at or above this (DOMAIN.md: 15
    #: balances sensitivity and specificity in heavy drinkers) ...
    pacs_high_total: int = 15
    #: ... at least this many points above the previous week's total (ours) ...
    pacs_min_rise: int = 5
    #: ... for a week starting within the last this-many local days (ours: this week and the last).
    pacs_recent_days: int = 14

    #: Relapse pattern: at least this many heavy drinking days ...
    relapse_heavy_days: int = 3
    #: ... in the last this-many local days ...
    relapse_window_days: int = 7
    #: ... after this many local days without one ...
    relapse_free_days: int = 14
    #: ... of which at least this many were logged (ours: half the stretch, so silence is not sobriety).
    relapse_min_logged_days: int = 7

    #: Disengagement: this many days since the latest entry of any kind.
    disengagement_days: int = 5

    #: An urgent flag not acknowledged within this escalates (ours). Read by the flag worker.
    urgent_sla: timedelta = timedelta(hours=2)

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be at least {least}"
            for name, least in (
                ("recent_days", 1),
                ("report_backfill_days", 1),
                ("late_report_days", 0),
                ("persistent_min_days", 1),
                ("escalating_reports", 2),
                ("escalating_window_days", 1),
                ("withdrawal_missed_days", 1),
                ("withdrawal_window_days", 1),
                ("withdrawal_sign_days", 0),
                ("withdrawal_after_stop_days", 1),
                ("taper_final_days", 1),
                ("craving_recent_days", 1),
                ("craving_baseline_days", 1),
                ("pacs_recent_days", 1),
                ("pacs_min_rise", 0),
                ("relapse_heavy_days", 1),
                ("relapse_free_days", 1),
                ("relapse_min_logged_days", 0),
                ("disengagement_days", 1),
            )
            if getattr(self, name) < least
        ]
        for count, window in (
            ("persistent_min_days", "persistent_window_days"),
            ("relapse_heavy_days", "relapse_window_days"),
            ("relapse_min_logged_days", "relapse_free_days"),
        ):
            if getattr(self, count) > getattr(self, window):
                problems.append(f"{count} must not exceed {window}")
        if self.missed_dose_grace < timedelta(0) or self.urgent_sla <= timedelta(0):
            problems.append("missed_dose_grace must not be negative, urgent_sla must be positive")
        if problems:
            raise ValueError("; ".join(problems))


#: DOMAIN.md's thresholds.
DEFAULT = SafetySettings()


# Inputs: what the rules read, converted from rows at the edge. None carries a free-text note.


@dataclass(frozen=True, slots=True)
class DoseRecord:
    """A dose check-in: its slot (`plan_id`, `scheduled_for`, aware) and that slot's local date."""

    id: UUID
    plan_id: UUID
    scheduled_for: datetime
    status: CheckInStatus
    day: date

    @property
    def evidence_id(self) -> str:
        return f"checkin:{self.id}"


@dataclass(frozen=True, slots=True)
class SideEffectRecord:
    """A reported symptom. Either a side effect reported with a check-in (`checkin_id`, an integer
    `id`): on `medication`, on the check-in's slot's local day; or a symptom report made at any time
    (`checkin_id` None, `id` "<report uuid>:<code>", `medication` "", `at` its instant), on its local
    day. `entered_on`, when known, is the local day the member entered it (a late report says so)."""

    id: int | str
    checkin_id: UUID | None
    medication: str
    day: date
    code: str
    severity: Severity
    entered_on: date | None = None
    at: datetime | None = None

    @property
    def evidence_id(self) -> str:
        return f"side_effect:{self.id}" if self.checkin_id is not None else f"symptom:{self.id}"


@dataclass(frozen=True, slots=True)
class CravingRecord:
    id: UUID
    day: date
    intensity: int

    def __post_init__(self) -> None:
        if not CRAVING_MIN <= self.intensity <= CRAVING_MAX:
            raise ValueError(f"craving intensity out of range: {self.intensity}")

    @property
    def evidence_id(self) -> str:
        return f"craving:{self.id}"


@dataclass(frozen=True, slots=True)
class BreathRecord:
    """A breath alcohol reading, g/dL, on its local day."""

    id: UUID
    day: date
    g_dl: Decimal

    def __post_init__(self) -> None:
        if not Decimal(0) <= self.g_dl <= BAC_MAX:
            raise ValueError(f"breath alcohol out of range: {self.g_dl}")

    @property
    def evidence_id(self) -> str:
        return f"breath:{self.id}"


@dataclass(frozen=True, slots=True)
class PacsRecord:
    """A weekly Penn Alcohol Craving Scale: the week it covers (a local Monday) and its total (0-30)."""

    id: UUID
    week_of: date
    total: int

    def __post_init__(self) -> None:
        if not 0 <= self.total <= 30:
            raise ValueError(f"PACS total out of range: {self.total}")

    @property
    def evidence_id(self) -> str:
        return f"pacs:{self.id}"


def drink_log_evidence(day: date) -> str:
    """The evidence id of the drink log of local `day` (a member has one per day)."""
    return f"drink_log:{day.isoformat()}"


def dose_evidence(plan_id: UUID, scheduled_for: datetime) -> str:
    """The evidence id of an unanswered dose slot: its plan and UTC instant."""
    return f"dose:{plan_id}:{localtime.to_utc(scheduled_for).isoformat()}"


@dataclass(frozen=True, slots=True)
class MemberHistory:
    """One member's recent history, as of `now` (aware); `today` is the local date then, in `zone`.

    `last_entry_date` is the local date the member last entered anything (a log, craving, reading or
    check-in, by when it was made: a recall log entered today counts today), ever; the rules also take
    the latest date among the entries given, so an omitted one only makes the disengagement rule
    cautious. `sex` is not read by version 1 of any rule (each DayLog's stored `heavy` applies it);
    `country` sizes the standard drinks in summaries.

    :raises ValueError: `now` is naive, or two drink logs share a day.
    """

    now: datetime
    zone: str
    country: str = "US"
    sex: str | None = None
    enrolled_on: date | None = None
    last_entry_date: date | None = None
    plans: Sequence[Plan] = ()
    doses: Sequence[DoseRecord] = ()
    side_effects: Sequence[SideEffectRecord] = ()
    day_logs: Sequence[DayLog] = ()
    cravings: Sequence[CravingRecord] = ()
    breath: Sequence[BreathRecord] = ()
    pacs: Sequence[PacsRecord] = ()
    today: date = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "today", localtime.local_date(self.now, self.zone))
        days = [log.day for log in self.day_logs]
        if len(set(days)) != len(days):
            raise ValueError("two drink logs for one day")  # one log per member and day is the record


# Outputs.


@dataclass(frozen=True, slots=True)
class Finding:
    """What one rule found for one member: the persistence layer's flag, before it has an id.

    `key` tells apart flags of one rule for one member; every version-1 rule raises at most one
    finding per member, with key "": which side effects and medications are involved is in
    `symptoms` and `medications` (codes, sorted), for the coach view to filter on, and in `summary`.
    """

    rule: str
    version: int
    tier: Tier
    key: str
    evidence: tuple[str, ...]
    first_seen: date
    last_seen: date
    summary: str
    symptoms: tuple[str, ...] = ()
    medications: tuple[str, ...] = ()

    @property
    def cites_symptoms(self) -> bool:
        """Whether the finding rests on symptoms the member reported (`symptoms` is never empty then):
        such a flag must not clear by itself on a rescan, only a coach resolves it (DOMAIN.md)."""
        return bool(self.symptoms)


Check = Callable[[MemberHistory, SafetySettings], Finding | None]
_C = TypeVar("_C", bound=Callable[..., Finding | None])


@dataclass(frozen=True, slots=True)
class Rule:
    """A registered rule: `check(history, settings)`, and `window(settings)`, the local days it reads.
    `cites_symptoms`: its findings may rest on reported symptoms (`Finding.cites_symptoms` says
    whether one does): those flags never clear by themselves."""

    name: str
    version: int
    tier: Tier
    window: Callable[[SafetySettings], int]
    check: Check
    cites_symptoms: bool = False


_RULES: dict[str, Rule] = {}


def _rule(
    name: str, version: int, tier: Tier, window: Callable[[SafetySettings], int], *, symptoms: bool = False
) -> Callable[[_C], _C]:
    def register(check: _C) -> _C:
        _RULES[name] = Rule(name, version, tier, window, check, symptoms)
        return check

    return register


# Helpers.


def _found(
    name: str,
    hits: Iterable[tuple[date, str]],
    summary: str,
    *,
    symptoms: Iterable[str] = (),
    medications: Iterable[str] = (),
) -> Finding:
    """The finding of rule `name` citing `hits` (local day, evidence id); at least one hit."""
    pairs = sorted(set(hits))
    rule = _RULES[name]
    days = [day for day, _ in pairs]
    return Finding(
        rule.name,
        rule.version,
        rule.tier,
        "",
        tuple(sorted({evidence_id for _, evidence_id in pairs})),
        min(days),
        max(days),
        summary,
        tuple(sorted(set(symptoms))),
        tuple(sorted({m for m in medications if m})),
    )


def _medication_name(code: str) -> str:
    medication = get_medication(code)
    return medication.name if medication else code


def _names(codes: Iterable[str]) -> str:
    """Medication names; a symptom reported on no medication has none ("no medication")."""
    return ", ".join(sorted({_medication_name(c) for c in codes if c})) or "no medication"


def _labels(codes: Iterable[str]) -> str:
    return ", ".join(sorted({LABELS.get(c, c) for c in codes}))


def _medications_on(
    history: MemberHistory, medications: frozenset[str], report: SideEffectRecord
) -> set[str]:
    """Which of `medications` the member was on when `report` was made: its own check-in's medication,
    and any of them with a plan in force on the report's local day."""
    found = {report.medication} & medications
    found |= {p.medication for p in history.plans if p.medication in medications and is_active(p, report.day)}
    return found


def _reports_on(
    history: MemberHistory, codes: frozenset[str], medications: frozenset[str], window: DateRange
) -> list[tuple[SideEffectRecord, set[str]]]:
    """Reports of `codes` in `window` made while on any of `medications`, with those medications."""
    found = []
    for report in history.side_effects:
        if report.code in codes and report.day in window:
            on = _medications_on(history, medications, report)
            if on:
                found.append((report, on))
    return found


def _late(reports: Iterable[SideEffectRecord], settings: SafetySettings) -> str:
    """ " Reported late: ..." for the reports entered more than `late_report_days` after their day."""
    late = sorted(
        {
            (r.day, r.entered_on, LABELS.get(r.code, r.code))
            for r in reports
            if r.entered_on is not None and (r.entered_on - r.day).days > settings.late_report_days
        }
    )
    if not late:
        return ""
    return (
        " Reported late: "
        + "; ".join(f"{label} of {day} entered on {entered}" for day, entered, label in late)
        + "."
    )


def _mean(values: Sequence[int]) -> Fraction:
    return Fraction(sum(values), len(values))


def _shown(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# Tapers.


def taper_in_progress(plan: Plan, day: date, *, final_days: int = DEFAULT.taper_final_days) -> bool:
    """Whether `plan` is being tapered on local `day`, for the withdrawal-risk rule (DOMAIN.md: a taper
    is explicit). Either:

    * **a marked taper**: the step in force on `day` carries `taper` (the coach marked it); or
    * **a taper to the end**: the plan has an `end_date`, its regimens from some step on never rise
      again and lower the daily total at least once, the first lowering of that final descent takes
      effect no more than `final_days` days before the end (both days counted), and `day` is on or
      after it.

    Anything else is not a taper: a lowered dose on an open-ended plan, or on a plan whose end is
    further off (baclofen 20 -> 15 mg in May on a plan ending in December), leaves missed doses the
    withdrawal risk they are. A plan not in force on `day` is not tapering.
    """
    if not is_active(plan, day):
        return False
    steps = sorted(plan.steps, key=lambda s: s.from_date)
    totals = [r.daily_mg for r in regimens(plan)]
    index = max(i for i, r in enumerate(regimens(plan)) if r.since <= day)
    if index > 0 and steps[index - 1].taper:
        return True
    if plan.end_date is None:
        return False
    start = len(totals) - 1
    while start > 0 and totals[start] <= totals[start - 1]:
        start -= 1
    first = next((k for k in range(start + 1, len(totals)) if totals[k] < totals[k - 1]), None)
    if first is None or index < first:
        return False
    return (plan.end_date - steps[first - 1].from_date).days + 1 <= final_days


# Dose outcomes for the withdrawal-risk rule.


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A due dose slot of a withdrawal-risk medication: taken or missed, and what to cite."""

    medication: str
    day: date
    missed: bool
    tapering: bool
    evidence_id: str
    scheduled_for: datetime


def _answer_rank(record: DoseRecord) -> tuple[bool, str]:
    # One check-in per slot is the record; if two arrive anyway, `taken` wins, then the smaller id.
    return record.status != CheckInStatus.TAKEN, str(record.id)


def _dose_outcomes(history: MemberHistory, settings: SafetySettings, days: Iterable[date]) -> list[_Outcome]:
    """Every due slot of a withdrawal-risk plan on `days`. Slots not yet `missed_dose_grace` late and
    unanswered are left out: not taken, not missed yet."""
    answers: dict[tuple[UUID, datetime], DoseRecord] = {}
    for record in history.doses:
        slot_key = (record.plan_id, localtime.to_utc(record.scheduled_for))
        current = answers.get(slot_key)
        if current is None or _answer_rank(record) < _answer_rank(current):
            answers[slot_key] = record
    late = localtime.to_utc(history.now) - settings.missed_dose_grace
    wanted = sorted(set(days))  # read once, not per plan: an iterator would serve only the first plan
    outcomes = []
    for plan in history.plans:
        if plan.medication not in WITHDRAWAL_RISK_MEDICATIONS:
            continue
        for day in wanted:
            slots = dose_slots(plan, day, history.zone)
            if not slots:
                continue
            tapering = taper_in_progress(plan, day, final_days=settings.taper_final_days)
            for slot in slots:
                answer = answers.get((plan.id, slot.scheduled_for))
                if answer is not None:
                    missed, evidence_id = answer.status != CheckInStatus.TAKEN, answer.evidence_id
                elif slot.scheduled_for <= late:
                    missed, evidence_id = True, dose_evidence(plan.id, slot.scheduled_for)
                else:
                    continue
                outcomes.append(
                    _Outcome(plan.medication, day, missed, tapering, evidence_id, slot.scheduled_for)
                )
    return outcomes


def _missed_runs(
    outcomes: Sequence[_Outcome], medication: str, settings: SafetySettings, window: DateRange
) -> list[list[_Outcome]]:
    """Runs of at least `withdrawal_missed_days` consecutive missed days of `medication` in `window`
    (plans tapering that day left out), each as the missed doses of its days."""
    by_day: dict[date, list[_Outcome]] = {}
    for outcome in outcomes:
        if outcome.medication == medication and not outcome.tapering and outcome.day in window:
            by_day.setdefault(outcome.day, []).append(outcome)
    needs = any if settings.withdrawal_missed_day == MissedDay.ANY_DOSE else all
    missed_days = sorted(day for day, due in by_day.items() if needs(o.missed for o in due))
    runs: list[list[date]] = []
    for day in missed_days:
        if runs and runs[-1][-1] == day - _DAY:
            runs[-1].append(day)
        else:
            runs.append([day])
    return [
        [o for day in run for o in by_day[day] if o.missed]
        for run in runs
        if len(run) >= settings.withdrawal_missed_days
    ]


# The rules, in DOMAIN.md's order: `evaluate` runs them in this order.


@_rule("severe_side_effect", 1, Tier.URGENT, lambda s: s.report_backfill_days, symptoms=True)
def severe_side_effect(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Any side effect reported `severe` in the last `report_backfill_days` days (`other` included)."""
    window = DateRange.ending(history.today, settings.report_backfill_days)
    reports = [r for r in history.side_effects if r.day in window and r.severity >= Severity.SEVERE]
    if not reports:
        return None
    what = "; ".join(
        f"{LABELS.get(code, code)} ({_names(r.medication for r in reports if r.code == code)})"
        for code in sorted({r.code for r in reports})
    )
    last = max(r.day for r in reports)
    return _found(
        "severe_side_effect",
        ((r.day, r.evidence_id) for r in reports),
        f"Severe side effect reported: {what}; latest on {last}.{_late(reports, settings)}",
        symptoms=(r.code for r in reports),
        medications=(r.medication for r in reports),
    )


@_rule("persistent_side_effect", 1, Tier.WARNING, lambda s: s.persistent_window_days, symptoms=True)
def persistent_side_effect(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """The same side effect at `persistent_min_severity` or worse on at least `persistent_min_days`
    distinct local days of the last `persistent_window_days`."""
    window = DateRange.ending(history.today, settings.persistent_window_days)
    by_code: dict[str, list[SideEffectRecord]] = {}
    for report in history.side_effects:
        if (
            report.code != OTHER
            and report.day in window
            and report.severity >= settings.persistent_min_severity
        ):
            by_code.setdefault(report.code, []).append(report)
    persistent = {
        code: reports
        for code, reports in sorted(by_code.items())
        if len({r.day for r in reports}) >= settings.persistent_min_days
    }
    if not persistent:
        return None
    severity = settings.persistent_min_severity.label
    what = "; ".join(
        f"{LABELS.get(code, code)} ({_names(r.medication for r in reports)}) on "
        f"{len({r.day for r in reports})} of the last {settings.persistent_window_days} days"
        for code, reports in persistent.items()
    )
    return _found(
        "persistent_side_effect",
        ((r.day, r.evidence_id) for reports in persistent.values() for r in reports),
        f"Side effect {severity} or worse, persisting: {what}.",
        symptoms=persistent,
        medications=(r.medication for reports in persistent.values() for r in reports),
    )


@_rule("escalating_side_effect", 1, Tier.WARNING, lambda s: s.escalating_window_days, symptoms=True)
def escalating_side_effect(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """The same side effect over `escalating_reports` consecutive reports in the last
    `escalating_window_days` days: never falls in severity and ends higher than it starts."""
    window = DateRange.ending(history.today, settings.escalating_window_days)
    slot_of = {d.id: localtime.to_utc(d.scheduled_for) for d in history.doses}
    by_code: dict[str, list[SideEffectRecord]] = {}
    for report in history.side_effects:
        if report.code != OTHER and report.day in window:
            by_code.setdefault(report.code, []).append(report)
    escalating: dict[str, list[SideEffectRecord]] = {}
    n = settings.escalating_reports
    for code, reports in sorted(by_code.items()):
        reports.sort(
            key=lambda r: (
                r.day,
                slot_of.get(r.checkin_id, r.at or _LAST_INSTANT) if r.checkin_id else (r.at or _LAST_INSTANT),
                isinstance(r.id, str),
                str(r.id).zfill(20),
                r.severity,
                r.medication,
            )
        )
        for i in range(len(reports) - n + 1):
            run = reports[i : i + n]
            levels = [r.severity for r in run]
            if levels[0] < levels[-1] and all(a <= b for a, b in itertools.pairwise(levels)):
                escalating.setdefault(code, []).extend(run)
    if not escalating:
        return None
    what = "; ".join(
        f"{LABELS.get(code, code)} ({_names(r.medication for r in reports)}) rising to "
        f"{max(r.severity for r in reports).label}"
        for code, reports in escalating.items()
    )
    return _found(
        "escalating_side_effect",
        ((r.day, r.evidence_id) for reports in escalating.values() for r in reports),
        f"Side effect getting worse over {n} reports: {what}.",
        symptoms=escalating,
        medications=(r.medication for reports in escalating.values() for r in reports),
    )


@_rule(
    "withdrawal_risk",
    1,
    Tier.URGENT,
    lambda s: max(s.withdrawal_window_days, s.report_backfill_days) + s.withdrawal_sign_days,
    symptoms=True,
)
def withdrawal_risk(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Baclofen or gabapentin doses missed on `withdrawal_missed_days` consecutive days in the last
    `withdrawal_window_days`, on plans not tapering, while a plan of the medication is in force
    today; or a withdrawal sign (hallucinations, seizure, confusion, agitation) reported in the last
    `report_backfill_days` on or within `withdrawal_sign_days` days after a missed dose (the doses of
    those days are read however long ago they were). See the module docstring."""
    today = history.today
    recent = DateRange.ending(today, settings.withdrawal_window_days)
    reported = DateRange.ending(today, settings.report_backfill_days)
    sign_reports = [r for r in history.side_effects if r.code in WITHDRAWAL_SIGNS and r.day in reported]
    days = set(recent.days())
    for report in sign_reports:
        days |= {report.day - timedelta(days=n) for n in range(settings.withdrawal_sign_days + 1)}
    outcomes = _dose_outcomes(history, settings, days)
    hits: list[tuple[date, str]] = []
    parts: list[str] = []
    involved: set[str] = set()
    in_force = sorted(
        {
            p.medication
            for p in history.plans
            if p.medication in WITHDRAWAL_RISK_MEDICATIONS and is_active(p, today)
        }
    )
    for medication in in_force:
        runs = _missed_runs(outcomes, medication, settings, recent)
        for run in runs:
            hits += [(o.day, o.evidence_id) for o in run]
        if runs:
            involved.add(medication)
            run_days = sorted({o.day for o in runs[-1]})
            parts.append(
                f"{_medication_name(medication)} doses missed on {len(run_days)} days running "
                f"({run_days[0]} to {run_days[-1]}), not during a taper."
            )
    missed = [o for o in outcomes if o.missed]
    signs = []
    medications: set[str] = set()
    for report in sign_reports:
        since = report.day - timedelta(days=settings.withdrawal_sign_days)
        before = [o for o in missed if since <= o.day <= report.day]
        if before:
            signs.append(report)
            medications |= {o.medication for o in before}
            hits += [(report.day, report.evidence_id), *((o.day, o.evidence_id) for o in before)]
    if signs:
        parts.append(
            f"{_labels(s.code for s in signs)} reported after missed {_names(medications)} doses; "
            f"latest on {max(s.day for s in signs)}.{_late(signs, settings)}"
        )
    if not hits:
        return None
    return _found(
        "withdrawal_risk",
        hits,
        " ".join(parts),
        symptoms=(s.code for s in signs),
        medications=involved | medications,
    )


@_rule("sedation_with_drinking", 1, Tier.URGENT, lambda s: s.recent_days, symptoms=True)
def sedation_with_drinking(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Drowsiness, dizziness or confusion reported on a local day that was a heavy drinking day, or
    had a breath reading at or above `sedation_bac_g_dl`, while on baclofen or gabapentin; last
    `recent_days` days. Same local day only: the danger is the two together."""
    window = DateRange.ending(history.today, settings.recent_days)
    heavy = {log.day for log in history.day_logs if log.heavy and log.day in window}
    high: dict[date, list[BreathRecord]] = {}
    for reading in history.breath:
        if reading.day in window and reading.g_dl >= settings.sedation_bac_g_dl:
            high.setdefault(reading.day, []).append(reading)
    hits: list[tuple[date, str]] = []
    medications: set[str] = set()
    codes: set[str] = set()
    heavy_seen = high_seen = False
    for report, on in _reports_on(history, SEDATION_SIGNS, SEDATING_MEDICATIONS, window):
        if report.day in heavy or report.day in high:
            hits.append((report.day, report.evidence_id))
            if report.day in heavy:
                hits.append((report.day, drink_log_evidence(report.day)))
                heavy_seen = True
            if report.day in high:
                hits += [(report.day, r.evidence_id) for r in high[report.day]]
                high_seen = True
            medications |= on
            codes.add(report.code)
    if not hits:
        return None
    days = {day for day, _ in hits}
    reasons = [
        *(["heavy drinking"] if heavy_seen else []),
        *([f"breath alcohol of {settings.sedation_bac_g_dl} g/dL or more"] if high_seen else []),
    ]
    return _found(
        "sedation_with_drinking",
        hits,
        f"{_labels(codes)} reported on {_plural(len(days), 'day')} with {' or '.join(reasons)}, "
        f"while on {_names(medications)}; latest on {max(days)}.",
        symptoms=codes,
        medications=medications,
    )


@_rule("disulfiram_with_drinking", 1, Tier.URGENT, lambda s: s.recent_days)
def disulfiram_with_drinking(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Any drinking logged (grams > 0), or a breath reading above `disulfiram_bac_g_dl` (with or
    without a drink log: the reading is objective), on a local day a disulfiram plan was in force;
    last `recent_days` days. A log of 0 g is an alcohol-free day, not drinking."""
    window = DateRange.ending(history.today, settings.recent_days)
    plans = [p for p in history.plans if p.medication in ALCOHOL_REACTION_MEDICATIONS]

    def on_it(day: date) -> bool:
        return any(is_active(p, day) for p in plans)

    logs = [log for log in history.day_logs if log.day in window and log.grams > 0 and on_it(log.day)]
    readings = [
        b
        for b in history.breath
        if b.day in window and b.g_dl > settings.disulfiram_bac_g_dl and on_it(b.day)
    ]
    if not logs and not readings:
        return None
    days = {log.day for log in logs} | {b.day for b in readings}
    medications = {p.medication for p in plans for day in days if is_active(p, day)}
    parts = []
    if logs:
        drinks = standard_drinks_from_grams(
            sum((log.grams for log in logs), start=Decimal(0)), history.country
        )
        parts.append(
            f"Drinking logged on {_plural(len(logs), 'day')} while on {_names(medications)} "
            f"({drinks} standard drinks in all); latest on {max(log.day for log in logs)}."
        )
    if readings:
        parts.append(
            f"Breath alcohol above {settings.disulfiram_bac_g_dl} g/dL on "
            f"{_plural(len({b.day for b in readings}), 'day')} while on {_names(medications)} "
            f"(up to {max(b.g_dl for b in readings)} g/dL); latest on {max(b.day for b in readings)}."
        )
    return _found(
        "disulfiram_with_drinking",
        [
            *((log.day, drink_log_evidence(log.day)) for log in logs),
            *((b.day, b.evidence_id) for b in readings),
        ],
        " ".join(parts),
        medications=medications,
    )


@_rule("liver_signs", 1, Tier.URGENT, lambda s: s.report_backfill_days, symptoms=True)
def liver_signs(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Dark urine, jaundice or abdominal pain reported, any severity, while on naltrexone or
    disulfiram; last `report_backfill_days` days."""
    return _sign_rule(
        "liver_signs", history, settings, LIVER_SIGNS, LIVER_WATCH_MEDICATIONS, "Liver injury signs"
    )


@_rule("contraindication", 1, Tier.URGENT, lambda s: s.report_backfill_days, symptoms=True)
def contraindication(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Pregnancy or kidney problems reported while on baclofen, acamprosate or gabapentin; last
    `report_backfill_days` days."""
    return _sign_rule(
        "contraindication",
        history,
        settings,
        CONTRAINDICATION_SIGNS,
        CONTRAINDICATED_MEDICATIONS,
        "Contraindication reported",
    )


def _sign_rule(
    name: str,
    history: MemberHistory,
    settings: SafetySettings,
    codes: frozenset[str],
    medications: frozenset[str],
    title: str,
) -> Finding | None:
    """Reports of `codes` in the last `report_backfill_days` days while on any of `medications`."""
    window = DateRange.ending(history.today, settings.report_backfill_days)
    found = _reports_on(history, codes, medications, window)
    if not found:
        return None
    on = set().union(*(meds for _, meds in found))
    return _found(
        name,
        ((r.day, r.evidence_id) for r, _ in found),
        f"{title}: {_labels(r.code for r, _ in found)}, while on {_names(on)}; "
        f"latest on {max(r.day for r, _ in found)}.{_late((r for r, _ in found), settings)}",
        symptoms=(r.code for r, _ in found),
        medications=on,
    )


@_rule(
    "craving_escalation",
    2,
    Tier.WARNING,
    lambda s: max(s.craving_recent_days + s.craving_baseline_days, s.pacs_recent_days + 7),
)
def craving_escalation(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Mean craving of the last `craving_recent_days` days at least `craving_high_mean`, and at least
    `craving_min_rise` above the mean of the `craving_baseline_days` days before. Every rating
    counts; no finding without a rating in both windows. Means are exact (fractions).

    Version 2 (issue 19): or a weekly PACS, for a week starting in the last `pacs_recent_days` days,
    with a total of at least `pacs_high_total` and at least `pacs_min_rise` above the previous week's
    PACS (no finding without the previous week's)."""
    hits: list[tuple[date, str]] = []
    parts: list[str] = []
    recent = DateRange.ending(history.today, settings.craving_recent_days)
    baseline = DateRange.ending(recent.start - _DAY, settings.craving_baseline_days)
    now = [c for c in history.cravings if c.day in recent]
    before = [c.intensity for c in history.cravings if c.day in baseline]
    if now and before:
        mean_now, mean_before = _mean([c.intensity for c in now]), _mean(before)
        if mean_now >= Fraction(settings.craving_high_mean) and mean_now - mean_before >= Fraction(
            settings.craving_min_rise
        ):
            hits += [(c.day, c.evidence_id) for c in now]
            parts.append(
                f"Craving averaged {_shown(mean_now)} over the last {settings.craving_recent_days} days, "
                f"up from {_shown(mean_before)} over the {settings.craving_baseline_days} days before."
            )
    weeks = {p.week_of: p for p in history.pacs}
    pacs_window = DateRange.ending(history.today, settings.pacs_recent_days)
    for week_of, pacs in sorted(weeks.items()):
        previous = weeks.get(week_of - timedelta(days=7))
        if (
            week_of in pacs_window
            and previous is not None
            and pacs.total >= settings.pacs_high_total
            and pacs.total - previous.total >= settings.pacs_min_rise
        ):
            hits += [(week_of, pacs.evidence_id), (previous.week_of, previous.evidence_id)]
            parts.append(
                f"PACS {pacs.total} for the week of {week_of}, up from {previous.total} the week before."
            )
    if not hits:
        return None
    return _found("craving_escalation", hits, " ".join(parts))


@_rule("relapse_pattern", 1, Tier.WARNING, lambda s: s.relapse_window_days + s.relapse_free_days)
def relapse_pattern(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """At least `relapse_heavy_days` heavy days in the last `relapse_window_days`, and the
    `relapse_free_days` days before the earliest of them hold no heavy day and at least
    `relapse_min_logged_days` logged days."""
    window = DateRange.ending(history.today, settings.relapse_window_days)
    heavy = sorted(log.day for log in history.day_logs if log.heavy and log.day in window)
    if len(heavy) < settings.relapse_heavy_days:
        return None
    stretch = DateRange.ending(heavy[0] - _DAY, settings.relapse_free_days)
    before = [log for log in history.day_logs if log.day in stretch]
    if any(log.heavy for log in before) or len(before) < settings.relapse_min_logged_days:
        return None
    return _found(
        "relapse_pattern",
        ((day, drink_log_evidence(day)) for day in heavy),
        f"{len(heavy)} heavy drinking days in the last {settings.relapse_window_days} days, after "
        f"{settings.relapse_free_days} or more days without one; latest on {heavy[-1]}.",
    )


@_rule("disengagement", 1, Tier.INFO, lambda s: s.disengagement_days)
def disengagement(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """At least `disengagement_days` days since the latest entry of any kind (today counts as one
    without an entry), or since enrolment when there is none; no finding when neither is known.
    Cites no entry: absence has none. `first_seen` is the first day without an entry."""
    today = history.today
    dates = [
        *(d.day for d in history.doses),
        *(r.day for r in history.side_effects),
        *(log.day for log in history.day_logs),
        *(c.day for c in history.cravings),
        *(b.day for b in history.breath),
    ]
    if history.last_entry_date is not None:
        dates.append(history.last_entry_date)
    known = [d for d in dates if d <= today]
    last = max(known) if known else None
    since = last if last is not None else history.enrolled_on
    if since is None or (today - since).days < settings.disengagement_days:
        return None
    idle = (today - since).days
    what = f"last on {last}" if last is not None else f"none since enrolling on {since}"
    rule = _RULES["disengagement"]
    return Finding(
        rule.name, rule.version, rule.tier, "", (), since + _DAY, today, f"No entry for {idle} days ({what})."
    )


@dataclass(frozen=True, slots=True)
class _Stop:
    """Doses of a withdrawal-risk medication that stopped being taken before a withdrawal sign: the
    last `taken` check-in before the sign's day, and the doses missed after it."""

    medication: str
    last_taken: DoseRecord
    missed: tuple[_Outcome, ...]


def _stopped_before(
    history: MemberHistory, settings: SafetySettings, report: SideEffectRecord
) -> list[_Stop]:
    """For each baclofen or gabapentin whose doses stopped being taken 1 to `withdrawal_after_stop_days`
    days before `report`'s local day D, and of which no plan is in force on D (with a plan in force,
    missed doses before the sign are `withdrawal_risk`'s, which flags them already): its last `taken`
    dose L (pooled over every plan of the medication) is on a day before D and at most that many days
    before it, L's plan was not tapering on L's day (`taper_in_progress`: stopping during a planned
    taper is not this rule's stop), and at least one due dose after L, before D, was missed (skipped,
    or unanswered `missed_dose_grace` past due)."""
    stops = []
    earliest = report.day - timedelta(days=settings.withdrawal_after_stop_days)
    for medication in sorted(WITHDRAWAL_RISK_MEDICATIONS):
        plans = {p.id: p for p in history.plans if p.medication == medication}
        if any(is_active(p, report.day) for p in plans.values()):
            continue
        taken = [
            d
            for d in history.doses
            if d.plan_id in plans and d.status == CheckInStatus.TAKEN and earliest <= d.day <= report.day
        ]
        if not taken:
            continue
        last = max(taken, key=lambda d: (localtime.to_utc(d.scheduled_for), str(d.id)))
        if last.day >= report.day or taper_in_progress(
            plans[last.plan_id], last.day, final_days=settings.taper_final_days
        ):
            continue
        after = localtime.to_utc(last.scheduled_for)
        days = [last.day + timedelta(days=n) for n in range((report.day - last.day).days)]
        missed = tuple(
            o
            for o in _dose_outcomes(history, settings, days)
            if o.medication == medication and o.missed and o.scheduled_for > after
        )
        if missed:
            stops.append(_Stop(medication, last, missed))
    return stops


@_rule(
    "withdrawal_after_stop",
    2,
    Tier.URGENT,
    lambda s: s.report_backfill_days + s.withdrawal_after_stop_days,
    symptoms=True,
)
def withdrawal_after_stop(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """A withdrawal sign (hallucinations, seizure, confusion, agitation) reported in the last
    `report_backfill_days` days, 1 to `withdrawal_after_stop_days` days after a baclofen or gabapentin
    plan ended (its `end_date`) without a taper on its last day, with no plan of that medication in
    force on the report's day: an abrupt stop, whether or not any plan is in force today. Reports on a
    check-in or on their own (a symptom report) alike.

    Version 2 (issue 19): or 1 to `withdrawal_after_stop_days` days after the medication's doses
    stopped being taken (`_stopped_before`: the last dose taken, not during a taper, then only missed
    doses), its plan no longer in force on the report's day however it ended (a taper on paper, a
    marked taper the member never took, no taper). Cites the sign, the last dose taken and the doses
    missed after it; the summary names the last dose taken."""
    window = DateRange.ending(history.today, settings.report_backfill_days)
    ended = [
        p
        for p in history.plans
        if p.medication in WITHDRAWAL_RISK_MEDICATIONS
        and p.end_date is not None
        and not taper_in_progress(p, p.end_date, final_days=settings.taper_final_days)
    ]
    plan_of = {p.id: p for p in history.plans}
    hits: list[tuple[date, str]] = []
    signs: list[SideEffectRecord] = []
    stopped: dict[str, date] = {}
    last_taken: dict[str, _Stop] = {}
    for report in history.side_effects:
        if report.code not in WITHDRAWAL_SIGNS or report.day not in window:
            continue
        for plan in ended:
            assert plan.end_date is not None
            since = (report.day - plan.end_date).days
            continued = any(
                p.medication == plan.medication and is_active(p, report.day) for p in history.plans
            )
            if 1 <= since <= settings.withdrawal_after_stop_days and not continued:
                hits.append((report.day, report.evidence_id))
                signs.append(report)
                stopped[plan.medication] = max(plan.end_date, stopped.get(plan.medication, plan.end_date))
        for stop in _stopped_before(history, settings, report):
            hits += [
                (report.day, report.evidence_id),
                (stop.last_taken.day, stop.last_taken.evidence_id),
                *((o.day, o.evidence_id) for o in stop.missed),
            ]
            signs.append(report)
            current = last_taken.get(stop.medication)
            if current is None or _stop_rank(stop) > _stop_rank(current):
                last_taken[stop.medication] = stop
    if not hits:
        return None
    reasons = [f"{_medication_name(m)} ended on {day}" for m, day in sorted(stopped.items())]
    reasons += [_stop_reason(stop, history.zone, plan_of) for _, stop in sorted(last_taken.items())]
    return _found(
        "withdrawal_after_stop",
        hits,
        f"{_labels(s.code for s in signs)} reported after a stop without a taper ({'; '.join(reasons)}); "
        f"latest on {max(s.day for s in signs)}.{_late(signs, settings)}",
        symptoms=(s.code for s in signs),
        medications=set(stopped) | set(last_taken),
    )


def _stop_rank(stop: _Stop) -> tuple[datetime, int]:
    """The stop a summary names: the latest last dose taken, then the most doses missed after it."""
    return localtime.to_utc(stop.last_taken.scheduled_for), len(stop.missed)


def _stop_reason(stop: _Stop, zone: str, plan_of: Mapping[UUID, Plan]) -> str:
    """ "last Baclofen dose taken: the 20:00 dose of 2026-11-04 (20 mg), then 3 doses missed"."""
    last = stop.last_taken
    wall = localtime.to_utc(last.scheduled_for).astimezone(ZoneInfo(zone))
    plan = plan_of.get(last.plan_id)
    regimen = regimen_on(plan, last.day) if plan is not None else None
    dose = f" ({regimen.dose_mg.normalize():f} mg)" if regimen is not None else ""
    return (
        f"last {_medication_name(stop.medication)} dose taken: the {wall:%H:%M} dose of {last.day}{dose}, "
        f"then {_plural(len(stop.missed), 'dose')} missed"
    )


@_rule("suicidal_thoughts", 1, Tier.URGENT, lambda s: s.report_backfill_days, symptoms=True)
def suicidal_thoughts(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Thoughts of suicide or self-harm reported at any severity, on any medication or none (acamprosate's
    label names them); last `report_backfill_days` days."""
    window = DateRange.ending(history.today, settings.report_backfill_days)
    reports = [r for r in history.side_effects if r.code in SUICIDAL_SIGNS and r.day in window]
    if not reports:
        return None
    on = {r.medication for r in reports if r.medication}
    on |= {p.medication for p in history.plans for r in reports if is_active(p, r.day)}
    during = f", while on {_names(on)}" if on else ""
    return _found(
        "suicidal_thoughts",
        ((r.day, r.evidence_id) for r in reports),
        f"Thoughts of suicide or self-harm reported{during}; latest on {max(r.day for r in reports)}."
        f"{_late(reports, settings)}",
        symptoms=(r.code for r in reports),
        medications=on,
    )


@_rule("opioid_use_on_naltrexone", 1, Tier.URGENT, lambda s: s.report_backfill_days, symptoms=True)
def opioid_use_on_naltrexone(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Opioid use reported while on naltrexone; last `report_backfill_days` days."""
    return _sign_rule(
        "opioid_use_on_naltrexone", history, settings, OPIOID_SIGNS, OPIOID_WATCH_MEDICATIONS, "Opioid use"
    )


@_rule("kidney_stones_on_topiramate", 1, Tier.URGENT, lambda s: s.report_backfill_days, symptoms=True)
def kidney_stones_on_topiramate(history: MemberHistory, settings: SafetySettings = DEFAULT) -> Finding | None:
    """Kidney stones reported while on topiramate; last `report_backfill_days` days."""
    return _sign_rule(
        "kidney_stones_on_topiramate",
        history,
        settings,
        KIDNEY_STONE_SIGNS,
        KIDNEY_STONE_MEDICATIONS,
        "Kidney stones reported",
    )


#: Every rule by name, in evaluation order. The persistence layer stores `name` and `version`.
RULES: Mapping[str, Rule] = MappingProxyType(dict(_RULES))
#: The rules whose findings may rest on reported symptoms (`Rule.cites_symptoms`); a finding of one
#: does when `Finding.cites_symptoms`. Such flags never clear by themselves (DOMAIN.md).
SYMPTOM_RULES = frozenset(name for name, rule in RULES.items() if rule.cites_symptoms)


def lookback_days(settings: SafetySettings = DEFAULT) -> int:
    """Local days, today included, of entries a caller must load for every rule under `settings`."""
    return max(rule.window(settings) for rule in RULES.values())


#: The local days each rule reads under the default settings.
RULE_LOOKBACK_DAYS: Mapping[str, int] = MappingProxyType({n: r.window(DEFAULT) for n, r in RULES.items()})
#: The local days, today included, a caller loads to run every rule under the default settings.
LOOKBACK_DAYS = lookback_days(DEFAULT)


def evaluate(history: MemberHistory, settings: SafetySettings = DEFAULT) -> list[Finding]:
    """Every rule's finding for `history`, in `RULES` order; rules that find nothing are left out."""
    return [finding for rule in RULES.values() if (finding := rule.check(history, settings)) is not None]


# When time alone can change the findings (the sweep's schedule).

#: The rules whose findings can gain evidence with no new entry, as days pass: missed doses
#: (withdrawal risk), absence (disengagement), and the craving baseline sliding out from under a
#: high recent mean. Every other rule reads entries in windows that only shrink as days pass; the
#: domain's property tests check that `next_check` never misses a change.
TIME_DRIVEN_RULES = frozenset(
    {"withdrawal_risk", "withdrawal_after_stop", "disengagement", "craving_escalation"}
)


def _midnight(day: date, zone: str) -> datetime:
    return localtime.day_bounds_utc(day, zone)[0]


def _follow_days(settings: SafetySettings) -> int:
    """How long after the latest entry the sweep keeps visiting a quiet member each midnight (their
    disengagement flag's last day follows): the lookback of the rules over recent days. The backfill
    window of one-off reports is left out: it would keep a long-gone member in the sweep for two months."""
    return lookback_days(dataclasses.replace(settings, report_backfill_days=1))


def next_check(history: MemberHistory, settings: SafetySettings = DEFAULT) -> datetime | None:
    """The earliest UTC instant after `history.now` at which the rules could find something new for
    this history with no new entry (a new finding, or new evidence for one), or None when time alone
    can change nothing. The periodic sweep visits a member only once this instant has passed (or
    after a new entry), so it visits only members with something to check.

    The instants: the deadline (slot + `missed_dose_grace`) of each unanswered dose slot of a
    withdrawal-risk plan; the local midnight a plan starts or changes step; the local midnight the
    member crosses `disengagement_days` without an entry, and each midnight after while still within
    `_follow_days` (so the flag's last day seen follows); and the first local midnight at which the
    craving rule, re-run with the same ratings, would cite a rating it does not cite now.
    """
    now, zone, today = localtime.to_utc(history.now), history.zone, history.today
    found: list[datetime] = []

    answered = {(d.plan_id, localtime.to_utc(d.scheduled_for)) for d in history.doses}
    first_day = localtime.local_date(now - settings.missed_dose_grace, zone) - _DAY
    for plan in history.plans:
        starts = [plan.start_date, *(step.from_date for step in plan.steps)]
        found += [_midnight(day, zone) for day in starts if day > today]
        if plan.medication not in WITHDRAWAL_RISK_MEDICATIONS:
            continue
        day = first_day
        while day <= today + _DAY:
            for slot in dose_slots(plan, day, zone):
                deadline = slot.scheduled_for + settings.missed_dose_grace
                if deadline > now and (plan.id, slot.scheduled_for) not in answered:
                    found.append(deadline)
            day += _DAY

    dates = [
        *(d.day for d in history.doses),
        *(log.day for log in history.day_logs),
        *(c.day for c in history.cravings),
        *(b.day for b in history.breath),
    ]
    if history.last_entry_date is not None:
        dates.append(history.last_entry_date)
    known = [d for d in dates if d <= today]
    since = max(known) if known else history.enrolled_on
    if since is not None:
        crossing = since + timedelta(days=settings.disengagement_days)
        if crossing > today:
            found.append(_midnight(crossing, zone))
        elif (today - since).days < _follow_days(settings):
            found.append(_midnight(today + _DAY, zone))

    if history.cravings:
        cited = set(current.evidence) if (current := craving_escalation(history, settings)) else set()
        horizon = max(c.day for c in history.cravings) + timedelta(
            days=settings.craving_recent_days + settings.craving_baseline_days
        )
        day = today + _DAY
        while day <= horizon:
            later = dataclasses.replace(history, now=_midnight(day, zone))
            finding = craving_escalation(later, settings)
            if finding is not None and not set(finding.evidence) <= cited:
                found.append(_midnight(day, zone))
                break
            day += _DAY

    return min((instant for instant in found if instant > now), default=None)
