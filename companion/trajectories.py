"""How simulated members behave: where they live, how their drinking, craving and logging move over the
program (`Trajectory`), and the plans a coach would write for them (`draw_plan`). Pure, deterministic
draws from a `random.Random`: `companion simulate` turns them into rows, and `companion.demo` draws its
members' days from the same `Trajectory`."""

from __future__ import annotations

import functools
import math
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from companion.domain import drinking, localtime, plans

#: (zone, country, weight): where members live. The country picks the standard drink size.
ZONES: tuple[tuple[str, str, int], ...] = (
    ("America/New_York", "US", 18),
    ("America/Chicago", "US", 12),
    ("America/Denver", "US", 5),
    ("America/Phoenix", "US", 3),
    ("America/Los_Angeles", "US", 12),
    ("America/Anchorage", "US", 1),
    ("Pacific/Honolulu", "US", 1),
    ("America/Toronto", "CA", 5),
    ("America/Vancouver", "CA", 2),
    ("Europe/London", "GB", 8),
    ("Europe/Dublin", "IE", 2),
    ("Europe/Berlin", "DE", 4),
    ("Europe/Vienna", "AT", 1),
    ("Europe/Copenhagen", "DK", 1),
    ("Asia/Kolkata", "IN", 3),
    ("Asia/Tokyo", "JP", 2),
    ("Australia/Sydney", "AU", 5),
    ("Australia/Perth", "AU", 1),
    ("Pacific/Auckland", "NZ", 2),
    ("America/Sao_Paulo", "BR", 2),
)

#: (kind, weight): how members' drinking goes over the program.
TRAJECTORY_KINDS = (("improve", 50), ("relapse", 20), ("drift", 20), ("steady", 10))

#: (medication, weight) among members on a plan; 65 % of members have one.
MEDICATION_WEIGHTS = (
    ("baclofen", 35),
    ("naltrexone", 25),
    ("acamprosate", 12),
    ("gabapentin", 12),
    ("topiramate", 8),
    ("disulfiram", 8),
)
PLAN_SHARE = 0.65

#: Share of a medication's members who report each side effect at some point: the middle of the label's
#: range where DOMAIN.md gives one (baclofen), else the US label's figure, rounded; small where the label
#: names the effect without a figure. Danger signs are not simulated: the safety benchmark seeds those.
SIDE_EFFECT_SHARE: dict[str, dict[str, float]] = {
    "baclofen": {
        "drowsiness": 0.36,
        "dizziness": 0.10,
        "weakness": 0.10,
        "nausea": 0.08,
        "confusion": 0.06,
        "headache": 0.06,
        "insomnia": 0.045,
        "fatigue": 0.03,
        "constipation": 0.02,
        "urinary_frequency": 0.02,
    },
    "naltrexone": {
        "nausea": 0.10,
        "headache": 0.07,
        "dizziness": 0.04,
        "fatigue": 0.04,
        "anxiety": 0.02,
        "insomnia": 0.03,
    },
    "acamprosate": {"diarrhea": 0.16, "insomnia": 0.06, "anxiety": 0.05},
    "gabapentin": {
        "dizziness": 0.20,
        "drowsiness": 0.18,
        "fatigue": 0.11,
        "headache": 0.05,
        "insomnia": 0.03,
    },
    "topiramate": {"tingling": 0.40, "sedation": 0.20, "trouble_thinking": 0.15},
    "disulfiram": {"drowsiness": 0.10, "metallic_taste": 0.05},
}
#: (severity, weight) of a member's side effect.
SEVERITY_WEIGHTS = (("mild", 78), ("moderate", 20), ("severe", 2))

TRIGGERS = ("stress", "social", "evening", "boredom", "conflict", "loneliness", "celebration", "tired")
#: A drink as entered by kind: (kind, volume ml, ABV %), each about one US standard drink.
DRINK_ITEMS = (("beer", 355, "5"), ("wine", 150, "12"), ("spirits", 44, "40"))
#: Share of members who take breath readings, and of their logged days with readings.
BAC_USER_SHARE = 0.3

NOON = time(12, 0)


# --- a member's days: pure, shared with the demo ------------------------------------------------------


@dataclass(frozen=True)
class Day:
    """What a member does on one day of the program: whether they log it, what they drank (US standard
    drinks), and how strong their craving was."""

    logged: bool
    drinks: int
    craving: int


