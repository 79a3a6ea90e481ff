"""Demo accounts for `companion up --demo`: a coach with a small caseload, an admin and an insurer analyst,
and three weeks of member history (drink logs with notes, cravings with triggers, breath readings, a
medication plan and its check-ins, a weekly PACS), members whose recent days raise a flag of each kind
the demo can show (SCENARIOS: an urgent flag of every urgent rule, a warning, symptom reports, one flag
acknowledged, one resolved with its note, one cleared by a rescan), coach messages, and an insurer cohort
large enough for the report to show numbers (`ensure_cohort`).

The history goes through the same services as the API, each record at the moment it would have been
entered, so it obeys every rule a phone's data does. Each member's days follow `companion.simulate`'s
`Trajectory` (an improving one), the generator `companion simulate` writes large populations with, in
bulk.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from companion.accounts import services
from companion.accounts.models import Insurer, Member, Role, User
from companion.db import session
from companion.domain import localtime, plans
from companion.medications import checkins as medication_checkins
from companion.medications import services as medication_services
from companion.medications.models import plan_to_domain
from companion.nudges import services as nudge_services
from companion.pacs import services as pacs_services
from companion.safety import queue as safety_queue
from companion.safety import services as safety_services
from companion.safety.models import Flag
from companion.symptoms import services as symptom_services
from companion.tracking import services as tracking_services
from companion.trajectories import Trajectory, standard_drinks_entered

DEMO_INSURER_CODE = "DEMO-HEALTH"
DEMO_PASSWORD = "companion-demo"  # demo only; printed at start
COACH_EMAIL = "coach@demo.companion.test"
ADMIN_EMAIL = "admin@demo.companion.test"
ANALYST_EMAIL = "analyst@demo.companion.test"
MEMBERS = (
    ("alex@demo.companion.test", "Alex", "America/New_York", "US", "male", "abstain", None),
    ("sam@demo.companion.test", "Sam", "Europe/London", "GB", "female", "moderate", 14),
    ("kiri@demo.companion.test", "Kiri", "Pacific/Auckland", "NZ", "female", "abstain", None),
    ("priya@demo.companion.test", "Priya", "Asia/Kolkata", "IN", "unspecified", "moderate", 7),
    ("jordan@demo.companion.test", "Jordan", "Australia/Sydney", "AU", "male", "moderate", 10),
)


@dataclass(frozen=True)
class DemoLogins:
    password: str
    coach: str
    admin: str
    analyst: str
    members: tuple[str, ...]


#: Days of history each demo member gets.
HISTORY_DAYS = 21
#: (medication, dose mg, local dose times) for the demo members, in MEMBERS order.
DEMO_PLANS = (
    ("baclofen", "10", ("08:00", "14:00", "20:00")),
    ("naltrexone", "50", ("09:00",)),
    ("acamprosate", "666", ("08:00", "14:00", "20:00")),
    ("gabapentin", "300", ("08:00", "20:00")),
    ("disulfiram", "250", ("09:00",)),
)


def _history(member: Member, coach: User, *, seed: int, now: datetime) -> None:
    """Three weeks of a plausible member, improving slowly; deterministic for a given seed."""
    rnd = random.Random(seed)
    today = localtime.local_date(now, member.timezone)
    first = today - timedelta(days=HISTORY_DAYS)
    medication, dose, times = DEMO_PLANS[seed % len(DEMO_PLANS)]
    plan_created = localtime.local_to_utc(first, time(7, 0), member.timezone)
    plan = medication_services.create_plan(
        coach,
        member.id,
        {
            "medication": medication,
            "dose_mg": Decimal(dose),
            "times": [time.fromisoformat(t) for t in times],
            "start_date": first,
        },
        now=plan_created,
    )
    # The simulator's improving trajectory, well engaged; nobody on disulfiram drinks in the demo.
    trajectory = Trajectory.draw(
        rnd,
        goal=member.goal_type,
        days=HISTORY_DAYS,
        kind="improve",
        log_share=0.85,
        **({"drink_share": 0.0} if medication == "disulfiram" else {}),
    )
    weeks = random.Random(seed + 500)  # its own draws: the days above stay what they were
    for offset in range(HISTORY_DAYS + 1):
        day = first + timedelta(days=offset)
        if day.weekday() == 0:
            _pacs(member, day, week=offset // 7, rnd=weeks, now=now)
        evening = localtime.local_to_utc(day, time(21, 30), member.timezone)
        if evening > now:
            break
        today_ = trajectory.day(rnd, offset)
        if today_.logged or offset == 0:  # some days are missing, never zero; the first never
            drinks = standard_drinks_entered(today_.drinks, member.country)
            tracking_services.put_drink_log(
                member, day, {"standard_drinks": drinks}, origin=None, now=evening
            )
        if rnd.random() < 0.7:
            trigger = rnd.choice(TRIGGERS)
            tracking_services.record_craving(
                member,
                {
                    "id": uuid.UUID(int=rnd.getrandbits(128)),
                    "recorded_at": evening - timedelta(hours=3),
                    "intensity": today_.craving,
                    "triggers": list(trigger[0]),
                    "note": trigger[1],
                },
                origin=None,
                now=evening,
            )
        if rnd.random() < 0.2:
            _breath(member, evening - timedelta(hours=1), Decimal("0.000"), rnd)
        for slot in plans.dose_slots(plan_to_domain(plan), day, member.timezone):
            if slot.scheduled_for > now or rnd.random() < 0.12:
                continue  # due later, or missed
            effects = [{"code": "drowsiness", "severity": "mild"}] if rnd.random() < 0.1 and seed == 0 else []
            medication_checkins.record_checkin(
                member,
                {
                    "id": uuid.UUID(int=rnd.getrandbits(128)),
                    "plan_id": plan.id,
                    "scheduled_for": slot.scheduled_for,
                    "status": "taken",
                    "taken_at": slot.scheduled_for + timedelta(minutes=rnd.randint(0, 40)),
                    "side_effects": effects,
                },
                origin=None,
                now=slot.scheduled_for + timedelta(hours=1),
            )


#: Craving triggers and notes, in the members' own words.
TRIGGERS = (
    (("argument", "payday"), "Row with my brother, then paid: the usual recipe"),
    (("stress",), None),
    (("friends", "pub"), "Said I'd drive, so I stuck to lime and soda"),
    (("boredom",), "Sunday afternoon, nothing on"),
    (("tired",), None),
)


def _breath(member: Member, at: datetime, bac: Decimal, rnd: random.Random) -> None:
    tracking_services.record_bac_reading(
        member,
        {
            "id": uuid.UUID(int=rnd.getrandbits(128)),
            "measured_at": at,
            "bac_g_dl": bac,
            "device": {"model": "BACtrack Mobile", "serial": None},
        },
        origin=None,
        now=at,
    )


def _pacs(member: Member, monday: date, *, week: int, rnd: random.Random, now: datetime) -> None:
    """The week's PACS, answered on its Sunday evening (once that has come): five items of 0-6 that fall
    as the weeks go by, never by the rise the craving-escalation rule looks for."""
    answered = localtime.local_to_utc(monday + timedelta(days=6), time(21, 45), member.timezone)
    if answered > now:
        return
    items = [max(0, 2 - week) + rnd.choice((0, 0, 1)) for _ in range(5)]
    pacs_services.record_pacs(
        member,
        {"id": uuid.UUID(int=rnd.getrandbits(128)), "week_of": monday, "items": items},
        origin=None,
        now=answered,
    )


# --- members whose recent days raise flags ----------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A member whose last days raise `rule`: on `medication`, with `effect` reported on a check-in on the
    days back listed (1: yesterday), `drinks` logged yesterday, and doses not taken on the days in
    `missed`. `symptom`: reported on its own (`POST /symptom-reports`) on the days in `symptom_days`.
    `stopped`: the plan ended that many days back, without a taper. `silent`: days back with no entry at
    all. `scanned`: a safety scan at noon that day back, before its entries (the one the next scan's
    finding is compared with). `status`: the flag's once the coach's morning is over."""

    email: str
    name: str
    rule: str
    medication: str
    dose: str
    times: tuple[str, ...]
    effect: tuple[str, str] | None = None
    effect_days: tuple[int, ...] = (1,)
    drinks: int = 0
    missed: tuple[int, ...] = ()
    bac: str | None = None
    symptom: tuple[str, str] | None = None
    symptom_days: tuple[int, ...] = (1,)
    symptom_note: str | None = None
    stopped: int | None = None
    silent: tuple[int, ...] = ()
    scanned: int | None = None
    status: str = "open"


