"""Random members and their day rows, written with COPY in the test's transaction (`companion.population`,
as `companion simulate` and the benchmarks write theirs), and the same members as the pure domain sees
them (`outcomes.MemberRecord`), so a test can compare the SQL with the definition.

Built to be awkward: several zones, enrollment before and inside the period, logs before enrollment
and after the period, deleted logs, dose times that the clocks skip or repeat (01:30, 02:30) on DST
days, titration and taper steps, check-ins answered early, non-consenting members and another
insurer's members (who must never count).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from companion.accounts.models import Insurer
from companion.domain import localtime
from companion.domain.drinking import is_heavy_day
from companion.domain.medications import CATALOGUE
from companion.domain.outcomes import MemberRecord
from companion.domain.plans import CheckIn, CheckInStatus, Plan, PlanStep, dose_slots
from companion.domain.summary import CravingRating, DayLog
from companion.population import Lines, Numbers, Rows, copy_lines, first_number, hand_back

ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo", "Pacific/Auckland", "America/Los_Angeles")
#: Grams that sit on thresholds: a US drink, heavy for women (56) and men (70), WHO bands x 1 day.
GRAMS = (0, 0, 0, 14, 20, 28, Decimal("28.50"), 40, 42, 56, 60, 70, 84, 101, Decimal("13.45"))
TIMES = (time(1, 30), time(2, 30), time(8), time(12), time(20), time(22, 15))


@dataclass
class Population:
    insurer_id: uuid.UUID
    other_insurer_id: uuid.UUID
    #: The target insurer's members, consenting or not, as the pure domain sees them.
    records: dict[uuid.UUID, MemberRecord] = field(default_factory=dict)
    consenting: set[uuid.UUID] = field(default_factory=set)


def _instant(day: date, zone: str, rng: random.Random) -> datetime:
    return localtime.local_to_utc(day, time(rng.randrange(24), rng.randrange(60)), zone)


def build(
    s: Session,
    *,
    rng: random.Random,
    members: int,
    first_day: date,
    last_day: date,
    others: int = 3,
    consent_rate: float = 0.8,
    walkers: tuple[str, ...] = (),
) -> Population:
    """`members` of the target insurer (about `consent_rate` consenting) and `others` of another one,
    with day rows from a little before `first_day` to a little after `last_day`; then one consenting
    member per zone of `walkers` who checks a dose in as taken every quarter hour around each change
    of the zone's UTC offset (`_walker_checkins`)."""
    insurer = Insurer(name="Target plan", code=f"T{uuid.uuid4().hex[:8]}")
    other = Insurer(name="Other plan", code=f"O{uuid.uuid4().hex[:8]}")
    s.add_all([insurer, other])
    s.flush()
    population = Population(insurer.id, other.id)
    conn = s.connection().connection.driver_connection
    lines = Lines()
    seq = Numbers(first_number(conn))
    rows = Rows(lines, seq)
    stamp = datetime.now(UTC)  # when every row was written (what the models' defaults would say)
    for n in range(members + others + len(walkers)):
        ours = n < members or n >= members + others
        walker = n >= members + others
        member_id = uuid.uuid4()
        # The first two members take doses at 01:30 and 02:30 in zones whose clocks change in the
        # period: on those nights one time happens twice and the other not at all.
        zone = ("America/New_York", "Europe/London")[n] if n < 2 else rng.choice(ZONES)
        if walker:
            zone = walkers[n - members - others]
        sex = rng.choice(("female", "male", "unspecified"))
        goal = rng.choice(("abstain", "moderate"))
        enrolled_on = first_day + timedelta(days=rng.randrange(-120, (last_day - first_day).days + 20))
        if n < 2 or walker:
            enrolled_on = first_day - timedelta(days=30)
        enrolled_at = _instant(enrolled_on, zone, rng)
        consenting = n < 2 or walker or rng.random() < consent_rate
        rows.user(member_id, email=f"p{member_id.hex}@example.org", role="member", created_at=enrolled_at)
        rows.member(
            member_id,
            timezone=zone,
            country=rng.choice(("US", "GB", "US")),
            sex=sex,
            goal_type=goal,
            weekly_limit=Decimal(7) if goal == "moderate" else None,
            insurer_id=insurer.id if ours else other.id,
            outcome_sharing=consenting,
            enrolled_at=enrolled_at,
            updated_at=enrolled_at,
        )
        start = max(enrolled_on - timedelta(days=5), first_day - timedelta(days=10))
        end = max(last_day + timedelta(days=5), start + timedelta(days=10))
        logs: list[DayLog] = []
        entries: set[date] = set()
        sober = rng.random()  # how often this member logs an alcohol-free day
        day = start
        while day <= end:
            if rng.random() < 0.55:
                grams = Decimal(0) if rng.random() < sober else Decimal(rng.choice(GRAMS))
                deleted = rng.random() < 0.05
                rows.drink_log(
                    member_id,
                    date=day,
                    grams_ethanol=grams,
                    heavy=is_heavy_day(grams, sex),
                    source="realtime",
                    created_at=stamp,
                    deleted_at=enrolled_at if deleted else None,
                )
                if not deleted:
                    logs.append(DayLog(day, grams, is_heavy_day(grams, sex)))
                    entries.add(day)
            day += timedelta(days=1)
        cravings = []
        for _ in range(rng.randrange(0, 25)):
            day = start + timedelta(days=rng.randrange((end - start).days + 1))
            intensity = rng.randrange(11)
            rows.craving(
                member_id,
                id=uuid.uuid4(),
                recorded_at=_instant(day, zone, rng),
                date=day,
                intensity=intensity,
                created_at=stamp,
            )
            cravings.append(CravingRating(day, intensity))
            entries.add(day)
        for _ in range(rng.randrange(0, 4)):
            day = start + timedelta(days=rng.randrange((end - start).days + 1))
            rows.bac(
                member_id,
                id=uuid.uuid4(),
                measured_at=_instant(day, zone, rng),
                date=day,
                bac_g_dl=Decimal("0.020"),
                created_at=stamp,
            )
            entries.add(day)
        pacs = _pacs(rng, rows, member_id, zone, start, end)
        if walker:
            plans, checkins, dated = _walker_checkins(rows, stamp, member_id, zone, start, end)
        else:
            plans, checkins, dated = _plans(
                rng, rows, stamp, member_id, zone, enrolled_on, start, end, dst=n < 2
            )
        entries |= dated
        if ours:
            population.records[member_id] = MemberRecord(
                enrolled_on=localtime.local_date(enrolled_at, zone),
                zone=zone,
                sex=sex,
                goal_type=goal,
                day_logs=tuple(logs),
                cravings=tuple(cravings),
                pacs=tuple(pacs),
                plans=tuple(plans),
                checkins=tuple(checkins),
                entry_days=frozenset(entries),
            )
            if consenting:
                population.consenting.add(member_id)
    by_table = lines.by_table()
    copy_lines(conn, {t: by_table[t] for t in ORDER if t in by_table})
    hand_back(conn, seq)
    return population


