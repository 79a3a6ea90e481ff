"""`companion simulate`: a realistic synthetic population, written straight to the database with COPY.

Members live across many time zones and countries (a country sets the standard drink), with both goals.
Each follows a trajectory that improves, relapses, drifts away (stops logging) or stays where it was;
cravings track their drinking; a share take breath readings. Most are on a medication plan: baclofen
titrated up by 5 mg a dose every 3 days and, for some, tapered off over two weeks or more; topiramate
titrated weekly; naltrexone, acamprosate, gabapentin and disulfiram at fixed doses. Side effects are
reported by about the share of members the labels give, mostly mild, early in treatment.

Rows obey what the services guarantee: grams derived from what was entered in the member's country's
size, `heavy` by sex, `source` from when the log was entered, local dates in the member's zone, dose
check-ins only on slots the plan schedules (DST-aware, `domain.plans`), `taken_at` only when taken,
nothing entered after `now`, and each row's sync `change_seq` taken from the real sequence (moved past
the rows at the end). Simulated members and coaches sign in with SIMULATED_PASSWORD.

The generation is pure and deterministic: the same seed, size and `now` give the same rows, and a
member's history depends only on (seed, its index), not on the population's size. `companion.demo`
draws its members' days from the same `Trajectory`.
"""

from __future__ import annotations

import functools
import math
import random
import time as clock
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from companion.domain import drinking, localtime, plans
from companion.population import (
    DAY_TABLES,
    PEOPLE_TABLES,
    TABLES,
    CopyWriters,
    Lines,
    Numbers,
    Rows,
    columns,
    first_number,
    random_id,
    settle,
)

#: Every simulated member and coach signs in with this password (a demo and benchmark population).
SIMULATED_PASSWORD = "simulated-member"
EMAIL_DOMAIN = "simulated.companion.test"

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
_ZONE_INFO = [ZoneInfo(z) for z, _, _ in ZONES]


@functools.lru_cache(maxsize=200_000)
def _slot(day: date, wall: time, zone: str) -> datetime:
    return localtime.local_to_utc(day, wall, zone)


def _local(day: date, minutes: int, zone: str) -> datetime:
    """The instant `minutes` after local midnight of `day`, for times from 04:00 on: clocks change
    earlier in the night, so the offset in force at noon is the one in force then."""
    return _slot(day, NOON, zone) + timedelta(minutes=minutes - 12 * 60)


# --- the population: rows, table by table --------------------------------------------------------------

#: The COPY column list of each table (`companion.population` owns them and writes every row).
COLUMNS = {table: columns(table) for table in TABLES}
_u = random_id


@dataclass
class Member:
    index: int
    id: uuid.UUID
    rng: random.Random
    zone: str
    country: str
    sex: str
    goal: str
    enrolled_on: date
    trajectory: Trajectory
    plans: list[SimPlan]
    drink_item: tuple[str, int, str] | None
    craving_share: float
    bac_share: float


@dataclass
class Population:
    """Who is simulated, made by `people`; `days` writes their day rows."""

    seed: int
    first: date
    last: date
    now: datetime
    insurer_id: uuid.UUID
    members: list[Member]