THRICE = ("08:00", "14:00", "20:00")
SCENARIOS = (
    Scenario("rosa@demo.companion.test", "Rosa", "severe_side_effect", "naltrexone", "50", ("09:00",),
             effect=("nausea", "severe")),
    Scenario("ben@demo.companion.test", "Ben", "withdrawal_risk", "baclofen", "10", THRICE,
             missed=(1, 2), status="acknowledged"),
    Scenario("lena@demo.companion.test", "Lena", "sedation_with_drinking", "gabapentin", "300",
             ("08:00", "20:00"),
             effect=("drowsiness", "moderate"), drinks=7, bac="0.092"),
    Scenario("omar@demo.companion.test", "Omar", "disulfiram_with_drinking", "disulfiram", "250", ("09:00",),
             drinks=3),
    Scenario("tess@demo.companion.test", "Tess", "liver_signs", "naltrexone", "50", ("09:00",),
             effect=("dark_urine", "mild"), status="resolved"),
    Scenario("ivy@demo.companion.test", "Ivy", "contraindication", "acamprosate", "666", THRICE,
             effect=("kidney_problems", "mild")),
    Scenario("mae@demo.companion.test", "Mae", "persistent_side_effect", "naltrexone", "50", ("09:00",),
             effect=("headache", "moderate"), effect_days=(1, 2, 4)),
    Scenario("dev@demo.companion.test", "Dev", "withdrawal_after_stop", "baclofen", "10", THRICE,
             stopped=4, symptom=("agitation", "moderate"), symptom_days=(2, 1),
             symptom_note="Stopped the baclofen, felt fine. Now I can't sit still and I'm not sleeping"),
    Scenario("nina@demo.companion.test", "Nina", "suicidal_thoughts", "acamprosate", "666", THRICE,
             symptom=("suicidal_thoughts", "moderate"), symptom_note="Dark thoughts again last night"),
    Scenario("cal@demo.companion.test", "Cal", "opioid_use_on_naltrexone", "naltrexone", "50", ("09:00",),
             symptom=("opioid_use", "moderate"), symptom_note="Took some of my mum's oxycodone for my back"),
    Scenario("ruth@demo.companion.test", "Ruth", "kidney_stones_on_topiramate", "topiramate", "50",
             ("08:00", "20:00"), symptom=("kidney_stones", "moderate"),
             symptom_note="Awful pain in my side, A&E said a kidney stone"),
    Scenario("noah@demo.companion.test", "Noah", "disengagement", "naltrexone", "50", ("09:00",),
             silent=(7, 6, 5, 4, 3, 2), scanned=1, status="cleared"),
)  # fmt: skip
#: Days of history a scenario member has before their flag.
SCENARIO_DAYS = 12
#: The scenario members' time zone.
SCENARIO_ZONE = "America/Chicago"