def _pacs(rng, rows: Rows, member_id, zone, start, end) -> list[tuple[date, int]]:
    """Weekly PACS on some of the Mondays from the week of `start` to `end` (none for about a third
    of the members): baselines near enrollment or missing, follow-ups in and out of the window."""
    if rng.random() < 0.3:
        return []
    found = []
    monday = start - timedelta(days=start.weekday())
    keep = rng.choice((0.2, 0.5, 0.9))
    while monday <= end:
        if rng.random() < keep:
            items = [rng.randrange(7) for _ in range(5)]
            rows.pacs(
                member_id,
                id=uuid.uuid4(),
                week_of=monday,
                items=items,
                total=sum(items),
                created_at=_instant(monday + timedelta(days=6), zone, rng),
            )
            found.append((monday, sum(items)))
        monday += timedelta(days=7)
    return found


#: Members before what points at them.
ORDER = (
    "users",
    "members",
    "drink_logs",
    "cravings",
    "bac_readings",
    "medication_plans",
    "medication_checkins",
    "pacs_reports",
)


def _plan_row(rows: Rows, stamp: datetime, plan: Plan, member_id: uuid.UUID) -> None:
    rows.plan(
        plan.id,
        member_id=member_id,
        medication=plan.medication,
        dose_mg=plan.dose_mg,
        times=plan.times,
        start_date=plan.start_date,
        end_date=plan.end_date,
        steps=plan.steps,
        created_at=stamp,
        updated_at=stamp,
    )


#: A walker's dose times: around midnight, in the hours clocks skip or repeat, and at noon.
WALKER_TIMES = (time(0, 15), time(1, 30), time(2, 30), time(3), time(12), time(23, 45))