def _member(seed: int, index: int, first: date, last: date, now: datetime) -> Member:
    rng = random.Random(f"companion-simulate:{seed}:{index}")
    zone, country = rng.choices([(z, c) for z, c, _ in ZONES], [w for *_, w in ZONES])[0]
    goal = rng.choice(("abstain", "moderate"))
    span = (last - first).days
    # A third were already in the program on the first day; the rest join over the first 2/3.
    enrolled_on = (
        first if rng.random() < 0.33 else first + timedelta(days=rng.randrange(0, max(1, span * 2 // 3)))
    )
    trajectory = Trajectory.draw(rng, goal=goal, days=(last - enrolled_on).days + 1)
    member_id = _u(rng)
    sim_plans = []
    if rng.random() < PLAN_SHARE:
        start = enrolled_on + timedelta(days=rng.randrange(0, 10))
        if start <= last:
            sim_plans.append(draw_plan(rng, _u(rng), start, last))
    return Member(
        index=index,
        id=member_id,
        rng=rng,
        zone=zone,
        country=country,
        sex=rng.choices(("female", "male", "unspecified"), (47, 49, 4))[0],
        goal=goal,
        enrolled_on=enrolled_on,
        trajectory=trajectory,
        plans=sim_plans,
        drink_item=rng.choice(DRINK_ITEMS) if rng.random() < 0.4 else None,
        craving_share=rng.uniform(0.3, 0.9),
        bac_share=rng.uniform(0.3, 0.9) if rng.random() < BAC_USER_SHARE else 0.0,
    )


def people(
    rows: Rows,
    *,
    members: int,
    days: int,
    seed: int,
    now: datetime,
    insurer_id: uuid.UUID,
    password_hash: str,
) -> Population:
    """Coaches, members, caseloads and medication plans."""
    last = now.astimezone(UTC).date()
    first = last - timedelta(days=days - 1)
    rng = random.Random(f"companion-simulate:{seed}:staff")
    coaches = []
    for k in range(max(1, members // 150)):
        coach_id = _u(rng)
        coaches.append(coach_id)
        rows.user(
            coach_id,
            email=f"coach{k}-s{seed}@{EMAIL_DOMAIN}",
            password_hash=password_hash,
            display_name=f"Coach {k}",
            role="coach",
            created_at=datetime.combine(first - timedelta(days=30), time(9), UTC),
        )
    population = Population(seed, first, last, now, insurer_id, [])
    for index in range(members):
        m = _member(seed, index, first, last, now)
        population.members.append(m)
        enrolled_at = _local(m.enrolled_on, m.rng.randrange(8 * 60, 21 * 60), m.zone)
        if enrolled_at > now:  # joins today, after now: joined an hour ago instead
            enrolled_at = now - timedelta(hours=1)
        weekly = m.rng.choice((7, 10, 14)) if m.goal == "moderate" else None
        consent = m.rng.random() < 0.8
        log_time = m.rng.choice(("19:00", "20:00", "21:00", "21:30"))
        rows.user(
            m.id,
            email=f"m{index}-s{seed}@{EMAIL_DOMAIN}",
            password_hash=password_hash,
            display_name=f"Member {index}",
            role="member",
            created_at=enrolled_at,
        )
        rows.member(
            m.id,
            timezone=m.zone,
            country=m.country,
            sex=m.sex,
            goal_type=m.goal,
            weekly_limit=weekly,
            insurer_id=insurer_id,
            outcome_sharing=consent,
            consents_updated_at=enrolled_at if consent else None,
            log_time=log_time,
            enrolled_at=enrolled_at,
            updated_at=enrolled_at,
        )
        if m.rng.random() < 0.9:  # the rest wait in the admins' queue
            coach = coaches[index % len(coaches)]
            rows.coach_assignment(_u(m.rng), member_id=m.id, coach_id=coach, started_at=enrolled_at)
        else:
            coach = None
        for sp in m.plans:
            p = sp.plan
            created = min(now, max(enrolled_at, _local(p.start_date, 7 * 60, m.zone) - timedelta(days=1)))
            rows.plan(
                p.id,
                member_id=m.id,
                medication=p.medication,
                dose_mg=p.dose_mg,
                times=p.times,
                start_date=p.start_date,
                end_date=p.end_date,
                steps=p.steps,
                created_by=coach,
                created_at=created,
                updated_at=created,
            )
    return population


def _regimen_times(plan: plans.Plan, day: date) -> tuple[time, ...]:
    regimen = plans.regimen_on(plan, day)
    return regimen.times if regimen else ()


def member_day(m: Member, day: date, now: datetime, rows: Rows) -> None:
    """One member's rows for one local day, each only if it was entered by `now`."""
    rng, zone = m.rng, m.zone
    t = (day - m.enrolled_on).days
    today = m.trajectory.day(rng, t)
    if today.logged:
        _drink_log(m, day, today, now, rows)
        if rng.random() < m.craving_share:
            for _ in range(1 + (rng.random() < 0.15)):
                at = _local(day, rng.randrange(9 * 60, 23 * 60), zone)
                if at <= now:
                    triggers = rng.sample(TRIGGERS, rng.randrange(0, 3))
                    rows.craving(
                        m.id,
                        id=_u(rng),
                        recorded_at=at,
                        date=day,
                        intensity=today.craving,
                        triggers=triggers,
                        created_at=at,
                    )
        if m.bac_share and rng.random() < m.bac_share:
            _bac(m, day, today, now, rows)
    engaged = m.trajectory.engagement(t) / m.trajectory.log_share
    relapsing = m.trajectory.level(t) >= 1.0 and m.trajectory.kind == "relapse"
    for sp in m.plans:
        times = _regimen_times(sp.plan, day)
        for wall in times:
            slot = _slot(day, wall, zone)
            if slot > now or rng.random() > 0.92 * engaged:
                continue  # not due yet, or never answered
            taken = rng.random() < sp.adherence * (0.6 if relapsing else 1.0)
            taken_at = slot + timedelta(minutes=rng.randrange(0, 90))
            answered = taken_at if taken else slot + timedelta(minutes=rng.randrange(0, 180))
            if answered > now:
                continue
            checkin_id = _u(rng)
            rows.checkin(
                m.id,
                id=checkin_id,
                plan_id=sp.plan.id,
                scheduled_for=slot,
                date=day,
                status="taken" if taken else "skipped",
                taken_at=taken_at if taken else None,
                created_at=answered,
            )
            # An effect the member has is reported on about half the days it lasts, with the day's first dose.
            if taken and wall == times[0]:
                for code, (since, until, severity) in sp.effects.items():
                    if since <= day <= until and rng.random() < 0.5:
                        rows.side_effect(
                            m.id,
                            checkin_id=checkin_id,
                            medication=sp.plan.medication,
                            date=day,
                            code=code,
                            severity=severity,
                        )


def _drink_log(m: Member, day: date, today: Day, now: datetime, rows: Rows) -> None:
    rng = m.rng
    # Entered that evening, the next morning (both real time) or days later (recall).
    late = rng.random()
    if late < 0.6:
        entered = _local(day, rng.randrange(20 * 60, 23 * 60 + 59), m.zone)
    elif late < 0.9:
        entered = _local(day + timedelta(days=1), rng.randrange(7 * 60, 12 * 60), m.zone)
    else:
        entered = _local(day + timedelta(days=rng.randrange(2, 7)), rng.randrange(8 * 60, 22 * 60), m.zone)
    if entered > now:
        return
    items: list[drinking.DrinkItem] | None = None
    sd: Decimal | None = None
    if m.drink_item is not None and today.drinks:
        kind, volume, abv = m.drink_item
        items = [drinking.DrinkItem(drinking.DrinkKind(kind), volume, Decimal(abv), today.drinks)]
        grams = drinking.grams_of(items)
    else:
        sd = standard_drinks_entered(today.drinks, m.country)
        grams = drinking.grams_from_standard_drinks(sd, m.country)
    rows.drink_log(
        m.id,
        date=day,
        grams_ethanol=grams,
        entered_standard_drinks=sd,
        drinks=items,
        heavy=drinking.is_heavy_day(grams, m.sex),
        source=drinking.log_source(day, today=localtime.local_date(entered, m.zone)).value,
        created_at=entered,
    )


def _bac(m: Member, day: date, today: Day, now: datetime, rows: Rows) -> None:
    """A morning reading, and an evening one that follows the day's drinks (~0.02 g/dL a US drink)."""
    rng = m.rng
    for minutes, bac in (
        (rng.randrange(7 * 60, 9 * 60 + 30), 0.0),
        (rng.randrange(20 * 60, 23 * 60), today.drinks * rng.uniform(0.012, 0.024)),
    ):
        at = _local(day, minutes, m.zone)
        if at > now:
            continue
        value = Decimal(str(min(0.45, max(0.0, bac)))).quantize(Decimal("0.001"))
        rows.bac(
            m.id,
            id=_u(rng),
            measured_at=at,
            date=day,
            bac_g_dl=value,
            device_model="BACtrack C8",
            created_at=at,
        )


def write_days(population: Population, rows: Rows, progress: Callable[[int], None]) -> None:
    """Day rows, day by day across all members, as a live system writes them (so one member's rows are
    spread over the table, as they are in production)."""
    day = population.first
    while day <= population.last + timedelta(days=1):
        for m in population.members:
            if day >= m.enrolled_on:
                member_day(m, day, population.now, rows)
        day += timedelta(days=1)  # to `last + 1`: a zone ahead of UTC may already be on it
        progress(1)


def generate(
    *, members: int, days: int, seed: int, now: datetime, insurer_id: uuid.UUID
) -> Iterator[tuple[str, str]]:
    """Every row as (table, COPY text line), in memory: what `simulate` writes (for tests and checks)."""
    lines = Lines()
    rows = Rows(lines, Numbers(1))
    population = people(
        rows, members=members, days=days, seed=seed, now=now, insurer_id=insurer_id, password_hash="x"
    )
    write_days(population, rows, lambda _n: None)
    return iter(lines.rows)


# --- writing: one COPY per table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Simulated:
    members: int
    first_day: date
    last_day: date
    insurer_code: str
    insurer_id: uuid.UUID
    rows: dict[str, int]
    seconds: float


def simulate(
    url: str,
    *,
    members: int,
    days: int,
    seed: int,
    now: datetime,
    progress: Callable[[int], None] = lambda _n: None,
) -> Simulated:
    """Write the population to the database at libpq `url` (migrated to head). `progress` is called with 1
    after each simulated day (days + 1 calls: zones ahead of UTC may already be on the day after).

    :raises ValueError: this seed's population is already there.
    """
    from companion.accounts.passwords import hash_password

    started = clock.perf_counter()
    code = f"SIM-{seed}"
    with psycopg.connect(url, autocommit=True) as conn:
        taken = conn.execute("SELECT 1 FROM users WHERE lower(email) = %s", (f"m0-s{seed}@{EMAIL_DOMAIN}",))
        if taken.fetchone():
            raise ValueError(
                f"A population with seed {seed} is already in this database; pick another --seed."
            )
        conn.execute(
            "INSERT INTO insurers (id, name, code, created_at) VALUES (%s, %s, %s, now())"
            " ON CONFLICT (code) DO NOTHING",
            (uuid.uuid4(), f"Simulated plan {seed}", code),
        )
        insurer_id = conn.execute("SELECT id FROM insurers WHERE code = %s", (code,)).fetchone()[0]
        # Numbers from the real sequence on; it is moved past them at the end.
        seq = Numbers(first_number(conn))
    with CopyWriters(url, PEOPLE_TABLES) as w:
        population = people(
            Rows(w, seq),
            members=members,
            days=days,
            seed=seed,
            now=now,
            insurer_id=insurer_id,
            password_hash=hash_password(SIMULATED_PASSWORD),
        )
    counts = dict(w.rows)
    with CopyWriters(url, DAY_TABLES) as w:
        write_days(population, Rows(w, seq), progress)
    counts.update(w.rows)
    settle(url, seq, PEOPLE_TABLES + DAY_TABLES)
    return Simulated(
        members=members,
        first_day=population.first,
        last_day=population.last,
        insurer_code=code,
        insurer_id=insurer_id,
        rows=counts,
        seconds=clock.perf_counter() - started,
    )