def _scenario(member: Member, coach: User, sc: Scenario, *, seed: int, now: datetime) -> None:
    """Twelve quiet days on the medication, then what raises the scenario's flag in the last days."""
    rnd = random.Random(seed)
    today = localtime.local_date(now, member.timezone)
    first = today - timedelta(days=SCENARIO_DAYS)
    plan = medication_services.create_plan(
        coach,
        member.id,
        {
            "medication": sc.medication,
            "dose_mg": Decimal(sc.dose),
            "times": [time.fromisoformat(t) for t in sc.times],
            "start_date": first,
            "end_date": today - timedelta(days=sc.stopped) if sc.stopped else None,
        },
        now=localtime.local_to_utc(first, time(7, 0), member.timezone),
    )
    for back in range(SCENARIO_DAYS, 0, -1):
        day = today - timedelta(days=back)
        evening = localtime.local_to_utc(day, time(21, 0), member.timezone)
        if back == sc.scanned:
            safety_services.scan_members(
                [member.id], now=localtime.local_to_utc(day, time(12, 0), member.timezone)
            )
        if back in sc.silent:
            continue
        if sc.symptom and back in sc.symptom_days:
            reported_at = evening - timedelta(hours=2)
            symptom_services.record_symptom_report(
                member,
                {
                    "id": uuid.UUID(int=rnd.getrandbits(128)),
                    "reported_at": reported_at,
                    "symptoms": [{"code": sc.symptom[0], "severity": sc.symptom[1]}],
                    "note": sc.symptom_note,
                },
                origin=None,
                now=reported_at,
            )
        drinks = (
            sc.drinks if back == 1 else (0 if sc.medication == "disulfiram" else rnd.choice((0, 0, 1, 2)))
        )
        note = "Birthday drinks, it got away from me" if back == 1 and sc.drinks >= 5 else None
        tracking_services.put_drink_log(
            member, day, {"standard_drinks": Decimal(drinks), "note": note}, origin=None, now=evening
        )
        if back == 1 and sc.bac:
            _breath(member, evening - timedelta(hours=1), Decimal(sc.bac), rnd)
        slots = plans.dose_slots(plan_to_domain(plan), day, member.timezone)
        for number, slot in enumerate(slots):
            if back in sc.missed:
                continue
            reported = sc.effect and back in sc.effect_days and number == 0  # once a day, at the first dose
            effects = [{"code": sc.effect[0], "severity": sc.effect[1]}] if reported else []
            medication_checkins.record_checkin(
                member,
                {
                    "id": uuid.UUID(int=rnd.getrandbits(128)),
                    "plan_id": plan.id,
                    "scheduled_for": slot.scheduled_for,
                    "status": "taken",
                    "taken_at": slot.scheduled_for + timedelta(minutes=10),
                    "side_effects": effects,
                },
                origin=None,
                now=slot.scheduled_for + timedelta(minutes=15),
            )


