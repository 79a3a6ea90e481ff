"""Nudge decisions: planning each kind, delivery policies, zone changes, idempotency, templates.

The DST sweeps over 2026-2027 are in test_nudges_dst.py.
"""

import itertools
import re
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from companion.domain import localtime
from companion.domain.medications import CATALOGUE, LABELS, OTHER
from companion.domain.nudges import (
    DEFAULT_POLICY,
    KIND_PRIORITY,
    MUTABLE_KINDS,
    SEND,
    SKIP_CAP,
    SKIP_DONE,
    SKIP_EXPIRED,
    SKIP_MUTED,
    TEMPLATES,
    Decision,
    MemberSettings,
    NudgeKind,
    NudgePolicy,
    Outcome,
    PlannedNudge,
    cap_window,
    coach_message_nudge,
    craving_support_for,
    delivery_decision,
    delivery_decisions,
    hold_until,
    is_done,
    plan_window,
    quiet_hours_end,
    reanchored,
)
from companion.domain.plans import CheckIn, CheckInStatus, Plan, PlanStep
from companion.domain.summary import DayLog, Goal, GoalType

NY, LONDON, KOLKATA, AUCKLAND = "America/New_York", "Europe/London", "Asia/Kolkata", "Pacific/Auckland"
K = NudgeKind
PLAN_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_PLAN_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
CRAVING_ID = uuid.UUID("00000000-0000-4000-8000-0000000000c1")
MESSAGE_ID = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
EST, EDT = timezone(timedelta(hours=-5)), timezone(timedelta(hours=-4))
#: A Friday; the Sunday after is 2026-11-22 (ISO week 47). New York is on EST (UTC-5).
DAY = date(2026, 11, 20)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    """A (normal, unambiguous) local wall time in `zone`, as a UTC instant."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def t(hhmm: str) -> time:
    return time.fromisoformat(hhmm)


def member(zone: str = NY, **kwargs) -> MemberSettings:
    return MemberSettings(zone, **kwargs)


def plan(*hhmm: str, start: date = date(2026, 11, 1), end: date | None = None, steps=(), id=PLAN_ID) -> Plan:
    return Plan(id, "baclofen", D("10"), tuple(t(x) for x in hhmm), start, end, steps)


def sober(last: date, days: int) -> list[DayLog]:
    """Alcohol-free logs on the `days` days up to and including `last`."""
    return [DayLog(last - timedelta(days=n), D(0), heavy=False) for n in range(days)]


def day_window(day: date = DAY, zone: str = NY, days: int = 1) -> tuple[datetime, datetime]:
    return localtime.day_bounds_utc(day, zone)[0], localtime.day_bounds_utc(
        day + timedelta(days=days - 1), zone
    )[1]


def plan_for(
    settings: MemberSettings | None = None,
    window: tuple[datetime, datetime] | None = None,
    *,
    plans=(),
    checkins=(),
    day_logs=(),
    last_entry_date=None,
    last_reengagement_date=None,
    **kwargs,
) -> list[PlannedNudge]:
    settings = settings or member()
    start, end = window or day_window(zone=settings.zone)
    return plan_window(
        settings,
        plans=plans,
        checkins=checkins,
        day_logs=day_logs,
        last_entry_date=last_entry_date,
        last_reengagement_date=last_reengagement_date,
        window_start=start,
        window_end=end,
        **kwargs,
    )


def of_kind(nudges: list[PlannedNudge], kind: NudgeKind) -> list[PlannedNudge]:
    return [n for n in nudges if n.kind is kind]


def keys(nudges: list[PlannedNudge]) -> list[str]:
    return [n.dedupe_key for n in nudges]


# Kinds, settings, policy.


def test_mutable_kinds_are_the_accounts_schema_names_and_exclude_coach_messages():
    # companion/accounts/schemas.py MUTABLE_NUDGE_KINDS, spelled out: tests/domain stays pure.
    assert {k.value for k in MUTABLE_KINDS} == {
        "dose_reminder", "log_reminder", "craving_support", "streak", "reengagement", "weekly_summary",
        "pacs_reminder",
    }  # fmt: skip
    assert K.COACH_MESSAGE not in MUTABLE_KINDS
    assert [k for k in K if not k.automatic] == [K.COACH_MESSAGE]
    assert set(KIND_PRIORITY) == set(K)


def test_settings_defaults_and_muted_strings():
    settings = member(muted_kinds=frozenset({"streak", "log_reminder"}))
    assert settings.log_time == time(20, 0)
    assert settings.muted_kinds == {K.STREAK, K.LOG_REMINDER}
    assert all(isinstance(k, NudgeKind) for k in settings.muted_kinds)


@pytest.mark.parametrize("kwargs", [
    {"zone": "Mars/Olympus_Mons"},
    {"log_time": time(20, 0, tzinfo=UTC)},
    {"quiet_start": t("22:00")},
    {"quiet_end": t("07:00")},
    {"quiet_start": t("22:00"), "quiet_end": time(7, 0, tzinfo=UTC)},
    {"muted_kinds": frozenset({"coach_message"})},
    {"muted_kinds": frozenset({"everything"})},
])  # fmt: skip
def test_settings_refuse_bad_values(kwargs):
    with pytest.raises(ValueError):
        MemberSettings(**{"zone": NY, **kwargs})


@pytest.mark.parametrize("kwargs", [
    {"cap_exempt": frozenset()},  # coach messages are never capped
    {"cap_exempt": frozenset({K.COACH_MESSAGE})},  # craving support is never blocked
    {"quiet_hours_exempt": frozenset({K.DOSE_REMINDER})},
    {"daily_cap": -1},
    {"streak_milestones": (30, 7)},
    {"streak_milestones": (0, 7)},
    {"reengagement_after_days": 0},
    {"craving_support_ttl": timedelta(0)},
])  # fmt: skip
def test_policy_refuses_bad_values(kwargs):
    with pytest.raises(ValueError):
        NudgePolicy(**kwargs)


def test_decision_has_an_until_for_holds_only():
    assert hold_until(utc(2026, 11, 20, 12)).until == utc(2026, 11, 20, 12)
    assert not hold_until(utc(2026, 11, 20, 12)).final and SEND.final
    with pytest.raises(ValueError):
        Decision(Outcome.HOLD_UNTIL)
    with pytest.raises(ValueError):
        Decision(Outcome.SEND, utc(2026, 11, 20, 12))


# Templates: no health data.

MEDICATION_WORDS = {
    word for m in CATALOGUE for word in (m.code, m.name, *re.findall(r"[A-Za-z-]{4,}", m.drug_class))
}
SYMPTOM_WORDS = {code.replace("_", " ") for code in LABELS if code != OTHER} | {
    label for code, label in LABELS.items() if code != OTHER
}
HEALTH_WORDS = {
    "alcohol", "drink", "drinks", "drinking", "drunk", "sober", "sobriety", "relapse", "craving",
    "cravings", "urge", "medication", "medicine", "meds", "dose", "doses", "pill", "pills", "tablet",
    "withdrawal", "side effect", "side effects", "symptom", "recovery", "addiction", "abstinent",
    "heavy", "breath", "bac", "streak", "units", "mg",
}  # fmt: skip
#: A number with a unit of health data: "50 mg", "3 drinks", "0.08 g/dL", "30 days".
NUMBER_WITH_UNIT = re.compile(r"\d+(\.\d+)?\s*(mg|ml|g|%|drinks?|units?|days?|g/dl)\b", re.IGNORECASE)


def health_data_in(text: str) -> list[str]:
    found = [
        word
        for word in sorted(MEDICATION_WORDS | SYMPTOM_WORDS | HEALTH_WORDS)
        if re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)
    ]
    found += NUMBER_WITH_UNIT.findall(text) and ["number with unit"]
    found += re.findall(r"\d", text) and ["digit"]
    found += re.findall(r"[{}%]", text) and ["placeholder"]
    return found


@pytest.mark.parametrize("text", [
    "Take your baclofen", "Time for your Naltrexone", "You logged 3 drinks", "50 mg now",
    "Your craving was high", "Feeling Dizziness?", "30 days sober!", "Hi {name}", "Seizure check",
])  # fmt: skip
def test_the_checker_catches_health_data(text):
    assert health_data_in(text)


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_template_is_free_of_health_data(key):
    title, body = TEMPLATES[key]
    assert title.strip() and body.strip()
    assert health_data_in(title) == []
    assert health_data_in(body) == []


def test_every_kind_has_a_template_and_unknown_templates_are_refused():
    assert set(TEMPLATES) == {k.value for k in K}
    with pytest.raises(ValueError):
        PlannedNudge(
            K.LOG_REMINDER, "log_reminder:x", DAY, t("20:00"), NY, utc(2026, 11, 21, 1), None, "free text"
        )


# Dose reminders.


def test_dose_reminders_for_each_slot_expire_at_the_next_dose():
    nudges = plan_for(plans=[plan("08:00", "14:00", "20:00")])
    doses = of_kind(nudges, K.DOSE_REMINDER)
    prefix = f"dose_reminder:{PLAN_ID}:2026-11-20T"
    assert [(n.dedupe_key, n.local_slot, n.due_at, n.expires_at) for n in doses] == [
        (prefix + "08:00", t("08:00"), utc(2026, 11, 20, 13), utc(2026, 11, 20, 19)),
        (prefix + "14:00", t("14:00"), utc(2026, 11, 20, 19), utc(2026, 11, 21, 1)),
        # The last one: end of the local day (05:00Z) plus the 2 h grace, before tomorrow's 08:00.
        (prefix + "20:00", t("20:00"), utc(2026, 11, 21, 1), utc(2026, 11, 21, 7)),
    ]
    for nudge in of_kind(nudges, K.DOSE_REMINDER):
        assert (nudge.local_date, nudge.zone, nudge.subject_id, nudge.template) == (
            DAY,
            NY,
            PLAN_ID,
            "dose_reminder",
        )


@pytest.mark.parametrize(("times", "end", "slot", "expires"), [
    # The day's last dose expires at the end of the day + grace, or at the next dose if sooner.
    (("08:00",),            None,            "08:00", utc(2026, 11, 21, 7)),
    (("00:30", "22:00"),    None,            "22:00", utc(2026, 11, 21, 5, 30)),   # tomorrow's 00:30
    (("00:30", "22:00"),    None,            "00:30", utc(2026, 11, 21, 3)),       # today's 22:00
    (("08:00", "20:00"),    DAY,             "20:00", utc(2026, 11, 21, 7)),       # the plan's last day
])  # fmt: skip
def test_dose_reminder_expiry(times, end, slot, expires):
    nudges = of_kind(plan_for(plans=[plan(*times, end=end)]), K.DOSE_REMINDER)
    [nudge] = [n for n in nudges if n.local_slot == t(slot)]
    assert nudge.expires_at == expires


@pytest.mark.parametrize(("checkin_at", "status", "expected_slots"), [
    (None,                     None,                   ["08:00", "14:00", "20:00"]),
    (utc(2026, 11, 20, 19),    CheckInStatus.TAKEN,    ["08:00", "20:00"]),
    (utc(2026, 11, 20, 19),    CheckInStatus.SKIPPED,  ["08:00", "20:00"]),   # answered either way
    (datetime(2026, 11, 20, 14, tzinfo=EST),  CheckInStatus.TAKEN,  ["08:00", "20:00"]),
    (datetime(2026, 11, 20, 14, tzinfo=EDT),  CheckInStatus.TAKEN,  ["08:00", "14:00", "20:00"]),  # stale
])  # fmt: skip
def test_a_checked_in_dose_is_not_reminded(checkin_at, status, expected_slots):
    checkins = [] if checkin_at is None else [CheckIn(PLAN_ID, checkin_at, status)]
    nudges = plan_for(plans=[plan("08:00", "14:00", "20:00")], checkins=checkins)
    assert [n.local_slot for n in of_kind(nudges, K.DOSE_REMINDER)] == [t(x) for x in expected_slots]


def test_a_check_in_for_another_plan_does_not_count():
    checkins = [CheckIn(OTHER_PLAN_ID, utc(2026, 11, 20, 13), CheckInStatus.TAKEN)]
    nudges = plan_for(plans=[plan("08:00"), plan("08:00", id=OTHER_PLAN_ID)], checkins=checkins)
    assert [n.subject_id for n in of_kind(nudges, K.DOSE_REMINDER)] == [PLAN_ID]


#: Baclofen taper: three a day from 10-01, two a day from 10-15, one a day from 11-01 to the end, 11-08.
TAPER = plan(
    "08:00", "14:00", "20:00", start=date(2026, 10, 1), end=date(2026, 11, 8),
    steps=(PlanStep(date(2026, 10, 15), D("10"), (t("08:00"), t("20:00"))),
           PlanStep(date(2026, 11, 1), D("5"), (t("21:00"),))),
)  # fmt: skip


@pytest.mark.parametrize(("day", "expected"), [
    (date(2026, 9, 30),  []),
    (date(2026, 10, 1),  ["08:00", "14:00", "20:00"]),
    (date(2026, 10, 14), ["08:00", "14:00", "20:00"]),
    (date(2026, 10, 15), ["08:00", "20:00"]),
    (date(2026, 11, 1),  ["21:00"]),   # also the US fall-back day
    (date(2026, 11, 8),  ["21:00"]),
    (date(2026, 11, 9),  []),
])  # fmt: skip
def test_dose_reminders_follow_the_plan_in_force(day, expected):
    nudges = of_kind(plan_for(window=day_window(day), plans=[TAPER]), K.DOSE_REMINDER)
    assert [n.local_slot for n in nudges] == [t(x) for x in expected]
    assert all(n.local_date == day for n in nudges)


def test_the_last_dose_before_a_step_expires_after_the_grace_when_the_step_starts_later():
    *_, last = of_kind(plan_for(window=day_window(date(2026, 10, 31)), plans=[TAPER]), K.DOSE_REMINDER)
    assert last.local_slot == t("20:00")
    assert last.expires_at == utc(2026, 11, 1, 6)  # midnight EDT + 2 h, before 11-01's 21:00 EST


# Log reminders.


@pytest.mark.parametrize(("zone", "log_time", "logged", "expected"), [
    (NY,       "20:00", False, utc(2026, 11, 21, 1)),
    (NY,       "20:00", True,  None),
    (KOLKATA,  "07:15", False, utc(2026, 11, 20, 1, 45)),
    (AUCKLAND, "23:59", False, utc(2026, 11, 20, 10, 59)),
    (LONDON,   "00:00", False, utc(2026, 11, 20, 0, 0)),
])  # fmt: skip
def test_log_reminder_at_log_time_when_the_day_has_no_log(zone, log_time, logged, expected):
    settings = member(zone, log_time=t(log_time))
    day_logs = sober(DAY, 1) if logged else []
    nudges = of_kind(plan_for(settings, day_window(DAY, zone), day_logs=day_logs), K.LOG_REMINDER)
    if expected is None:
        assert nudges == []
        return
    [nudge] = nudges
    assert (nudge.dedupe_key, nudge.local_date, nudge.local_slot, nudge.due_at) == (
        "log_reminder:2026-11-20",
        DAY,
        t(log_time),
        expected,
    )
    assert nudge.expires_at == day_window(DAY, zone)[1]  # the end of its local day


# Streaks.


@pytest.mark.parametrize(("sober_days", "today_logged", "sent", "expected"), [
    (6,   False, (),       None),
    (7,   False, (),       7),      # seven days through yesterday; today not yet logged keeps it
    (7,   True,  (),       7),      # ... or through today
    (8,   False, (),       7),      # the highest milestone reached, until its key is spent
    (8,   False, (7,),     None),
    (29,  False, (7,),     None),
    (30,  False, (7,),     30),
    (45,  False, (),       30),     # a backfill that jumps past a milestone celebrates the highest
    (365, False, (7, 30, 60, 90, 180), 365),
    (400, False, (365,),   None),   # once per milestone, ever: never falls back to a lower one
])  # fmt: skip
def test_streak_milestones(sober_days, today_logged, sent, expected):
    last = DAY if today_logged else DAY - timedelta(days=1)
    nudges = of_kind(plan_for(day_logs=sober(last, sober_days), streak_milestones_sent=set(sent)), K.STREAK)
    assert keys(nudges) == ([] if expected is None else [f"streak:{expected}"])
    for nudge in nudges:
        assert nudge.due_at == utc(2026, 11, 21, 1) and nudge.template == "streak"


def test_a_drinking_or_missing_day_breaks_the_streak():
    logs = sober(DAY - timedelta(days=1), 10)
    drank = [
        log if log.day != DAY - timedelta(days=4) else DayLog(log.day, D(14), heavy=False) for log in logs
    ]
    missing = [log for log in logs if log.day != DAY - timedelta(days=4)]
    assert keys(of_kind(plan_for(day_logs=logs), K.STREAK)) == ["streak:7"]
    assert of_kind(plan_for(day_logs=drank), K.STREAK) == []
    assert of_kind(plan_for(day_logs=missing), K.STREAK) == []


def test_a_moderate_goal_counts_within_goal_days():
    goal = Goal(GoalType.MODERATE, D("7"))
    one_a_day = [DayLog(DAY - timedelta(days=n), D(14), heavy=False) for n in range(1, 8)]  # 1 US drink a day
    assert keys(of_kind(plan_for(member(goal=goal), day_logs=one_a_day), K.STREAK)) == ["streak:7"]
    assert of_kind(plan_for(member(), day_logs=one_a_day), K.STREAK) == []  # abstain: not alcohol-free


def test_a_window_of_several_days_plans_a_milestone_once():
    nudges = plan_for(window=day_window(DAY, days=5), day_logs=sober(DAY + timedelta(days=4), 12))
    assert keys(of_kind(nudges, K.STREAK)) == ["streak:7"]


# Re-engagement.


@pytest.mark.parametrize(("entry_days_ago", "reengaged_days_ago", "expected"), [
    (None, None, False),   # no entry at all: the caller passes the enrolment date instead
    (0,    None, False),
    (2,    None, False),
    (3,    None, True),    # three local days without an entry
    (30,   None, True),
    (10,   3,    False),   # not again for 7 days
    (10,   6,    False),
    (10,   7,    True),
    (10,   0,    True),    # planned already today: the same key again, so planning stays idempotent
    (10,   -1,   False),   # one planned for tomorrow (a window planned ahead) is 1 day away
])  # fmt: skip
def test_reengagement(entry_days_ago, reengaged_days_ago, expected):
    def ago(days):
        return None if days is None else DAY - timedelta(days=days)

    nudges = plan_for(last_entry_date=ago(entry_days_ago), last_reengagement_date=ago(reengaged_days_ago))
    assert keys(of_kind(nudges, K.REENGAGEMENT)) == (["reengagement:2026-11-20"] if expected else [])


def test_reengagement_repeats_weekly_within_a_long_window_and_across_daily_windows():
    first = date(2026, 11, 2)
    expected = ["reengagement:2026-11-04", "reengagement:2026-11-11", "reengagement:2026-11-18",
                "reengagement:2026-11-25"]  # fmt: skip
    long = plan_for(window=day_window(first, days=29), last_entry_date=date(2026, 11, 1))
    assert keys(of_kind(long, K.REENGAGEMENT)) == expected
    # The dispatcher passes the date of the latest re-engagement row each time.
    rows: list[str] = []
    for n in range(29):
        last = date.fromisoformat(rows[-1].split(":")[1]) if rows else None
        daily = plan_for(
            window=day_window(first + timedelta(days=n)),
            last_entry_date=date(2026, 11, 1),
            last_reengagement_date=last,
        )
        rows += keys(of_kind(daily, K.REENGAGEMENT))
    assert rows == expected


# Weekly summary.


@pytest.mark.parametrize(("day", "logged_days_ago", "expected"), [
    (date(2026, 11, 22), (0,),   "weekly_summary:2026-W47"),
    (date(2026, 11, 22), (6,),   "weekly_summary:2026-W47"),   # the week's first day
    (date(2026, 11, 22), (7,),   None),                        # nothing logged in the week
    (date(2026, 11, 22), (),     None),
    (date(2026, 11, 21), (0,),   None),                        # a Saturday
    (date(2027, 1, 3),   (1,),   "weekly_summary:2026-W53"),   # ISO year, not calendar year
])  # fmt: skip
def test_weekly_summary_on_sunday_at_log_time(day, logged_days_ago, expected):
    logs = [DayLog(day - timedelta(days=n), D(0), heavy=False) for n in logged_days_ago]
    nudges = of_kind(plan_for(window=day_window(day), day_logs=logs), K.WEEKLY_SUMMARY)
    assert keys(nudges) == ([expected] if expected else [])
    for nudge in nudges:
        assert nudge.due_at == localtime.local_to_utc(day, t("20:00"), NY)


def test_planning_orders_by_due_time_then_priority():
    nudges = plan_for(
        window=day_window(date(2026, 11, 22)),
        plans=[plan("20:00")],
        day_logs=sober(date(2026, 11, 21), 7),
        last_entry_date=date(2026, 11, 21),
    )
    assert keys(nudges) == [
        f"dose_reminder:{PLAN_ID}:2026-11-22T20:00",
        "log_reminder:2026-11-22",
        "streak:7",
        "weekly_summary:2026-W47",
    ]
    assert len({n.due_at for n in nudges}) == 1


# Event-driven kinds.


@pytest.mark.parametrize(("intensity", "policy", "planned"), [
    (0,  DEFAULT_POLICY, False),
    (7,  DEFAULT_POLICY, False),
    (8,  DEFAULT_POLICY, True),
    (10, DEFAULT_POLICY, True),
    (8,  NudgePolicy(craving_threshold=9), False),
    (9,  NudgePolicy(craving_threshold=9), True),
])  # fmt: skip
def test_craving_support_threshold(intensity, policy, planned):
    nudge = craving_support_for(
        CRAVING_ID, intensity, utc(2026, 11, 20, 11, 30), member(AUCKLAND), policy=policy
    )
    assert (nudge is not None) == planned


def test_craving_support_is_due_at_once_and_expires_soon():
    nudge = craving_support_for(CRAVING_ID, 9, utc(2026, 11, 20, 11, 30), member(AUCKLAND))
    assert nudge == PlannedNudge(
        K.CRAVING_SUPPORT, f"craving_support:{CRAVING_ID}", date(2026, 11, 21), t("00:30"), AUCKLAND,
        utc(2026, 11, 20, 11, 30), utc(2026, 11, 20, 12, 30), "craving_support", CRAVING_ID,
    )  # fmt: skip


@pytest.mark.parametrize(("last_support_at", "planned"), [
    (None,                          True),
    (utc(2026, 11, 20, 11, 0),      False),   # 30 minutes before
    (utc(2026, 11, 20, 10, 30),     True),    # an hour before
    (utc(2026, 11, 20, 11, 45),     False),   # an older rating synced late, just after a support
])  # fmt: skip
def test_craving_support_at_most_once_an_hour(last_support_at, planned):
    nudge = craving_support_for(
        CRAVING_ID, 9, utc(2026, 11, 20, 11, 30), member(), last_support_at=last_support_at
    )
    assert (nudge is not None) == planned


def test_craving_support_refuses_bad_values():
    with pytest.raises(ValueError):
        craving_support_for(CRAVING_ID, 11, utc(2026, 11, 20, 11, 30), member())
    with pytest.raises(ValueError):
        craving_support_for(CRAVING_ID, 9, datetime(2026, 11, 20, 11, 30), member())


def test_coach_message_nudge():
    nudge = coach_message_nudge(MESSAGE_ID, utc(2026, 11, 20, 15), member(LONDON))
    assert nudge == PlannedNudge(
        K.COACH_MESSAGE, f"coach_message:{MESSAGE_ID}", date(2026, 11, 20), t("15:00"), LONDON,
        utc(2026, 11, 20, 15), None, "coach_message", MESSAGE_ID,
    )  # fmt: skip


# Delivery.

LOG_20 = plan_for(member())[0]  # the log reminder for 2026-11-20 20:00 EST: 01:00Z, expiring 05:00Z
DOSE_23 = of_kind(plan_for(plans=[plan("23:00")]), K.DOSE_REMINDER)[0]  # 04:00Z 11-21
REENGAGE_20 = of_kind(plan_for(last_entry_date=DAY - timedelta(days=5)), K.REENGAGEMENT)[0]
CRAVING_23 = craving_support_for(CRAVING_ID, 9, local(NY, 2026, 11, 20, 23), member())
COACH_23 = coach_message_nudge(MESSAGE_ID, local(NY, 2026, 11, 20, 23), member())


def test_fixtures():
    assert (LOG_20.kind, LOG_20.due_at, LOG_20.expires_at) == (
        K.LOG_REMINDER,
        utc(2026, 11, 21, 1),
        utc(2026, 11, 21, 5),
    )
    assert DOSE_23.due_at == utc(2026, 11, 21, 4)


def z(hour: int, minute: int = 0) -> datetime:
    """An instant on 2026-11-21 UTC (the evening of 11-20 and the morning of 11-21 in New York)."""
    return utc(2026, 11, 21, hour, minute)


def quiet(start: str, end: str) -> dict:
    return {"quiet_start": t(start), "quiet_end": t(end)}


QUIET = quiet("22:00", "07:00")
HOLD = hold_until


@pytest.mark.parametrize(("nudge", "settings", "count", "now", "done", "expected"), [
    # Due, and nothing stands in the way.
    (LOG_20,     {},                           0,  z(1),      False, SEND),
    (LOG_20,     {},                           0,  z(4, 59),  False, SEND),          # late, not expired
    # Not yet due: held until it is.
    (LOG_20,     {},                           0,  z(0, 59),  False, HOLD(z(1))),
    # Expired: never sent late.
    (LOG_20,     {},                           0,  z(5),      False, SKIP_EXPIRED),
    (DOSE_23,    {},                           0,  z(7),      False, SKIP_EXPIRED),
    (CRAVING_23, {},                           0,  z(5),      False, SKIP_EXPIRED),
    (LOG_20,     {"muted_kinds": {"log_reminder"}}, 9, z(5),  False, SKIP_EXPIRED),  # expiry first
    # Already done since it was planned.
    (LOG_20,     {},                           0,  z(1),      True,  SKIP_DONE),
    (DOSE_23,    {},                           0,  z(4),      True,  SKIP_DONE),
    # Muted kinds; coach messages cannot be muted.
    (LOG_20,     {"muted_kinds": {"log_reminder"}}, 0, z(1),  False, SKIP_MUTED),
    (LOG_20,     {"muted_kinds": {"streak"}},  0,  z(1),      False, SEND),
    (DOSE_23,    {"muted_kinds": {"dose_reminder"}, **QUIET}, 0, z(4), False, SKIP_MUTED),
    (COACH_23,   {"muted_kinds": MUTABLE_KINDS}, 0, z(12),    False, SEND),
    # The daily cap: 4 automatic nudges; coach messages never capped.
    (LOG_20,     {},                           3,  z(1),      False, SEND),
    (LOG_20,     {},                           4,  z(1),      False, SKIP_CAP),
    (DOSE_23,    {},                           4,  z(4),      False, SKIP_CAP),
    (COACH_23,   {},                           99, z(4),      False, SEND),
    # Craving support is never blocked (issue 19): not by the cap, not by quiet hours.
    (CRAVING_23, {},                           4,  z(4),      False, SEND),
    (CRAVING_23, QUIET,                        99, z(4),      False, SEND),
    (CRAVING_23, {"muted_kinds": {"craving_support"}, **QUIET}, 0, z(4), False, SKIP_MUTED),  # muted: asked
    # Quiet hours 22:00-07:00 (z(12) is 07:00 EST), across midnight: held to their end...
    (COACH_23,   QUIET,                        0,  z(4),      False, HOLD(z(12))),
    (COACH_23,   QUIET,                        0,  z(11, 59), False, HOLD(z(12))),
    (COACH_23,   QUIET,                        0,  z(12),     False, SEND),
    (COACH_23,   QUIET,                        99, z(4),      False, HOLD(z(12))),   # the cap is for later
    # ... unless it would expire by then.
    (LOG_20,     quiet("19:00", "07:00"),      0,  z(1),      False, SKIP_EXPIRED),
    # Quiet hours within a day; an empty span is no quiet hours.
    (LOG_20,     quiet("21:00", "22:00"),      0,  z(1),      False, SEND),
    (LOG_20,     quiet("19:30", "20:30"),      0,  z(1),      False, HOLD(z(1, 30))),
    (LOG_20,     quiet("19:30", "20:30"),      0,  z(1, 30),  False, SEND),
    (LOG_20,     quiet("20:00", "20:00"),      0,  z(1),      False, SEND),
    # A dose reminder is at its prescribed time: quiet hours do not hold it.
    (DOSE_23,    QUIET,                        0,  z(4),      False, SEND),
])  # fmt: skip
def test_delivery_decision(nudge, settings, count, now, done, expected):
    decision = delivery_decision(
        nudge, settings=member(**settings), sent_today_count=count, now=now, already_done=done
    )
    assert decision == expected


@pytest.mark.parametrize(("policy", "nudge", "count", "expected"), [
    (NudgePolicy(daily_cap=6),                                             LOG_20,  5, SEND),
    (NudgePolicy(daily_cap=0),                                             LOG_20,  0, SKIP_CAP),
    (NudgePolicy(cap_exempt=frozenset({K.COACH_MESSAGE, K.CRAVING_SUPPORT, K.DOSE_REMINDER})),
                                                                           DOSE_23, 9, SEND),
    (NudgePolicy(quiet_hours_exempt=frozenset({K.CRAVING_SUPPORT})),       DOSE_23, 0, SKIP_EXPIRED),
])  # fmt: skip
def test_delivery_policy_is_a_setting(policy, nudge, count, expected):
    decision = delivery_decision(
        nudge, settings=member(**QUIET), sent_today_count=count, now=nudge.due_at, policy=policy
    )
    assert decision == expected


def test_delivery_refuses_bad_values():
    with pytest.raises(ValueError):
        delivery_decision(LOG_20, settings=member(), sent_today_count=0, now=datetime(2026, 11, 21, 1))
    with pytest.raises(ValueError):
        delivery_decision(LOG_20, settings=member(), sent_today_count=-1, now=utc(2026, 11, 21, 1))


@pytest.mark.parametrize(("quiet", "now", "expected"), [
    # US fall back (2026-11-01): 01:00-01:59 happens twice. Quiet hours ending at 01:30 end at the
    # first 01:30, or at the second for an instant inside the repeat.
    (("22:00", "01:30"), utc(2026, 11, 1, 5, 15),  utc(2026, 11, 1, 5, 30)),   # first 01:15 (EDT)
    (("22:00", "01:30"), utc(2026, 11, 1, 6, 15),  utc(2026, 11, 1, 6, 30)),   # second 01:15 (EST)
    (("22:00", "01:30"), utc(2026, 11, 1, 6, 30),  None),
    # US spring forward (2026-03-08): 02:30 does not exist; like every wall time, it moves forward.
    (("22:00", "02:30"), utc(2026, 3, 8, 6, 45),   utc(2026, 3, 8, 7, 30)),    # 01:45 EST -> 03:30 EDT
    (("22:00", "02:30"), utc(2026, 3, 8, 7, 0),    None),                      # 03:00 EDT
    # Quiet hours starting in the gap start when the clock jumps past it.
    (("02:30", "06:00"), utc(2026, 3, 8, 6, 59),   None),                      # 01:59 EST
    (("02:30", "06:00"), utc(2026, 3, 8, 7, 30),   utc(2026, 3, 8, 10)),       # 03:30 EDT
    # Not wrapping.
    (("13:00", "15:00"), local(NY, 2026, 11, 20, 12, 59), None),
    (("13:00", "15:00"), local(NY, 2026, 11, 20, 13),     local(NY, 2026, 11, 20, 15)),
    (("13:00", "15:00"), local(NY, 2026, 11, 20, 15),     None),
])  # fmt: skip
def test_quiet_hours_end_across_dst(quiet, now, expected):
    settings = member(quiet_start=t(quiet[0]), quiet_end=t(quiet[1]))
    assert quiet_hours_end(settings, now) == expected


def test_a_batch_is_decided_in_priority_order_against_the_cap():
    sunday = date(2026, 11, 22)
    due = plan_for(
        window=day_window(sunday),
        plans=[plan("20:00")],
        day_logs=sober(date(2026, 11, 21), 7),
        last_entry_date=date(2026, 11, 21),
    )
    coach = coach_message_nudge(MESSAGE_ID, due[0].due_at, member())
    now = due[0].due_at

    def outcomes(count, done=frozenset()):
        decided = delivery_decisions(
            [*reversed(due), coach], settings=member(), sent_today_count=count, now=now, done_keys=done
        )
        return [(n.kind, d.outcome) for n, d in decided]

    # Two sent earlier today: room for two more automatic nudges; the coach message is never counted.
    assert outcomes(2) == [
        (K.COACH_MESSAGE, Outcome.SEND), (K.DOSE_REMINDER, Outcome.SEND), (K.LOG_REMINDER, Outcome.SEND),
        (K.STREAK, Outcome.SKIP_CAP), (K.WEEKLY_SUMMARY, Outcome.SKIP_CAP),
    ]  # fmt: skip
    assert outcomes(2, done=frozenset({"log_reminder:2026-11-22"})) == [
        (K.COACH_MESSAGE, Outcome.SEND), (K.DOSE_REMINDER, Outcome.SEND), (K.LOG_REMINDER, Outcome.SKIP_DONE),
        (K.STREAK, Outcome.SEND), (K.WEEKLY_SUMMARY, Outcome.SKIP_CAP),
    ]  # fmt: skip


def test_cap_window_is_the_members_local_day():
    assert cap_window(utc(2026, 11, 1, 12), NY) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))  # 25 hours
    assert cap_window(utc(2026, 11, 20, 11, 30), AUCKLAND) == (utc(2026, 11, 20, 11), utc(2026, 11, 21, 11))


@pytest.mark.parametrize(("nudge", "kwargs", "expected"), [
    (DOSE_23, {"checkins": [CheckIn(PLAN_ID, utc(2026, 11, 21, 4), CheckInStatus.TAKEN)]},        True),
    (DOSE_23, {"checkins": [CheckIn(PLAN_ID, utc(2026, 11, 21, 4), CheckInStatus.SKIPPED)]},      True),
    (DOSE_23, {"checkins": [CheckIn(OTHER_PLAN_ID, utc(2026, 11, 21, 4), CheckInStatus.TAKEN)]},  False),
    (DOSE_23, {"checkins": [CheckIn(PLAN_ID, utc(2026, 11, 20, 13), CheckInStatus.TAKEN)]},       False),
    # The member moved to London: the dose is now the 23:00 London slot, and either instant answers it.
    (DOSE_23, {"zone": LONDON, "checkins": [CheckIn(PLAN_ID, utc(2026, 11, 20, 23), CheckInStatus.TAKEN)]},
     True),
    (LOG_20,  {"logged_days": {DAY}},                                                              True),
    (LOG_20,  {"logged_days": {DAY - timedelta(days=1)}},                                          False),
    (LOG_20,  {"last_entry_date": DAY},                                                            False),
    (REENGAGE_20, {"last_entry_date": DAY - timedelta(days=5)},                                     False),
    (REENGAGE_20, {"last_entry_date": DAY - timedelta(days=1)},                                     True),
    (COACH_23, {"logged_days": {DAY}},                                                             False),
])  # fmt: skip
def test_is_done(nudge, kwargs, expected):
    assert is_done(nudge, **{"zone": NY, **kwargs}) is expected


# Zone changes.


@pytest.mark.parametrize(("old", "new"), [(NY, LONDON), (LONDON, NY), (AUCKLAND, NY), (NY, KOLKATA)])
def test_a_row_planned_in_the_old_zone_reanchors_to_what_the_new_zone_plans(old, new):
    def planned(zone):
        return plan_for(
            member(zone),
            day_window(DAY, zone),
            plans=[plan("08:00", "20:00")],
            last_entry_date=date(2026, 11, 1),
        )

    for before, after in zip(planned(old), planned(new), strict=True):
        assert before.dedupe_key == after.dedupe_key
        assert reanchored(before, new) == after
    assert reanchored(CRAVING_23, LONDON) is CRAVING_23  # an event keeps its instant
    assert reanchored(LOG_20, NY) is LOG_20


def simulate(
    periods, *, start, end, step=timedelta(hours=1), lookahead=timedelta(0), reanchor=False, **inputs
):
    """A dispatcher. Each `step`: plan [now, now + step + lookahead) with the member's settings at `now`
    (`periods`: [(from instant, settings)]), insert new rows (first one per key wins), and decide every
    row due before the next step. With `reanchor`, the service re-anchors pending rows on a zone change.
    Returns the sent rows as [(key, sent at)] and how many nudges the planning calls returned."""
    rows: dict[str, PlannedNudge] = {}
    pending: dict[str, datetime] = {}  # key -> when to decide it next
    sent, planned = [], 0
    zone, now = None, start
    while now < end:
        settings = [s for since, s in periods if since <= now][-1]
        if reanchor and zone is not None and settings.zone != zone:
            for key in pending:
                rows[key] = reanchored(rows[key], settings.zone)
                pending[key] = rows[key].due_at
        zone = settings.zone
        for nudge in plan_for(settings, (now, now + step + lookahead), **inputs):
            planned += 1
            if nudge.dedupe_key not in rows:
                rows[nudge.dedupe_key] = nudge
                pending[nudge.dedupe_key] = nudge.due_at
        for key, at in sorted(pending.items(), key=lambda item: item[1]):
            if at >= now + step:
                continue
            decided_at = max(at, now)
            decision = delivery_decision(rows[key], settings=settings, sent_today_count=0, now=decided_at)
            if decision.outcome is Outcome.HOLD_UNTIL:
                pending[key] = decision.until
                continue
            del pending[key]
            if decision.outcome is Outcome.SEND:
                sent.append((key, decided_at))
        now += step
    return sent, planned


def test_flying_west_over_the_date_line_never_reminds_a_day_twice():
    # Auckland's 2026-11-20 reminder goes at 20:00 NZDT (07:00Z); an hour later the member is in New
    # York, where it is still 11-20 (03:00). New York's 11-20 is planned under the same key: not again.
    switch = utc(2026, 11, 20, 8)
    sent, planned = simulate([(utc(2000, 1, 1), member(AUCKLAND)), (switch, member(NY))],
                             start=utc(2026, 11, 18), end=utc(2026, 11, 24))  # fmt: skip
    assert sent == [
        ("log_reminder:2026-11-18", utc(2026, 11, 18, 7)),
        ("log_reminder:2026-11-19", utc(2026, 11, 19, 7)),
        ("log_reminder:2026-11-20", utc(2026, 11, 20, 7)),  # Auckland
        ("log_reminder:2026-11-21", utc(2026, 11, 22, 1)),  # New York 20:00 from here on
        ("log_reminder:2026-11-22", utc(2026, 11, 23, 1)),
    ]
    assert planned == len(sent) + 1  # New York's 11-20 was planned, and kept out by its key


H = timedelta(hours=1)
LONDON_THEN_NY = [utc(2026, 11, 19, 20), utc(2026, 11, 21, 1), utc(2026, 11, 22, 1)]
NY_THEN_LONDON = [utc(2026, 11, 20, 1), utc(2026, 11, 20, 20), utc(2026, 11, 21, 20)]


@pytest.mark.parametrize(("old", "new", "lookahead", "reanchor", "expected"), [
    # West. Planned ahead for London's 20:00, the 11-20 row is held to New York's 20:00.
    (LONDON, NY, 0 * H,  False, LONDON_THEN_NY),
    (LONDON, NY, 24 * H, False, LONDON_THEN_NY),
    (LONDON, NY, 24 * H, True,  LONDON_THEN_NY),
    # East. Planned just in time, London's 11-20 is at London's 20:00. Planned ahead under New York,
    # the row comes due when London's 11-20 is over, and expires, unless the service re-anchors it.
    (NY, LONDON, 0 * H,  False, NY_THEN_LONDON),
    (NY, LONDON, 24 * H, False, [utc(2026, 11, 20, 1), utc(2026, 11, 21, 20)]),
    (NY, LONDON, 24 * H, True,  NY_THEN_LONDON),
])  # fmt: skip
def test_after_a_zone_change_the_next_reminder_is_at_the_new_local_time(
    old, new, lookahead, reanchor, expected
):
    # The member changes zone at 2026-11-20 15:00Z (London 15:00, New York 10:00).
    periods = [(utc(2000, 1, 1), member(old)), (utc(2026, 11, 20, 15), member(new))]
    sent, _ = simulate(
        periods,
        start=utc(2026, 11, 19, 12),
        end=utc(2026, 11, 22, 12),
        lookahead=lookahead,
        reanchor=reanchor,
    )
    assert [at for _, at in sent] == expected
    assert len({key for key, _ in sent}) == len(sent)  # never a day twice


def test_reanchoring_a_pending_row_can_move_it_earlier():
    # The service re-anchors pending rows when the zone changes, so a reminder moving east is not lost.
    row = plan_for(member(NY))[0]
    moved = reanchored(row, LONDON)
    assert (moved.dedupe_key, moved.due_at, moved.expires_at) == (
        row.dedupe_key,
        utc(2026, 11, 20, 20),
        utc(2026, 11, 21),
    )
    assert delivery_decision(moved, settings=member(LONDON), sent_today_count=0, now=moved.due_at) == SEND


# Idempotency.


def rich_inputs(**overrides):
    inputs = {
        "plans": [plan("08:00", "21:30"), plan("02:30", start=date(2026, 11, 3), id=OTHER_PLAN_ID)],
        "checkins": [CheckIn(PLAN_ID, utc(2026, 11, 3, 13), CheckInStatus.TAKEN)],
        "day_logs": sober(date(2026, 11, 8), 8),
        "last_entry_date": date(2026, 11, 8),
        "last_reengagement_date": None,
    }
    return {**inputs, **overrides}


def test_planning_the_same_window_twice_gives_the_same_nudges():
    window = day_window(date(2026, 11, 1), days=20)
    first, second = plan_for(member(), window, **rich_inputs()), plan_for(member(), window, **rich_inputs())
    assert first == second
    assert len(set(keys(first))) == len(first)
    assert {n.kind for n in first} == set(K) - {K.CRAVING_SUPPORT, K.COACH_MESSAGE}


def test_replanning_after_the_rows_exist_gives_nothing_new():
    # The dispatcher passes what the rows say: the latest re-engagement and the milestones planned.
    window = day_window(date(2026, 11, 1), days=20)
    first = plan_for(member(), window, **rich_inputs())
    again = plan_for(
        member(),
        window,
        **rich_inputs(last_reengagement_date=max(n.local_date for n in of_kind(first, K.REENGAGEMENT))),
        streak_milestones_sent={7},
    )
    assert set(keys(again)) <= set(keys(first))
    assert all(n in first for n in again)


def test_windows_refuse_bad_bounds():
    with pytest.raises(ValueError):
        plan_for(window=(datetime(2026, 11, 20), datetime(2026, 11, 21)))
    with pytest.raises(ValueError):
        plan_for(window=(utc(2026, 11, 21), utc(2026, 11, 20)))
    assert plan_for(window=(utc(2026, 11, 21, 1), utc(2026, 11, 21, 1))) == []


@hypothesis_settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from([NY, LONDON, AUCKLAND, KOLKATA]),
    cuts=st.lists(st.integers(1, 20 * 24 * 4 - 1), max_size=30, unique=True).map(sorted),
)
def test_any_partition_of_time_into_windows_plans_the_same_rows_as_one_window(zone, cuts):
    """The dispatcher's windows may be any length: the rows it ends up with are the same."""
    start, end = day_window(date(2026, 11, 1), zone, days=20)
    bounds = [start, *(start + timedelta(minutes=15 * c) for c in cuts), end]
    whole = plan_for(member(zone), (start, end), **rich_inputs())
    rows: dict[str, PlannedNudge] = {}
    for lo, hi in itertools.pairwise(bounds):
        reengaged = [n.local_date for n in rows.values() if n.kind is K.REENGAGEMENT]
        milestones = {int(n.dedupe_key.split(":")[1]) for n in rows.values() if n.kind is K.STREAK}
        for nudge in plan_for(
            member(zone),
            (lo, hi),
            **rich_inputs(last_reengagement_date=max(reengaged, default=None)),
            streak_milestones_sent=milestones,
        ):
            assert nudge.dedupe_key not in rows  # disjoint windows never plan a row twice
            rows[nudge.dedupe_key] = nudge
    assert sorted(rows.values(), key=lambda n: (n.due_at, KIND_PRIORITY[n.kind], n.dedupe_key)) == whole


@pytest.mark.parametrize(("day", "planned"), [
    (date(2026, 11, 1),  "pacs_reminder:2026-11"),   # the month's first Sunday
    (date(2026, 11, 8),  None),                      # the second Sunday
    (date(2026, 11, 2),  None),                      # a Monday
    (date(2027, 1, 3),   "pacs_reminder:2027-01"),
])  # fmt: skip
def test_pacs_reminder_once_a_month_at_log_time(day, planned):
    # Issue 19: a monthly nudge to answer the PACS, at log time on the month's first Sunday.
    nudges = of_kind(plan_for(window=day_window(day)), K.PACS_REMINDER)
    assert keys(nudges) == ([planned] if planned else [])
    if nudges:
        assert nudges[0].due_at == localtime.local_to_utc(day, time(20, 0), NY)
        assert TEMPLATES["pacs_reminder"][0] == "A few quick questions"