@dataclass(frozen=True)
class Trajectory:
    """How a member's drinking, craving and engagement move over the program (day 0 = enrollment).

    `level(t)` is drinking relative to the baseline (1.0): improving members approach `floor` at pace
    `pace` days; a relapse returns to the baseline for `relapse_days` from `relapse_day`; a member who
    drifts away logs ever less from `drift_day`; a steady member stays near the baseline.
    """

    kind: str
    drink_share: float
    drinks: float
    floor: float
    pace: float
    log_share: float
    craving: float
    relapse_day: int = 0
    relapse_days: int = 0
    drift_day: int = 0

    @classmethod
    def draw(cls, rng: random.Random, *, goal: str, days: int, **overrides: Any) -> Trajectory:
        kind = _weighted(rng, TRAJECTORY_KINDS)
        drift_day = rng.randrange(max(1, days // 5), max(2, days * 4 // 5))
        drawn = cls(
            kind=kind,
            drink_share=rng.uniform(0.45, 0.95),
            drinks=rng.uniform(3.0, 8.0) if goal == "abstain" else rng.uniform(2.5, 6.0),
            floor=rng.uniform(0.03, 0.3) if goal == "abstain" else rng.uniform(0.2, 0.5),
            pace=rng.uniform(7, 40),
            log_share=rng.uniform(0.6, 0.97),
            craving=rng.uniform(4.0, 8.0),
            relapse_day=rng.randrange(max(1, days // 3), max(2, days * 4 // 5)),
            relapse_days=rng.randrange(5, 22),
            drift_day=drift_day,
        )
        return replace(drawn, **overrides)

    def level(self, t: int) -> float:
        if self.kind == "steady":
            return 0.9
        if self.kind == "relapse" and self.relapse_day <= t < self.relapse_day + self.relapse_days:
            return 1.0
        return self.floor + (1 - self.floor) * math.exp(-t / self.pace)

    def engagement(self, t: int) -> float:
        """The chance of logging day t."""
        if self.kind == "drift" and t >= self.drift_day:
            return self.log_share * math.exp(-(t - self.drift_day) / 4)
        return self.log_share

    def day(self, rng: random.Random, t: int) -> Day:
        level = self.level(t)
        drinking = rng.random() < self.drink_share * level
        drinks = max(1, round(rng.gauss(self.drinks * (0.5 + 0.5 * level), 1.2))) if drinking else 0
        mood = self.craving * (0.4 + 0.6 * level) + (1.5 if drinking else 0.0)
        craving = max(0, min(10, round(rng.gauss(mood, 1.3))))
        return Day(rng.random() < self.engagement(t), drinks, craving)


def standard_drinks_entered(us_drinks: int, country: str) -> Decimal:
    """What a member counts for `us_drinks` US standard drinks (14 g) in their own country's size, to 0.1."""
    us = drinking.standard_drink_grams(drinking.DEFAULT_COUNTRY)
    return (us_drinks * us / drinking.standard_drink_grams(country)).quantize(Decimal("0.1"))


def _weighted(rng: random.Random, choices: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


# --- plans -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimPlan:
    plan: plans.Plan
    adherence: float
    #: side effect -> (first day, last day, severity) when the member has it.
    effects: dict[str, tuple[date, date, str]] = field(default_factory=dict)


def _t(*hhmm: str) -> tuple[time, ...]:
    return tuple(time.fromisoformat(h) for h in hhmm)


def draw_plan(rng: random.Random, plan_id: uuid.UUID, start: date, last: date) -> SimPlan:
    """A plan as a coach would write it, starting on `start`; it may end (a taper) before `last`."""
    medication = _weighted(rng, MEDICATION_WEIGHTS)
    steps: list[plans.PlanStep] = []
    end: date | None = None
    if medication == "baclofen":
        # 5 mg three times a day, +5 mg a dose every 3 days to the target (<= 80 mg a day).
        times, dose = _t("08:00", "14:00", "20:00"), Decimal(5)
        target = rng.choice((10, 15, 20, 25))
        day = start
        for mg in range(10, target + 1, 5):
            day += timedelta(days=3)
            steps.append(plans.PlanStep(day, Decimal(mg), times))
        if rng.random() < 0.3:  # tapered off after some months: -5 mg a dose, over two weeks at least
            down = list(range(target - 5, 0, -5))
            every = max(4, math.ceil(14 / len(down)))
            day += timedelta(days=rng.randrange(30, 120))
            for mg in down:
                steps.append(plans.PlanStep(day, Decimal(mg), times))
                day += timedelta(days=every)
            end = day - timedelta(days=1)
    elif medication == "topiramate":
        times, dose = _t("08:00", "20:00"), Decimal(25)
        day = start
        for mg in range(50, rng.choice((75, 100, 150)) + 1, 25):
            day += timedelta(days=7)
            steps.append(plans.PlanStep(day, Decimal(mg), times))
    elif medication == "naltrexone":
        times, dose = _t(rng.choice(("08:00", "09:00", "20:00"))), Decimal(50)
    elif medication == "acamprosate":
        times, dose = _t("08:00", "14:00", "20:00"), Decimal(666)
    elif medication == "gabapentin":
        times, dose = rng.choice((_t("08:00", "20:00"), _t("08:00", "14:00", "20:00"))), Decimal(300)
    else:  # disulfiram
        times, dose = _t("09:00"), Decimal(250)
    # Some plans are stopped by the coach (never a withdrawal-risk medication, which is tapered).
    if end is None and medication not in ("baclofen", "gabapentin") and rng.random() < 0.15:
        end = max([start + timedelta(days=rng.randrange(28, 150))] + [s.from_date for s in steps])
    plan = plans.Plan(plan_id, medication, dose, times, start, end, tuple(steps))
    plans.validate_plan(plan)
    effects = {}
    for code, share in SIDE_EFFECT_SHARE[medication].items():
        if rng.random() < share:
            first = start + timedelta(days=rng.randrange(0, 21))
            effects[code] = (
                first,
                first + timedelta(days=rng.randrange(3, 30)),
                _weighted(rng, SEVERITY_WEIGHTS),
            )
    return SimPlan(plan, rng.uniform(0.7, 0.98), effects)


#: Held, so zoneinfo's cache (a weak one, plus the 8 most recent) keeps every zone loaded.


@functools.lru_cache(maxsize=200_000)
def slot_instant(day: date, wall: time, zone: str) -> datetime:
    return localtime.local_to_utc(day, wall, zone)


def local_instant(day: date, minutes: int, zone: str) -> datetime:
    """The instant `minutes` after local midnight of `day`, for times from 04:00 on: clocks change
    earlier in the night, so the offset in force at noon is the one in force then."""
    return slot_instant(day, NOON, zone) + timedelta(minutes=minutes - 12 * 60)