def _enrolled(first: date, zone: str) -> datetime:
    """A demo member enrolls on the morning of their history's first day, which has an entry: in any
    report period holding their enrollment they have logged days (a member of a period with none would
    be a small difference from the period's members, and hide its drinking measures)."""
    return localtime.local_to_utc(first, time(6, 30), zone)


def _exists(email: str) -> bool:
    return session.execute(select(User.id).where(func.lower(User.email) == email)).first() is not None


def ensure_demo(*, now: datetime) -> DemoLogins:
    """Create what is missing; running it twice changes nothing."""
    logins = DemoLogins(
        DEMO_PASSWORD,
        COACH_EMAIL,
        ADMIN_EMAIL,
        ANALYST_EMAIL,
        tuple(m[0] for m in MEMBERS) + tuple(sc.email for sc in SCENARIOS),
    )
    emails = (logins.coach, logins.admin, logins.analyst, *logins.members)
    there = session.execute(
        select(func.count()).select_from(User).where(func.lower(User.email).in_(emails))
    ).scalar_one()
    if there < len(emails):
        _ensure_demo(now=now)
    return logins


def _ensure_demo(*, now: datetime) -> None:
    if session.execute(select(Insurer).where(Insurer.code == DEMO_INSURER_CODE)).first() is None:
        services.create_insurer("Demo Health Plan", DEMO_INSURER_CODE, now=now)
    for role, email, name in (
        (Role.COACH, COACH_EMAIL, "Casey (coach)"),
        (Role.ADMIN, ADMIN_EMAIL, "Avery (admin)"),
        (Role.INSURER_ANALYST, ANALYST_EMAIL, "Ana (analyst)"),
    ):
        if not _exists(email):
            services.create_staff(
                role,
                email,
                DEMO_PASSWORD,
                display_name=name,
                insurer_code=DEMO_INSURER_CODE if role == Role.INSURER_ANALYST else None,
                now=now,
            )
    coach = services.find_user_by_email(COACH_EMAIL)
    for index, (email, name, zone, country, sex, goal, limit) in enumerate(MEMBERS):
        if not _exists(email):
            first = localtime.local_date(now, zone) - timedelta(days=HISTORY_DAYS)
            signed_in = services.register_member(
                {
                    "email": email,
                    "password": DEMO_PASSWORD,
                    "display_name": name,
                    "timezone": zone,
                    "country": country,
                    "sex": sex,
                    "goal": {"type": goal, "weekly_limit": limit},
                    "enrollment_code": DEMO_INSURER_CODE,
                    "consents": {"outcome_sharing": True},
                },
                now=_enrolled(first, zone),
            )
            services.assign_coach(email, COACH_EMAIL, now=now)
            assert coach is not None and signed_in.user.member is not None
            _history(signed_in.user.member, coach, seed=index, now=now)
    made = []
    for index, sc in enumerate(SCENARIOS):
        if not _exists(sc.email):
            first = localtime.local_date(now, SCENARIO_ZONE) - timedelta(days=SCENARIO_DAYS)
            signed_in = services.register_member(
                {
                    "email": sc.email,
                    "password": DEMO_PASSWORD,
                    "display_name": sc.name,
                    "timezone": SCENARIO_ZONE,
                    "country": "US",
                    "sex": "unspecified",
                    "goal": {"type": "abstain", "weekly_limit": None},
                    "enrollment_code": DEMO_INSURER_CODE,
                    "consents": {"outcome_sharing": True},
                },
                now=_enrolled(first, SCENARIO_ZONE),
            )
            services.assign_coach(sc.email, COACH_EMAIL, now=now)
            assert coach is not None and signed_in.user.member is not None
            _scenario(signed_in.user.member, coach, sc, seed=100 + index, now=now)
            made.append(signed_in.user.id)
    if made:
        assert coach is not None
        _coach_at_work(coach, made, now=now)