def _walker_checkins(rows, stamp, member_id, zone, start, end):
    """One plan (WALKER_TIMES) from `start` on, and a taken check-in at every quarter hour UTC from
    five days before to five days after each change of the zone's offset between `start` and `end`
    (and on two ordinary days), each dated its local day: most answer no slot, and those that do sit
    where a local time computed with the wrong side's offset would land on another day or time."""
    plan = Plan(uuid.uuid4(), "naltrexone", Decimal(50), WALKER_TIMES, start, None, ())
    _plan_row(rows, stamp, plan, member_id)
    tz = ZoneInfo(zone)

    def noon_offset(day: date) -> timedelta | None:
        return datetime.combine(day, time(12), UTC).astimezone(tz).utcoffset()

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    changes = [day for day in days[:-1] if noon_offset(day) != noon_offset(day + timedelta(days=1))]
    assert changes, f"{zone} changes its offset between {start} and {end}"
    around = {day + timedelta(days=k) for day in changes for k in range(-5, 6)}
    around |= {days[len(days) // 3], days[2 * len(days) // 3]}
    checkins = []
    dated: set[date] = set()
    for day in sorted(around):
        for quarter in range(96):
            at = datetime.combine(day, time(), UTC) + timedelta(minutes=15 * quarter)
            on = localtime.local_date(at, zone)
            rows.checkin(
                member_id,
                id=uuid.uuid4(),
                plan_id=plan.id,
                scheduled_for=at,
                date=on,
                status=CheckInStatus.TAKEN.value,
                taken_at=at,
                created_at=stamp,
            )
            dated.add(on)
            checkins.append(CheckIn(plan.id, at, CheckInStatus.TAKEN))
    return [plan], checkins, dated


def _plans(rng, rows, stamp, member_id, zone, enrolled_on, start, end, *, dst=False):
    """A member's plans and their check-ins; returns the plans, the check-ins and the days they are dated."""
    plans: list[Plan] = []
    checkins: list[CheckIn] = []
    dated: set[date] = set()
    for _ in range(1 if dst else rng.choice((0, 1, 1, 1, 2))):
        medication = rng.choice(CATALOGUE).code
        p_start = start if dst else enrolled_on + timedelta(days=rng.randrange(-10, 40))
        p_end = p_start + timedelta(days=rng.randrange(10, 150)) if rng.random() < 0.5 and not dst else None
        times = (time(1, 30), time(2, 30)) if dst else tuple(sorted(rng.sample(TIMES, rng.randrange(1, 3))))
        steps = []
        step_day = p_start
        for _ in range(0 if dst else rng.randrange(0, 3)):
            step_day = step_day + timedelta(days=rng.randrange(3, 40))
            if p_end is not None and step_day > p_end:
                break
            steps.append(
                PlanStep(
                    step_day,
                    Decimal(rng.choice((5, 10, 15))),
                    tuple(sorted(rng.sample(TIMES, rng.randrange(1, 3)))),
                )
            )
        plan = Plan(uuid.uuid4(), medication, Decimal(10), times, p_start, p_end, tuple(steps))
        plans.append(plan)
        _plan_row(rows, stamp, plan, member_id)
        day = max(p_start, start)
        last = min(p_end or end, end)
        while day <= last:
            for slot in dose_slots(plan, day, zone):
                if dst or rng.random() < 0.7:
                    status = CheckInStatus.TAKEN if rng.random() < 0.75 else CheckInStatus.SKIPPED
                    at, on = slot.scheduled_for, slot.local_date
                    if not dst and rng.random() < 0.05:
                        # Not one of the plan's instants (a client clock off by minutes): no dose.
                        at += timedelta(minutes=7)
                    elif not dst and (on - enrolled_on).days % 30 == 0 and rng.random() < 0.5:
                        # Dated the day before, as in a zone the member had then: an entry on that
                        # day, a dose on its local day (in the next 30-day bucket of enrollment).
                        on -= timedelta(days=1)
                    rows.checkin(
                        member_id,
                        id=uuid.uuid4(),
                        plan_id=plan.id,
                        scheduled_for=at,
                        date=on,
                        status=status.value,
                        taken_at=at if status == CheckInStatus.TAKEN else None,
                        created_at=stamp,
                    )
                    dated.add(on)
                    checkins.append(CheckIn(plan.id, at, status))
            day += timedelta(days=1)
    return plans, checkins, dated


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
