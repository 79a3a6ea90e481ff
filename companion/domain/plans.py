"""Medication plans and their dose slots, titration and taper aware.

A plan has a base regimen (`dose_mg` at each of `times`, local wall-clock) from `start_date`, and
optional `steps` that replace it from their `from_date` on: a titration raises the dose, a taper
lowers it. Dose slots are computed in the member's zone with `localtime.local_to_utc`, so each
scheduled time fires exactly once per local day, DST days included. A check-in names its slot by
instant (`scheduled_for`); `slot_matches` is how a check-in is tied back to the plan.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from uuid import UUID

from companion.domain import localtime
from companion.domain.errors import InvalidInput
from companion.domain.medications import get_medication

#: At most this many dose times a day in a regimen (ours): more is a data-entry mistake.
MAX_TIMES_PER_DAY = 6

#: A plan with a decreasing step counts as tapering over its last this-many days, end_date included (ours).
TAPER_FINAL_DAYS = 14


@dataclass(frozen=True, slots=True)
class PlanStep:
    """From `from_date` on, take `dose_mg` at each of `times` (until the next step or the plan's end).
    `taper`: the coach marked this step as part of a taper (the withdrawal-risk rule reads it)."""

    from_date: date
    dose_mg: Decimal
    times: tuple[time, ...]
    taper: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """A member's plan for one medication. `end_date` is inclusive; None means open-ended."""

    id: UUID
    medication: str
    dose_mg: Decimal
    times: tuple[time, ...]
    start_date: date
    end_date: date | None = None
    steps: tuple[PlanStep, ...] = ()


@dataclass(frozen=True, slots=True)
class Regimen:
    """What the plan prescribes on a day: `dose_mg` at each of `times`, in force since `since`."""

    dose_mg: Decimal
    times: tuple[time, ...]
    since: date

    @property
    def daily_mg(self) -> Decimal:
        """The day's total dose: what a titration raises and a taper lowers."""
        return self.dose_mg * len(self.times)


@dataclass(frozen=True, slots=True)
class DoseSlot:
    """One scheduled dose: the local day and wall time, and the UTC instant a check-in names."""

    plan_id: UUID
    local_date: date
    local_time: time
    scheduled_for: datetime
    dose_mg: Decimal


class CheckInStatus(enum.StrEnum):
    TAKEN = "taken"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class CheckIn:
    """A dose check-in as the domain needs it: which plan, which slot (an aware instant), what happened."""

    plan_id: UUID
    scheduled_for: datetime
    status: CheckInStatus


def regimens(plan: Plan) -> list[Regimen]:
    """The base regimen, then each step's, in date order."""
    base = Regimen(plan.dose_mg, plan.times, plan.start_date)
    steps = sorted(plan.steps, key=lambda s: s.from_date)
    return [base, *(Regimen(s.dose_mg, s.times, s.from_date) for s in steps)]


def _in_force(plan: Plan, day: date) -> int | None:
    """Index into `regimens(plan)` of the regimen in force on `day`, or None outside the plan."""
    if day < plan.start_date or (plan.end_date is not None and day > plan.end_date):
        return None
    index = 0
    for i, regimen in enumerate(regimens(plan)):
        if regimen.since <= day:
            index = i
    return index


def regimen_on(plan: Plan, day: date) -> Regimen | None:
    """The regimen in force on local `day`: the last step started by then, else the base; None outside
    [start_date, end_date]."""
    index = _in_force(plan, day)
    return None if index is None else regimens(plan)[index]


def is_active(plan: Plan, day: date) -> bool:
    """Whether the plan schedules doses on local `day` (the API's `active`, with day = local today)."""
    return _in_force(plan, day) is not None


def dose_slots(plan: Plan, day: date, zone: str) -> list[DoseSlot]:
    """The plan's doses on local `day` in `zone`, earliest first; empty outside the plan.

    Each time fires once (gap times move forward, repeated times take the first occurrence). If two
    times land on the same instant, which only a spring-forward gap can cause (02:30 and 03:30 on the
    US spring-forward day), they are one slot, labelled with the earlier time: a dose cannot be checked
    in twice for one instant.
    """
    regimen = regimen_on(plan, day)
    if regimen is None:
        return []
    slots: dict[datetime, DoseSlot] = {}
    for wall in sorted(regimen.times):
        instant = localtime.local_to_utc(day, wall, zone)
        slots.setdefault(instant, DoseSlot(plan.id, day, wall, instant, regimen.dose_mg))
    return sorted(slots.values(), key=lambda s: s.scheduled_for)


def slot_matches(plan: Plan, scheduled_for: datetime, zone: str) -> DoseSlot | None:
    """The slot the plan schedules at exactly the instant `scheduled_for`, or None.

    Instants are compared after normalising to UTC, so "2026-11-01T08:00-05:00" and
    "2026-11-01T13:00Z" name the same slot; "2026-11-01T08:00-04:00" (a stale offset) names none.

    :raises ValueError: `scheduled_for` is naive.
    """
    instant = localtime.to_utc(scheduled_for)
    day = localtime.local_date(instant, zone)
    # A slot lands on its own local day; the neighbours are checked in case a zone's transition
    # pushes a gap time past midnight.
    for candidate in (day, day - timedelta(days=1), day + timedelta(days=1)):
        for slot in dose_slots(plan, candidate, zone):
            if slot.scheduled_for == instant:
                return slot
    return None


def is_tapering(plan: Plan, day: date) -> bool:
    """Whether a taper is in progress on `day` (the withdrawal-risk rule does not fire during one).

    Tapering, when the plan is in force on `day` and either:

    * the regimen in force is a step whose daily total (dose x times) is below the regimen before it
      (the previous step, or the base); or
    * `day` is within the last TAPER_FINAL_DAYS days up to `end_date`, and some step lowered the
      daily total.

    Consequence to keep in view: a lasting dose reduction made as a step (with or without an end date)
    counts as a taper for as long as it is in force, so the withdrawal-risk rule stays quiet about
    missed doses on it. That is the specified minimum; narrowing it is a clinical decision.
    """
    index = _in_force(plan, day)
    if index is None:
        return False
    totals = [r.daily_mg for r in regimens(plan)]
    if index > 0 and totals[index] < totals[index - 1]:
        return True
    lowered = any(later < earlier for earlier, later in itertools.pairwise(totals))
    return lowered and plan.end_date is not None and day > plan.end_date - timedelta(days=TAPER_FINAL_DAYS)


def _times_problems(times: tuple[time, ...], prefix: str) -> list[str]:
    problems = []
    if not 1 <= len(times) <= MAX_TIMES_PER_DAY:
        problems.append(f"{prefix}between 1 and {MAX_TIMES_PER_DAY} times a day.")
    if any(t.tzinfo is not None or t.second or t.microsecond for t in times):
        problems.append(f'{prefix}times must be local "HH:MM" wall-clock times.')
        return problems  # aware and naive times do not even compare
    if len(set(times)) != len(times):
        problems.append(f"{prefix}times must not repeat.")
    elif list(times) != sorted(times):
        problems.append(f"{prefix}times must be in order.")
    return problems


def step_problems(plan: Plan) -> list[str]:
    """What is wrong with the plan's steps, one message each; empty when they are fine.

    Steps start strictly after `start_date` (a step on the start date would make the base regimen
    meaningless) and no later than `end_date`, in strictly increasing date order; each has a positive
    dose and 1..MAX_TIMES_PER_DAY distinct times in order.
    """
    problems: list[str] = []
    previous = plan.start_date
    for number, step in enumerate(plan.steps, start=1):
        prefix = f"Step {number}: "
        if step.from_date <= previous:
            after = "the plan's start_date" if number == 1 else f"step {number - 1}'s from_date"
            problems.append(f"{prefix}from_date must be after {after}.")
        if plan.end_date is not None and step.from_date > plan.end_date:
            problems.append(f"{prefix}from_date must not be after the plan's end_date.")
        if step.dose_mg <= 0:
            problems.append(f"{prefix}dose_mg must be positive.")
        problems += _times_problems(step.times, prefix)
        previous = max(previous, step.from_date)
    return problems


def plan_problems(plan: Plan) -> dict[str, list[str]]:
    """Every problem with `plan`, by API field name: medication, dose_mg, times, end_date, steps."""
    problems: dict[str, list[str]] = {}
    if get_medication(plan.medication) is None:
        problems["medication"] = ["Not a medication in the catalogue."]
    if plan.dose_mg <= 0:
        problems["dose_mg"] = ["Must be positive."]
    if times := _times_problems(plan.times, ""):
        problems["times"] = [t[0].upper() + t[1:] for t in times]
    if plan.end_date is not None and plan.end_date < plan.start_date:
        problems["end_date"] = ["Must not be before start_date."]
    if steps := step_problems(plan):
        problems["steps"] = steps
    return problems


def validate_plan(plan: Plan) -> None:
    """:raises InvalidInput: naming each bad field when anything in the plan is wrong."""
    if problems := plan_problems(plan):
        raise InvalidInput("The medication plan is invalid.", fields=problems)


# Dose limits (issue 19): a daily dose above the label's usual maximum needs the coach's confirmation.


@dataclass(frozen=True, slots=True)
class DoseLimits:
    """Each medication's usual maximum daily dose, mg (settings; defaults from the labels and DOMAIN.md:
    France caps baclofen for AUD at 80 mg/day; naltrexone 50 mg oral). A regimen whose daily total is
    above it needs `confirm_high_dose`; above `refused_factor` times it, it is refused whatever is sent."""

    usual_max_mg: Mapping[str, Decimal] = field(
        default_factory=lambda: MappingProxyType(
            {
                "baclofen": Decimal(80),
                "naltrexone": Decimal(50),
                "acamprosate": Decimal(1998),
                "gabapentin": Decimal(3600),
                "topiramate": Decimal(300),
                "disulfiram": Decimal(500),
            }
        )
    )
    refused_factor: Decimal = Decimal(2)


#: The defaults.
DOSE_LIMITS = DoseLimits()


def highest_daily_mg(plan: Plan) -> Decimal:
    """The largest daily total among the plan's regimens (base and steps)."""
    return max(r.daily_mg for r in regimens(plan))


def is_high_dose(plan: Plan, limits: DoseLimits = DOSE_LIMITS) -> bool:
    """Whether any regimen of the plan is above the medication's usual maximum daily dose."""
    maximum = limits.usual_max_mg.get(plan.medication)
    return maximum is not None and highest_daily_mg(plan) > maximum


def dose_limit_problems(
    plan: Plan, *, confirmed: bool, limits: DoseLimits = DOSE_LIMITS
) -> dict[str, list[str]]:
    """Regimens above the usual maximum daily dose (without `confirmed`) or above `refused_factor` times
    it (always), by API field: `dose_mg` for the base regimen, `steps` for a step. Empty when fine."""
    maximum = limits.usual_max_mg.get(plan.medication)
    if maximum is None:
        return {}
    refused = maximum * limits.refused_factor
    problems: dict[str, list[str]] = {}
    for number, regimen in enumerate(regimens(plan)):
        daily = regimen.daily_mg.normalize()
        name, prefix = ("dose_mg", "") if number == 0 else ("steps", f"Step {number}: ")
        if regimen.daily_mg > refused:
            problems.setdefault(name, []).append(
                f"{prefix}{daily:f} mg a day is more than {refused.normalize():f} mg, twice the usual "
                f"maximum daily dose of {plan.medication} ({maximum.normalize():f} mg): refused."
            )
        elif regimen.daily_mg > maximum and not confirmed:
            problems.setdefault(name, []).append(
                f"{prefix}{daily:f} mg a day is above the usual maximum daily dose of {plan.medication} "
                f"({maximum.normalize():f} mg); send confirm_high_dose: true to prescribe it."
            )
    return problems