def _coach_at_work(coach: User, member_ids: list[uuid.UUID], *, now: datetime) -> None:
    """The safety scan the worker would run, then a coach's morning: one flag acknowledged, one resolved
    with what was done, and messages."""
    safety_services.scan_members(member_ids, now=now)
    flags = dict(
        session.execute(
            select(Flag.rule, Flag.id).where(Flag.member_id.in_(member_ids), Flag.status == "open")
        ).all()
    )
    if "withdrawal_risk" in flags:
        safety_queue.acknowledge(coach, flags["withdrawal_risk"], now=now - timedelta(minutes=40))
    if "liver_signs" in flags:
        safety_queue.resolve(
            coach,
            flags["liver_signs"],
            "Called Tess: GP booked liver tests for Thursday; naltrexone paused until then.",
            now=now - timedelta(minutes=20),
        )
    for email, body in (
        ("rosa@demo.companion.test", "Sorry about the nausea last night. Can we talk at 10 tomorrow?"),
        ("alex@demo.companion.test", "Two alcohol-free weeks: that's real progress. Proud of you."),
        ("noah@demo.companion.test", "Good to see you back. A quiet week happens; call me when it suits."),
    ):
        target = services.find_user_by_email(email)
        if target is not None:
            nudge_services.send_coach_message(coach, target.id, body, now=now - timedelta(hours=2))


# --- an insurer cohort ------------------------------------------------------------------------------

#: The demo insurer's cohort: `companion simulate`'s population (its own coaches), moved to the demo
#: insurer, ~85% consenting. Cells must hold 11 or more members, and a count must not differ from its
#: parent's by 1-10 (members with a weekly-drinks change among those who logged; with a craving change
#: among the members): with 80 members, half the days of a month the last three months hid both changes
#: (8-9 members logged without one); 240 keep those differences at 18 or more on any day (~1.3 s).
COHORT_MEMBERS = 240
COHORT_DAYS = 120
COHORT_SEED = 22


def ensure_cohort(url: str, *, now: datetime) -> int:
    """Bulk-load the cohort (COPY, through `companion.simulate`) into the database at libpq `url` unless it
    is there, and make it the demo insurer's. Returns how many members were added (0: already there)."""
    import psycopg

    from companion import simulate as simulation

    try:
        done = simulation.simulate(url, members=COHORT_MEMBERS, days=COHORT_DAYS, seed=COHORT_SEED, now=now)
    except ValueError:  # this seed's population is there: made by an earlier run
        return 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE members SET insurer_id = (SELECT id FROM insurers WHERE code = %s) WHERE insurer_id = %s",
            (DEMO_INSURER_CODE, done.insurer_id),
        )
        conn.execute("DELETE FROM insurers WHERE id = %s", (done.insurer_id,))
    return done.members


#: What the demo's printed logins suggest looking at first.
FIRST_LOOKS = (
    "Sign in as the coach: the flag queue holds an urgent flag of each kind (severe side effect, withdrawal"
    " risk, sedation with drinking, disulfiram with drinking, liver signs, contraindication, withdrawal after"
    " a stop, suicidal thoughts, opioid use on naltrexone, kidney stones on topiramate), a warning, one"
    " acknowledged, one resolved, and one cleared by a rescan (Noah, back after a silent week).",
    "Open Rosa (severe nausea) or Lena (a heavy day on gabapentin, drowsy, BAC 0.092): the day-by-day story"
    " under the charts shows what they logged, in their words and their local time. Dev, Nina, Cal and"
    " Ruth reported symptoms on their own; Alex, Sam, Kiri, Priya and Jordan answer a weekly PACS.",
    "Caseload: sorted by need; try the search, the filters and the column sorts. Change a plan from a"
    " member page (a dose from today, or a taper as steps ahead).",
    "Sign in as the admin: the audit log shows every read and write, filterable by staff, member and action.",
    "Insurer report: companion export --insurer DEMO-HEALTH --from <3 months ago, YYYY-MM> --to <last month>"
    f" --format csv ({COHORT_MEMBERS} simulated members, most consenting: numbers, not suppressed cells)."
    " Months that are over give the same counts each time; a report over other months overlapping them"
    " hides the counts that differ by 1-10 from this one's (the release ledger).",
)
