"""Safety rules, one table per rule at each threshold's edge; tapers; settings; order-free, windowed input.

Days are given as "days ago" from TODAY (a Friday in New York, 21:00 local unless said otherwise).
`Member` builds histories; tests/domain/test_safety_scenarios.py uses it too.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.domain import localtime
from companion.domain.medications import Severity
from companion.domain.plans import CheckInStatus, Plan, PlanStep, dose_slots, is_tapering
from companion.domain.safety import (
    DEFAULT,
    LOOKBACK_DAYS,
    RULE_LOOKBACK_DAYS,
    RULES,
    SYMPTOM_RULES,
    BreathRecord,
    CravingRecord,
    DoseRecord,
    Finding,
    MemberHistory,
    MissedDay,
    PacsRecord,
    SafetySettings,
    SideEffectRecord,
    Tier,
    contraindication,
    craving_escalation,
    disengagement,
    disulfiram_with_drinking,
    dose_evidence,
    drink_log_evidence,
    escalating_side_effect,
    evaluate,
    kidney_stones_on_topiramate,
    liver_signs,
    lookback_days,
    opioid_use_on_naltrexone,
    persistent_side_effect,
    relapse_pattern,
    sedation_with_drinking,
    severe_side_effect,
    suicidal_thoughts,
    taper_in_progress,
    withdrawal_after_stop,
    withdrawal_risk,
)
from companion.domain.summary import DayLog

TODAY = date(2026, 11, 20)
NY, AUCKLAND, LONDON, KOLKATA = "America/New_York", "Pacific/Auckland", "Europe/London", "Asia/Kolkata"
MILD, MODERATE, SEVERE = Severity.MILD, Severity.MODERATE, Severity.SEVERE
TAKEN, SKIPPED = CheckInStatus.TAKEN, CheckInStatus.SKIPPED
TID = ("08:00", "14:00", "20:00")
#: Grams that are heavy for a woman (the builder's default sex): 56 g and over.
HEAVY, LIGHT = D("70"), D("20")


def _times(hhmm: Iterable[str]) -> tuple[time, ...]:
    return tuple(time.fromisoformat(x) for x in hhmm)


class Member:
    """A member's history, built entry by entry. Days are days ago (negative: in the future)."""

    def __init__(
        self,
        *,
        today: date = TODAY,
        zone: str = NY,
        at: str = "21:00",
        enrolled: int = 90,
        country: str = "US",
    ):
        self.today, self.zone, self.country = today, zone, country
        self.now = localtime.local_to_utc(today, time.fromisoformat(at), zone)
        self.enrolled_on: date | None = self.day(enrolled)
        self.last_entry_date: date | None = None
        self.plans: list[Plan] = []
        self.doses: list[DoseRecord] = []
        self.side_effects: list[SideEffectRecord] = []
        self.day_logs: list[DayLog] = []
        self.cravings: list[CravingRecord] = []
        self.breath: list[BreathRecord] = []
        self.pacs_records: list[PacsRecord] = []
        self._ids = itertools.count(1)

    def day(self, ago: int) -> date:
        return self.today - timedelta(days=ago)

    def uuid(self) -> UUID:
        return UUID(int=next(self._ids))

    def plan(
        self,
        medication: str,
        *hhmm: str,
        start: int = 60,
        end: int | None = None,
        dose: str = "10",
        steps: Iterable[tuple] = (),
    ) -> Plan:
        """A plan from `start` days ago to `end` days ago (None: open-ended); steps (days ago, mg, times)
        or (days ago, mg, times, True) for a step the coach marked `taper`."""
        plan = Plan(
            self.uuid(),
            medication,
            D(dose),
            _times(hhmm or ("08:00",)),
            self.day(start),
            None if end is None else self.day(end),
            tuple(PlanStep(self.day(ago), D(mg), _times(t), *taper) for ago, mg, t, *taper in steps),
        )
        self.plans.append(plan)
        return plan

    def take(
        self, plan: Plan, days: Iterable[int] | None = None, *, status: CheckInStatus = TAKEN, only: str = ""
    ) -> list[DoseRecord]:
        """Check in each slot up to now on `days` (default: every day of the last 60); `only` one time."""
        records = []
        for ago in range(60, -1, -1) if days is None else days:
            for slot in dose_slots(plan, self.day(ago), self.zone):
                if slot.scheduled_for <= self.now and only in ("", slot.local_time.strftime("%H:%M")):
                    records.append(
                        DoseRecord(self.uuid(), plan.id, slot.scheduled_for, status, slot.local_date)
                    )
        self.doses += records
        return records

    def skip(self, plan: Plan, days: Iterable[int], *, only: str = "") -> list[DoseRecord]:
        return self.take(plan, days, status=SKIPPED, only=only)

    def report(
        self,
        code: str,
        severity: Severity,
        ago: int,
        medication: str | Plan = "baclofen",
        *,
        at: str = "",
        entered: int | None = None,
    ) -> SideEffectRecord:
        """A side effect on the day's check-in of `medication` (the one at `at` if given), else on a
        check-in not in the history; `entered` days ago (default: not known, as if on its day)."""
        plan_id = medication.id if isinstance(medication, Plan) else None
        name = medication.medication if isinstance(medication, Plan) else medication
        day = self.day(ago)
        checkin = next(
            (
                d.id
                for d in self.doses
                if d.plan_id == plan_id
                and d.day == day
                and at in ("", d.scheduled_for.astimezone(ZoneInfo(self.zone)).strftime("%H:%M"))
            ),
            self.uuid(),
        )
        record = SideEffectRecord(
            next(self._ids),
            checkin,
            name,
            day,
            code,
            severity,
            None if entered is None else self.day(entered),
        )
        self.side_effects.append(record)
        return record

    def symptom(
        self, code: str, severity: Severity, ago: int, *, at: str = "12:00", entered: int | None = None
    ) -> SideEffectRecord:
        """A symptom reported on its own (POST /symptom-reports), at `at` local time `ago` days ago."""
        day = self.day(ago)
        instant = localtime.local_to_utc(day, time.fromisoformat(at), self.zone)
        record = SideEffectRecord(
            f"{self.uuid()}:{code}", None, "", day, code, severity,
            None if entered is None else self.day(entered), instant,
        )  # fmt: skip
        self.side_effects.append(record)
        return record

    def drink(self, ago: int, grams: D | str | int, heavy: bool | None = None) -> DayLog:
        log = DayLog(self.day(ago), D(grams), D(grams) >= 56 if heavy is None else heavy)
        self.day_logs.append(log)
        return log

    def drinks(self, days: Iterable[int], grams: D | str | int) -> None:
        for ago in days:
            self.drink(ago, grams)

    def crave(self, ago: int, *intensities: int) -> None:
        self.cravings += [CravingRecord(self.uuid(), self.day(ago), i) for i in intensities]

    def blow(self, ago: int, g_dl: str) -> BreathRecord:
        reading = BreathRecord(self.uuid(), self.day(ago), D(g_dl))
        self.breath.append(reading)
        return reading

    def pacs(self, weeks_ago: int, total: int) -> PacsRecord:
        """A PACS for the week starting on the Monday `weeks_ago` weeks before this week's."""
        monday = self.today - timedelta(days=self.today.weekday(), weeks=weeks_ago)
        record = PacsRecord(self.uuid(), monday, total)
        self.pacs_records.append(record)
        return record

    def build(self, **changes: object) -> MemberHistory:
        fields = {
            "now": self.now,
            "zone": self.zone,
            "country": self.country,
            "enrolled_on": self.enrolled_on,
            "last_entry_date": self.last_entry_date,
            "plans": tuple(self.plans),
            "doses": tuple(self.doses),
            "side_effects": tuple(self.side_effects),
            "day_logs": tuple(self.day_logs),
            "cravings": tuple(self.cravings),
            "breath": tuple(self.breath),
            "pacs": tuple(self.pacs_records),
        }
        return MemberHistory(**{**fields, **changes})  # type: ignore[arg-type]  # the fields' types vary; MemberHistory checks nothing at run time


def fires(finding: Finding | None) -> bool:
    return finding is not None


# The registry.


def test_rules_are_domain_md_s_table_in_order():
    assert [(r.name, r.version, r.tier) for r in RULES.values()] == [
        ("severe_side_effect", 1, Tier.URGENT),
        ("persistent_side_effect", 1, Tier.WARNING),
        ("escalating_side_effect", 1, Tier.WARNING),
        ("withdrawal_risk", 1, Tier.URGENT),
        ("sedation_with_drinking", 1, Tier.URGENT),
        ("disulfiram_with_drinking", 1, Tier.URGENT),
        ("liver_signs", 1, Tier.URGENT),
        ("contraindication", 1, Tier.URGENT),
        ("craving_escalation", 2, Tier.WARNING),  # version 2: the weekly PACS too (issue 19)
        ("relapse_pattern", 1, Tier.WARNING),
        ("disengagement", 1, Tier.INFO),
        ("withdrawal_after_stop", 2, Tier.URGENT),  # version 2: doses that stopped being taken (issue 19)
        ("suicidal_thoughts", 1, Tier.URGENT),
        ("opioid_use_on_naltrexone", 1, Tier.URGENT),
        ("kidney_stones_on_topiramate", 1, Tier.URGENT),
    ]


def test_lookback():
    # Rules that fire on one report read the whole backfill window (issue 19); withdrawal signs also
    # read the doses of the days before them.
    assert RULE_LOOKBACK_DAYS["withdrawal_risk"] == 63
    # A withdrawal sign up to 60 days back, 14 days after its plan ended.
    assert (
        LOOKBACK_DAYS == 74 == max(RULE_LOOKBACK_DAYS.values()) == RULE_LOOKBACK_DAYS["withdrawal_after_stop"]
    )
    assert RULE_LOOKBACK_DAYS["relapse_pattern"] == 21
    assert RULE_LOOKBACK_DAYS["severe_side_effect"] == RULE_LOOKBACK_DAYS["suicidal_thoughts"] == 60
    assert lookback_days(SafetySettings(report_backfill_days=70)) == 84


def test_tiers_are_ordered_and_spelled():
    assert Tier.INFO < Tier.WARNING < Tier.URGENT
    assert [t.label for t in Tier] == ["info", "warning", "urgent"]


def test_evaluate_runs_every_rule_in_registry_order():
    m = Member()
    m.report("nausea", SEVERE, 0, "naltrexone")
    m.drink(0, 30)
    m.plan("disulfiram")
    history = m.build(enrolled_on=m.day(30), last_entry_date=m.day(6))
    findings = evaluate(history)
    assert [f.rule for f in findings] == ["severe_side_effect", "disulfiram_with_drinking"]
    assert findings == [r.check(history, DEFAULT) for r in RULES.values() if r.check(history, DEFAULT)]


# Settings.


@pytest.mark.parametrize(("changes", "message"), [
    ({"recent_days": 0},                                   "recent_days must be at least 1"),
    ({"escalating_reports": 1},                            "escalating_reports must be at least 2"),
    ({"withdrawal_sign_days": -1},                         "withdrawal_sign_days must be at least 0"),
    ({"persistent_min_days": 6},                           "persistent_min_days must not exceed"),
    ({"relapse_heavy_days": 8},                            "relapse_heavy_days must not exceed"),
    ({"relapse_min_logged_days": 15},                      "relapse_min_logged_days must not exceed"),
    ({"missed_dose_grace": timedelta(hours=-1)},           "missed_dose_grace must not be negative"),
    ({"urgent_sla": timedelta(0)},                         "urgent_sla must be positive"),
])  # fmt: skip
def test_settings_refuse_nonsense(changes, message):
    with pytest.raises(ValueError, match=message):
        SafetySettings(**changes)


def test_default_settings_are_domain_md_s():
    s = DEFAULT
    assert (s.persistent_min_severity, s.persistent_min_days, s.persistent_window_days) == (MODERATE, 3, 5)
    assert s.escalating_reports == 3
    assert (s.withdrawal_missed_days, s.sedation_bac_g_dl) == (2, D("0.08"))
    assert (s.craving_recent_days, s.craving_high_mean, s.craving_min_rise, s.craving_baseline_days) == (
        3,
        7,
        2,
        7,
    )
    assert (s.relapse_heavy_days, s.relapse_window_days, s.relapse_free_days) == (3, 7, 14)
    assert (s.disengagement_days, s.urgent_sla) == (5, timedelta(hours=2))


# Input records.


def test_records_refuse_impossible_values():
    with pytest.raises(ValueError, match="craving"):
        CravingRecord(UUID(int=1), TODAY, 11)
    with pytest.raises(ValueError, match="breath"):
        BreathRecord(UUID(int=1), TODAY, D("0.501"))
    with pytest.raises(ValueError, match="breath"):
        BreathRecord(UUID(int=1), TODAY, D("-0.001"))
    m = Member()
    m.drink(1, 0)
    m.drink(1, 10)
    with pytest.raises(ValueError, match="two drink logs"):
        m.build()
    with pytest.raises(ValueError, match="aware"):
        Member().build(now=datetime(2026, 11, 20, 21, 0))


@pytest.mark.parametrize(("zone", "now", "today"), [
    (NY,       datetime(2026, 11, 21, 4, 59, tzinfo=UTC),  date(2026, 11, 20)),
    (NY,       datetime(2026, 11, 21, 5, 0, tzinfo=UTC),   date(2026, 11, 21)),
    (AUCKLAND, datetime(2026, 11, 19, 10, 59, tzinfo=UTC), date(2026, 11, 19)),
    (AUCKLAND, datetime(2026, 11, 19, 11, 0, tzinfo=UTC),  date(2026, 11, 20)),   # NZDT, UTC+13
])  # fmt: skip
def test_today_is_the_member_s_local_date(zone, now, today):
    assert MemberHistory(now=now, zone=zone).today == today


def test_evidence_ids():
    plan_id = UUID(int=7)
    assert drink_log_evidence(date(2026, 3, 8)) == "drink_log:2026-03-08"
    assert dose_evidence(plan_id, datetime(2026, 3, 8, 3, 30, tzinfo=ZoneInfo(NY))) == (
        f"dose:{plan_id}:2026-03-08T07:30:00+00:00"
    )
    assert DoseRecord(plan_id, plan_id, Member().now, TAKEN, TODAY).evidence_id == f"checkin:{plan_id}"
    assert CravingRecord(plan_id, TODAY, 3).evidence_id == f"craving:{plan_id}"
    assert BreathRecord(plan_id, TODAY, D("0")).evidence_id == f"breath:{plan_id}"
    assert SideEffectRecord(12, plan_id, "baclofen", TODAY, "nausea", MILD).evidence_id == "side_effect:12"


# Severe side effect.


@pytest.mark.parametrize(("severity", "ago", "code", "fired"), [
    (SEVERE,    0,  "nausea", True),
    (SEVERE,    13, "nausea", True),
    (SEVERE,    20, "nausea", True),    # a late report: the backfill window, not the last 14 days
    (SEVERE,    59, "nausea", True),    # the 60th local day back, today included
    (SEVERE,    60, "nausea", False),
    (SEVERE,    -1, "nausea", False),   # a date after today is not in any window
    (MODERATE,  0,  "nausea", False),
    (SEVERE,    0,  "other",  True),    # whatever it is, severe is severe
])  # fmt: skip
def test_severe_side_effect(severity, ago, code, fired):
    m = Member()
    report = m.report(code, severity, ago, "naltrexone")
    finding = severe_side_effect(m.build())
    assert fires(finding) is fired
    if finding:
        assert finding.evidence == (report.evidence_id,)
        assert finding.first_seen == finding.last_seen == m.day(ago)
        assert finding.tier == Tier.URGENT and finding.key == ""


def test_severe_side_effect_summary_names_symptoms_and_medications():
    m = Member()
    m.report("nausea", SEVERE, 3, "naltrexone")
    m.report("nausea", SEVERE, 2, "baclofen")
    m.report("dizziness", SEVERE, 1, "baclofen")
    m.report("headache", MODERATE, 0, "baclofen")
    finding = severe_side_effect(m.build())
    assert finding.summary == (
        "Severe side effect reported: Dizziness (Baclofen); Nausea (Baclofen, Naltrexone); "
        "latest on 2026-11-19."
    )
    assert (finding.first_seen, finding.last_seen, len(finding.evidence)) == (m.day(3), m.day(1), 3)
    assert (finding.symptoms, finding.medications) == (("dizziness", "nausea"), ("baclofen", "naltrexone"))


# Persistent side effect.


@pytest.mark.parametrize(("reports", "fired"), [
    ([(0, MODERATE), (1, MODERATE), (2, MODERATE)],    True),
    ([(0, MODERATE), (2, MODERATE), (4, MODERATE)],    True),    # 3 of the last 5 days
    ([(0, MODERATE), (2, MODERATE), (5, MODERATE)],    False),   # the 6th day back is outside
    ([(0, MODERATE), (0, MODERATE), (1, MODERATE)],    False),   # 3 reports on 2 days
    ([(0, MILD), (1, MILD), (2, MILD), (3, MILD)],     False),   # mild never counts
    ([(0, MILD), (1, MODERATE), (2, SEVERE), (3, MODERATE)], True),
    ([(0, MODERATE), (1, MILD), (2, MODERATE)],        False),
])  # fmt: skip
def test_persistent_side_effect(reports, fired):
    m = Member()
    records = [m.report("drowsiness", severity, ago) for ago, severity in reports]
    finding = persistent_side_effect(m.build())
    assert fires(finding) is fired
    if finding:
        counted = sorted(r.evidence_id for r in records if r.severity >= MODERATE)
        assert finding.evidence == tuple(counted)


def test_persistent_side_effect_is_per_symptom_and_never_other():
    m = Member()
    for ago, code in [(0, "nausea"), (1, "headache"), (2, "nausea")]:
        m.report(code, MODERATE, ago, "naltrexone")
    for ago in (0, 1, 2):
        m.report("other", SEVERE, ago)
    assert persistent_side_effect(m.build()) is None
    m.report("nausea", MODERATE, 4, "baclofen")  # the same symptom on another medication still counts
    finding = persistent_side_effect(m.build())
    assert finding.summary == (
        "Side effect moderate or worse, persisting: Nausea (Baclofen, Naltrexone) on 3 of the last 5 days."
    )
    assert finding.tier == Tier.WARNING


def test_persistent_side_effect_thresholds_are_settings():
    m = Member()
    for ago in (0, 1):
        m.report("drowsiness", MILD, ago)
    assert persistent_side_effect(m.build()) is None
    assert persistent_side_effect(
        m.build(), SafetySettings(persistent_min_severity=MILD, persistent_min_days=2)
    )


# Escalating side effect.


@pytest.mark.parametrize(("levels", "fired", "cited"), [
    ((MILD, MODERATE, SEVERE),          True,   3),
    ((MILD, MODERATE, MODERATE),        True,   3),
    ((MILD, MILD, MODERATE),            True,   3),
    ((MODERATE, MODERATE, MODERATE),    False,  0),   # steady
    ((MILD, MODERATE),                  False,  0),   # two reports are not three
    ((MODERATE, MILD, SEVERE),          False,  0),   # it fell on the way
    ((SEVERE, MODERATE, MILD),          False,  0),
    ((SEVERE, MILD, MODERATE, MODERATE), True,  3),   # the last three rise; the severe one is not cited
    ((MILD, MODERATE, SEVERE, SEVERE),  True,   4),   # two rising triples overlap
])  # fmt: skip
def test_escalating_side_effect(levels, fired, cited):
    m = Member()
    n = len(levels)
    for ago, severity in zip(range(n - 1, -1, -1), levels, strict=True):
        m.report("headache", severity, ago, "naltrexone")
    finding = escalating_side_effect(m.build())
    assert fires(finding) is fired
    assert len(finding.evidence if finding else ()) == cited


def test_escalating_side_effect_window():
    m = Member()
    for ago, severity in [(14, MILD), (1, MODERATE), (0, SEVERE)]:
        m.report("headache", severity, ago, "naltrexone")
    assert escalating_side_effect(m.build()) is None
    assert escalating_side_effect(m.build(), SafetySettings(escalating_window_days=15))


@pytest.mark.parametrize(("morning", "evening", "fired"), [
    (MODERATE,  MILD,       False),   # by slot time: moderate 08:00, mild 20:00, severe: it fell
    (MILD,      MODERATE,   True),
])  # fmt: skip
def test_escalating_side_effect_orders_one_day_s_reports_by_slot_not_by_id(morning, evening, fired):
    m = Member()
    plan = m.plan("baclofen", "08:00", "20:00")
    m.take(plan)
    m.report("nausea", evening, 1, plan, at="20:00")  # reported first (smaller id), for the later slot
    m.report("nausea", morning, 1, plan, at="08:00")
    m.report("nausea", SEVERE, 0, plan, at="08:00")
    assert fires(escalating_side_effect(m.build())) is fired


def test_escalating_side_effect_without_its_check_in_comes_last_in_its_day():
    m = Member()
    plan = m.plan("baclofen", "08:00", "20:00")
    m.take(plan)
    m.report("nausea", MILD, 1, plan, at="20:00")
    m.report("nausea", MODERATE, 1, "baclofen")  # check-in not loaded: after the day's known slots
    m.report("nausea", MODERATE, 0, plan, at="08:00")
    finding = escalating_side_effect(m.build())
    assert (
        finding.summary == "Side effect getting worse over 3 reports: Nausea (Baclofen) rising to moderate."
    )


# Tapers.

_START = date(2026, 10, 1)


def _plan(*steps: tuple[int, str], end: date | None = None, times: int = 3) -> Plan:
    """Baclofen from _START at 20 mg x `times`; steps are (days after _START, mg per dose)."""
    hhmm = _times(TID[:times])
    return Plan(
        UUID(int=1), "baclofen", D("20"), hhmm, _START, end,
        tuple(PlanStep(_START + timedelta(days=n), D(mg), hhmm) for n, mg in steps),
    )  # fmt: skip


_TAPER = _plan((29, "10"), (32, "5"), end=date(2026, 11, 8))  # 60 -> 30 -> 15 mg/day, Oct 30 and Nov 2
_CUT = _plan((9, "10"))  # 60 -> 30 mg/day from Oct 10, for good
_TITRATE = _plan((3, "25"), (6, "30"))
_UP_DOWN = _plan((9, "30"), (20, "15"), (25, "25"), end=date(2026, 11, 30))  # down, then up again
_DOWN_UP_DOWN = _plan((9, "10"), (20, "30"), (40, "20"), (45, "10"), end=date(2026, 11, 30))
_END_NO_TAPER = _plan(end=date(2026, 11, 8))
# The review's history: 20 -> 15 mg a dose on Oct 31 on a plan that ends months later: a reduction.
_REDUCED_LONG_BEFORE_THE_END = _plan((30, "15"), end=date(2027, 3, 31))
# The same lowering, 28 and 29 days before the end (both days counted).
_LOWERED_28_DAYS_BEFORE_THE_END = _plan((30, "15"), end=date(2026, 11, 27))
_LOWERED_29_DAYS_BEFORE_THE_END = _plan((30, "15"), end=date(2026, 11, 28))
# A coach-marked taper on an open-ended plan: marked steps are tapering, the unmarked one after is not.
_MARKED = dataclasses.replace(
    _CUT,
    steps=(
        PlanStep(date(2026, 10, 10), D("15"), _times(TID), taper=True),
        PlanStep(date(2026, 10, 17), D("10"), _times(TID), taper=True),
        PlanStep(date(2026, 10, 24), D("10"), _times(TID[:2])),
    ),
)


@pytest.mark.parametrize(("plan", "day", "tapering", "old"), [
    # A planned taper runs from its first lower step to the end; the full-dose days before it do not.
    (_TAPER,          date(2026, 10, 26),  False,  True),
    (_TAPER,          date(2026, 10, 29),  False,  True),
    (_TAPER,          date(2026, 10, 30),  True,   True),
    (_TAPER,          date(2026, 11, 8),   True,   True),
    (_TAPER,          date(2026, 11, 9),   False,  False),   # plan over
    (_TAPER,          date(2026, 9, 30),   False,  False),   # not begun
    # A permanent cut is a dose reduction, never a taper.
    (_CUT,            date(2026, 10, 9),   False,  False),
    (_CUT,            date(2026, 10, 10),  False,  True),
    (_CUT,            date(2026, 10, 23),  False,  True),
    (_CUT,            date(2027, 6, 1),    False,  True),
    (_TITRATE,        date(2026, 10, 8),   False,  False),
    (_END_NO_TAPER,   date(2026, 11, 8),   False,  False),   # an end date alone is an abrupt stop
    # Down on Oct 10, down on Oct 21, up on Oct 26 (above the step before): the final descent is none.
    (_UP_DOWN,        date(2026, 10, 22),  False,  True),
    (_UP_DOWN,        date(2026, 10, 26),  False,  False),
    (_UP_DOWN,        date(2026, 11, 20),  False,  True),
    # Cut Oct 10, raised Oct 21, then a planned taper from Nov 10 to the end (21 days).
    (_DOWN_UP_DOWN,   date(2026, 10, 22),  False,  False),
    (_DOWN_UP_DOWN,   date(2026, 11, 9),   False,  False),
    (_DOWN_UP_DOWN,   date(2026, 11, 10),  True,   True),
    (_DOWN_UP_DOWN,   date(2026, 11, 30),  True,   True),
    (_REDUCED_LONG_BEFORE_THE_END, date(2026, 11, 20), False, True),
    (_REDUCED_LONG_BEFORE_THE_END, date(2027, 3, 31),  False, True),
    (_LOWERED_28_DAYS_BEFORE_THE_END, date(2026, 10, 31), True, True),
    (_LOWERED_29_DAYS_BEFORE_THE_END, date(2026, 10, 31), False, True),
    (_MARKED,         date(2026, 10, 9),   False,  False),
    (_MARKED,         date(2026, 10, 10),  True,   True),
    (_MARKED,         date(2026, 10, 23),  True,   True),
    (_MARKED,         date(2026, 10, 24),  False,  True),   # the step after is not marked
])  # fmt: skip
def test_taper_in_progress(plan, day, tapering, old):
    assert taper_in_progress(plan, day) is tapering
    assert is_tapering(plan, day) is old  # plans.is_tapering, unchanged, for comparison


def test_taper_final_days_is_a_setting():
    assert taper_in_progress(_LOWERED_29_DAYS_BEFORE_THE_END, date(2026, 10, 31), final_days=29) is True
    assert taper_in_progress(_TAPER, date(2026, 10, 30), final_days=9) is False  # Oct 30 to Nov 8: 10 days
    with pytest.raises(ValueError, match="taper_final_days"):
        SafetySettings(taper_final_days=0)


# Withdrawal risk.


def _baclofen(m: Member, *hhmm: str, **kwargs) -> Plan:
    return m.plan("baclofen", *(hhmm or TID), **kwargs)


@pytest.mark.parametrize(("taken_days", "skipped", "at", "fired", "missed_days"), [
    (range(0, 61),        (),      "21:00", False, 0),
    (range(2, 61),        (),      "21:00", True,  2),   # none since 2 days ago: yesterday and today
    (range(2, 61),        (),      "10:59", False, 0),   # today's 08:00 is not 3 h late yet: one day
    (range(2, 61),        (),      "11:00", True,  2),   # now it is
    (range(1, 61),        (),      "11:00", False, 0),   # today alone
    (range(3, 61),        (),      "10:59", True,  2),
    ((*range(3, 61), 1),  (),      "10:00", False, 0),   # missed 2 days ago only
    ((*range(3, 61), 0),  (1, 2),  "21:00", True,  2),   # skipped counts as missed
    (range(9, 61),        (),      "21:00", True,  7),   # a week without: the 7-day window
])  # fmt: skip
def test_withdrawal_missed_days(taken_days, skipped, at, fired, missed_days):
    m = Member(at=at)
    plan = _baclofen(m)
    m.take(plan, taken_days)
    skips = m.skip(plan, skipped)
    finding = withdrawal_risk(m.build())
    assert fires(finding) is fired
    if finding:
        assert len(set(finding.evidence)) == len(finding.evidence)
        assert finding.last_seen - finding.first_seen == timedelta(days=missed_days - 1)
        assert {s.evidence_id for s in skips} <= set(finding.evidence)
        assert finding.tier == Tier.URGENT


def test_withdrawal_cites_unanswered_slots_and_skipped_check_ins():
    m = Member(at="10:00")
    plan = _baclofen(m, "08:00", "20:00")
    m.take(plan, range(2, 61))
    skipped = m.skip(plan, [2], only="20:00")  # an earlier check-in for the same slot is superseded
    m.doses = [d for d in m.doses if d.scheduled_for != skipped[0].scheduled_for or d.status == SKIPPED]
    finding = withdrawal_risk(m.build())
    late = m.now - timedelta(hours=3)  # today's 08:00 is 2 h past: not missed yet, not cited
    slots = [s for ago in (1, 0) for s in dose_slots(plan, m.day(ago), NY) if s.scheduled_for <= late]
    assert finding.evidence == tuple(
        sorted([skipped[0].evidence_id, *(dose_evidence(plan.id, s.scheduled_for) for s in slots)])
    )
    assert (finding.first_seen, finding.last_seen) == (m.day(2), m.day(1))
    assert (
        finding.summary
        == "Baclofen doses missed on 2 days running (2026-11-18 to 2026-11-19), not during a taper."
    )


def test_a_taken_check_in_wins_over_a_stray_skipped_one_for_the_same_slot():
    m = Member()
    plan = _baclofen(m, "08:00")
    m.take(plan)
    m.skip(plan, [1, 2])  # duplicates of taken slots: one check-in per slot is the record, taken wins
    assert withdrawal_risk(m.build()) is None


@pytest.mark.parametrize(("rule", "fired"), [(MissedDay.ANY_DOSE, True), (MissedDay.EVERY_DOSE, False)])
def test_withdrawal_one_missed_dose_a_day(rule, fired):
    m = Member()
    plan = _baclofen(m)
    m.take(plan, range(3, 61))
    for ago in (2, 1, 0):
        m.take(plan, [ago], only="08:00")
        m.take(plan, [ago], only="20:00")
    assert fires(withdrawal_risk(m.build(), SafetySettings(withdrawal_missed_day=rule))) is fired


def test_withdrawal_every_dose_counts_only_due_doses():
    m = Member(at="11:00")  # today's 08:00 is due and missed, 14:00 and 20:00 are not due yet
    plan = _baclofen(m)
    m.take(plan, range(2, 61))
    assert withdrawal_risk(m.build(), SafetySettings(withdrawal_missed_day=MissedDay.EVERY_DOSE))


@pytest.mark.parametrize(("medication", "fired"), [
    ("baclofen", True), ("gabapentin", True), ("naltrexone", False), ("acamprosate", False),
    ("topiramate", False), ("disulfiram", False),
])  # fmt: skip
def test_withdrawal_medications(medication, fired):
    m = Member()
    plan = m.plan(medication, "08:00", "20:00")
    m.take(plan, range(2, 61))
    assert fires(withdrawal_risk(m.build())) is fired


@pytest.mark.parametrize(("plan_kwargs", "taken_days", "fired"), [
    ({"end": 3},                                                  range(4, 61),  False),  # ended: no slots
    ({"end": 1},                                                  range(3, 61),  False),  # ended yesterday
    ({"end": 0},                                                  range(3, 61),  True),   # ends today
    ({"start": 0},                                                (),            False),  # new: 1 day
    ({"start": 1},                                                (),            True),
    ({"end": 5, "steps": [(20, "5", ("08:00",))]},                range(3, 61),  False),  # planned taper
    ({"steps": [(10, "5", ("08:00", "20:00"))]},                  range(3, 61),  True),   # a cut, not a taper
    ({"steps": [(10, "5", ("08:00", "20:00"), True)]},            range(3, 61),  False),  # marked taper
    ({"end": -200, "steps": [(20, "5", ("08:00",))]},             range(3, 61),  True),   # end far off
    ({"steps": [(10, "15", ("08:00", "20:00"))]},                 range(3, 61),  True),   # titration
])  # fmt: skip
def test_withdrawal_plan_in_force_and_tapers(plan_kwargs, taken_days, fired):
    m = Member()
    plan = _baclofen(m, "08:00", "20:00", **plan_kwargs)
    m.take(plan, taken_days)
    assert fires(withdrawal_risk(m.build())) is fired


def test_withdrawal_pools_one_medication_s_plans():
    # One plan ends 2 days ago, the next starts yesterday: missing the last dose of one and the first
    # doses of the other is two missed days of baclofen.
    m = Member()
    old = _baclofen(m, "08:00", end=2)
    new = _baclofen(m, "09:00", start=1)
    m.take(old, range(3, 61))
    assert withdrawal_risk(m.build())
    m.take(new)
    assert withdrawal_risk(m.build()) is None


def test_withdrawal_missed_days_must_be_consecutive_and_recent():
    m = Member()
    plan = _baclofen(m, "08:00")
    m.take(plan, [*range(9, 61), 6, 4, 2, 0])  # missed days 8, 7 (outside the week), 5, 3, 1
    assert withdrawal_risk(m.build()) is None
    assert withdrawal_risk(m.build(), SafetySettings(withdrawal_window_days=9))
    assert withdrawal_risk(m.build(), SafetySettings(withdrawal_missed_days=1))


@pytest.mark.parametrize(("code", "sign_ago", "missed_ago", "fired"), [
    ("hallucinations", 0, 0, True),
    ("hallucinations", 0, 3, True),
    ("hallucinations", 0, 4, False),   # missed dose too long before
    ("hallucinations", 3, 0, False),   # the dose was missed after the sign
    ("seizure",        6, 7, True),
    ("seizure",        20, 21, True),  # a late report: signs are read over the backfill window
    ("seizure",        59, 59, True),  # sign on the window's first day
    ("seizure",        60, 60, False), # sign outside the window
    ("confusion",      1, 2, True),
    ("agitation",      1, 2, True),
    ("drowsiness",     1, 2, False),   # not a withdrawal sign
    ("hallucinations", 1, None, False),
])  # fmt: skip
def test_withdrawal_signs_after_missed_doses(code, sign_ago, missed_ago, fired):
    m = Member()
    plan = _baclofen(m, "08:00")
    m.take(plan, [d for d in range(61) if d != missed_ago])
    sign = m.report(code, MODERATE, sign_ago, plan)
    finding = withdrawal_risk(m.build())
    assert fires(finding) is fired
    if finding:
        assert sign.evidence_id in finding.evidence
        assert finding.summary.endswith(f"reported after missed Baclofen doses; latest on {m.day(sign_ago)}.")


def test_withdrawal_signs_count_during_a_taper_and_combine_with_missed_days():
    m = Member()
    plan = _baclofen(m, "08:00", "20:00", end=-5, steps=[(10, "5", ("08:00", "20:00"))])
    m.take(plan, range(3, 61))
    m.skip(plan, [2, 1, 0])
    m.report("confusion", MODERATE, 0, plan)
    finding = withdrawal_risk(m.build())
    assert finding.summary == "Confusion reported after missed Baclofen doses; latest on 2026-11-20."
    m2 = Member()
    plan2 = _baclofen(m2, "08:00")
    m2.take(plan2, range(3, 61))
    m2.report("hallucinations", SEVERE, 0, "baclofen")
    finding2 = withdrawal_risk(m2.build())
    assert (finding2.symptoms, finding2.medications) == (("hallucinations",), ("baclofen",))
    assert finding2.summary == (
        "Baclofen doses missed on 3 days running (2026-11-18 to 2026-11-20), not during a taper. "
        "Seeing or hearing things that are not there reported after missed Baclofen doses; "
        "latest on 2026-11-20."
    )


# Sedation with drinking.


@pytest.mark.parametrize(("code", "medication", "drink", "bac", "fired"), [
    ("drowsiness",  "baclofen",    HEAVY,  None,     True),
    ("dizziness",   "gabapentin",  HEAVY,  None,     True),
    ("confusion",   "baclofen",    HEAVY,  None,     True),
    ("drowsiness",  "baclofen",    LIGHT,  None,     False),
    ("drowsiness",  "baclofen",    None,   "0.080",  True),
    ("drowsiness",  "baclofen",    LIGHT,  "0.079",  False),
    ("drowsiness",  "baclofen",    None,   "0.250",  True),
    ("nausea",      "baclofen",    HEAVY,  "0.200",  False),   # not a sedation sign
    ("drowsiness",  "disulfiram",  HEAVY,  None,     False),   # not a sedating medication
])  # fmt: skip
def test_sedation_with_drinking(code, medication, drink, bac, fired):
    m = Member()
    report = m.report(code, MILD, 2, medication)
    if drink is not None:
        m.drink(2, drink)
    reading = m.blow(2, bac) if bac else None
    finding = sedation_with_drinking(m.build())
    assert fires(finding) is fired
    if finding:
        expected = {report.evidence_id}
        expected |= {drink_log_evidence(m.day(2))} if drink == HEAVY else set()
        expected |= {reading.evidence_id} if reading else set()
        assert set(finding.evidence) == expected
        assert finding.first_seen == finding.last_seen == m.day(2)


def test_sedation_while_a_sedating_plan_is_in_force():
    m = Member()
    m.report("dizziness", MODERATE, 1, "naltrexone")
    m.drink(1, 80)
    assert sedation_with_drinking(m.build()) is None
    m.plan("gabapentin", end=1)  # in force that day, even though it has ended since
    finding = sedation_with_drinking(m.build())
    assert (
        finding.summary
        == "Dizziness reported on 1 day with heavy drinking, while on Gabapentin; latest on 2026-11-19."
    )
    assert (finding.symptoms, finding.medications) == (("dizziness",), ("gabapentin",))
    m.report("drowsiness", MILD, 0, "baclofen")
    m.blow(0, "0.09")
    assert sedation_with_drinking(m.build()).summary == (
        "Dizziness, Drowsiness reported on 2 days with heavy drinking or breath alcohol of 0.080 g/dL "
        "or more, while on Baclofen, Gabapentin; latest on 2026-11-20."
    )


@pytest.mark.parametrize(
    ("report_ago", "drink_ago", "fired"), [(0, 0, True), (0, 1, False), (13, 13, True), (14, 14, False)]
)
def test_sedation_needs_the_same_local_day(report_ago, drink_ago, fired):
    m = Member()
    m.report("drowsiness", MILD, report_ago)
    m.drink(drink_ago, HEAVY)
    assert fires(sedation_with_drinking(m.build())) is fired


def test_sedation_bac_threshold_is_a_setting():
    m = Member()
    m.report("drowsiness", MILD, 0)
    m.blow(0, "0.05")
    assert sedation_with_drinking(m.build()) is None
    assert sedation_with_drinking(m.build(), SafetySettings(sedation_bac_g_dl=D("0.05")))


# Disulfiram with drinking.


@pytest.mark.parametrize(("grams", "drink_ago", "plan_kwargs", "fired"), [
    ("14",    0,   {},                      True),
    ("0.01",  0,   {},                      True),    # any drink
    ("0",     0,   {},                      False),   # an alcohol-free day logged
    ("14",    13,  {},                      True),
    ("14",    14,  {},                      False),
    ("14",    5,   {"end": 6},              False),   # the plan had ended
    ("14",    5,   {"start": 4},            False),   # not yet begun
    ("14",    5,   {"start": 5, "end": 5},  True),
])  # fmt: skip
def test_disulfiram_with_drinking(grams, drink_ago, plan_kwargs, fired):
    m = Member()
    m.plan("disulfiram", **plan_kwargs)
    m.drink(drink_ago, grams)
    finding = disulfiram_with_drinking(m.build())
    assert fires(finding) is fired
    if finding:
        assert finding.evidence == (drink_log_evidence(m.day(drink_ago)),)


def test_disulfiram_summary_in_the_member_s_standard_drinks():
    m = Member(country="GB")
    m.plan("disulfiram")
    m.drink(3, 16)
    m.drink(1, 0)
    m.drink(0, 8)
    finding = disulfiram_with_drinking(m.build())
    assert (
        finding.summary
        == "Drinking logged on 2 days while on Disulfiram (3.0 standard drinks in all); latest on 2026-11-20."
    )
    assert (finding.first_seen, finding.last_seen) == (m.day(3), m.day(0))
    assert (finding.symptoms, finding.medications) == ((), ("disulfiram",))


def test_disulfiram_ignores_other_medications():
    m = Member()
    m.plan("naltrexone")
    m.drink(0, 100)
    assert disulfiram_with_drinking(m.build()) is None


# Liver signs and contraindications.


@pytest.mark.parametrize(("code", "medication", "plan", "fired"), [
    ("dark_urine",      "naltrexone",   None,           True),
    ("jaundice",        "disulfiram",   None,           True),
    ("abdominal_pain",  "naltrexone",   None,           True),
    ("abdominal_pain",  "other_med",    "disulfiram",   True),    # while a disulfiram plan is in force
    ("abdominal_pain",  "acamprosate",  "baclofen",     False),
    ("nausea",          "naltrexone",   None,           False),
])  # fmt: skip
def test_liver_signs(code, medication, plan, fired):
    m = Member()
    if plan:
        m.plan(plan)
    m.report(code, MILD, 1, medication)
    finding = liver_signs(m.build())
    assert fires(finding) is fired


# Issue 19: late reports, and the dangers that raised nothing.


def test_a_late_report_says_so():
    m = Member()
    plan = m.plan("baclofen", *TID)
    m.take(plan)
    m.report("seizure", SEVERE, 20, plan, entered=0)
    m.report("nausea", SEVERE, 1, plan, entered=0)  # entered the next day: not late
    finding = severe_side_effect(m.build())
    assert finding.first_seen == m.day(20) and len(finding.evidence) == 2
    assert finding.summary.endswith(
        "latest on 2026-11-19. Reported late: Seizure of 2026-10-31 entered on 2026-11-20."
    )
    assert "Reported late" not in severe_side_effect(m.build(), SafetySettings(late_report_days=30)).summary


@pytest.mark.parametrize(("medication", "severity", "ago", "fired"), [
    ("acamprosate", MILD,     0,  True),    # any severity
    ("naltrexone",  MILD,     30, True),    # any medication; a late report counts
    ("baclofen",    MODERATE, 59, True),
    ("baclofen",    SEVERE,   60, False),   # outside the backfill window
])  # fmt: skip
def test_suicidal_thoughts_any_severity_any_medication(medication, severity, ago, fired):
    m = Member()
    m.report("suicidal_thoughts", severity, ago, medication)
    finding = suicidal_thoughts(m.build())
    assert fires(finding) is fired
    if finding:
        assert finding.tier == Tier.URGENT and finding.medications == (medication,)
        assert finding.cites_symptoms and finding.symptoms == ("suicidal_thoughts",)


def test_suicidal_thoughts_on_no_medication():
    m = Member()
    m.report("suicidal_thoughts", MILD, 0, "")  # a report with no medication (a symptom report)
    finding = suicidal_thoughts(m.build())
    assert finding.summary == "Thoughts of suicide or self-harm reported; latest on 2026-11-20."
    assert finding.medications == ()


@pytest.mark.parametrize(("check", "code", "medication", "fired"), [
    (opioid_use_on_naltrexone,     "opioid_use",    "naltrexone",  True),
    (opioid_use_on_naltrexone,     "opioid_use",    "acamprosate", False),
    (opioid_use_on_naltrexone,     "nausea",        "naltrexone",  False),
    (kidney_stones_on_topiramate,  "kidney_stones", "topiramate",  True),
    (kidney_stones_on_topiramate,  "kidney_stones", "baclofen",    False),
])  # fmt: skip
def test_opioid_use_and_kidney_stones(check, code, medication, fired):
    m = Member()
    m.report(code, MILD, 40, medication)
    assert fires(check(m.build())) is fired


def test_opioid_use_while_a_naltrexone_plan_is_in_force():
    m = Member()
    m.plan("naltrexone", "08:00", start=10)
    m.report("opioid_use", MILD, 2, "")  # reported on no check-in: the plan in force counts
    finding = opioid_use_on_naltrexone(m.build())
    assert finding.medications == ("naltrexone",) and finding.summary.startswith("Opioid use: Used an opioid")


@pytest.mark.parametrize(("g_dl", "fired"), [("0.020", False), ("0.021", True), ("0.150", True)])
def test_disulfiram_fires_on_a_breath_reading_without_a_drink_log(g_dl, fired):
    m = Member()
    m.plan("disulfiram", "08:00", start=30)
    reading = m.blow(3, g_dl)
    finding = disulfiram_with_drinking(m.build())
    assert fires(finding) is fired
    if finding:
        assert finding.evidence == (reading.evidence_id,)
        assert finding.summary == (
            f"Breath alcohol above 0.020 g/dL on 1 day while on Disulfiram (up to {g_dl} g/dL); "
            "latest on 2026-11-17."
        )
    assert fires(disulfiram_with_drinking(m.build(), SafetySettings(disulfiram_bac_g_dl=D("0.2")))) is False


def test_disulfiram_breath_off_the_plan_is_not_the_rule_s():
    m = Member()
    m.plan("disulfiram", "08:00", start=2)
    m.blow(3, "0.09")  # the day before the plan
    assert disulfiram_with_drinking(m.build()) is None


def test_symptom_rules_are_marked():
    assert {
        "severe_side_effect", "persistent_side_effect", "escalating_side_effect", "withdrawal_risk",
        "sedation_with_drinking", "liver_signs", "contraindication", "suicidal_thoughts",
        "opioid_use_on_naltrexone", "kidney_stones_on_topiramate", "withdrawal_after_stop",
    } == SYMPTOM_RULES  # fmt: skip
    m = Member()
    plan = m.plan("baclofen", "08:00")
    m.take(plan, range(3, 61))  # two days missed, no sign: a withdrawal finding without symptoms
    assert not withdrawal_risk(m.build()).cites_symptoms


def test_liver_signs_summary():
    m = Member()
    m.report("jaundice", MILD, 2, "disulfiram")
    m.report("dark_urine", MODERATE, 1, "naltrexone")
    assert liver_signs(m.build()).summary == (
        "Liver injury signs: Dark urine, Yellow skin or eyes, while on Disulfiram, Naltrexone; "
        "latest on 2026-11-19."
    )
    assert liver_signs(m.build()).symptoms == ("dark_urine", "jaundice")


@pytest.mark.parametrize(("code", "medication", "ago", "fired"), [
    ("pregnancy",        "baclofen",     0,   True),
    ("kidney_problems",  "gabapentin",   0,   True),
    ("pregnancy",        "acamprosate",  13,  True),
    ("pregnancy",        "acamprosate",  59,  True),
    ("pregnancy",        "acamprosate",  60,  False),
    ("pregnancy",        "naltrexone",   0,   False),
    ("suicidal_thoughts", "acamprosate", 0,   False),   # not a rule of DOMAIN.md's table
])  # fmt: skip
def test_contraindication(code, medication, ago, fired):
    m = Member()
    m.report(code, MILD, ago, medication)
    finding = contraindication(m.build())
    assert fires(finding) is fired
    if finding:
        assert finding.tier == Tier.URGENT


# Craving escalation.


@pytest.mark.parametrize(("recent", "baseline", "fired"), [
    ({0: [7], 1: [7], 2: [7]},    {3: [5], 9: [5]},             True),    # 7, 2 above 5: both edges
    ({0: [7], 1: [7], 2: [6]},    {5: [4]},                     False),   # mean 6.67
    ({0: [7, 7], 1: [7]},         {3: [5], 4: [6]},             False),   # 7 is 1.5 above 5.5
    ({0: [8], 1: [8], 2: [7]},    {3: [6], 4: [6], 5: [5]},     True),    # 23/3 - 17/3 = 2, exactly
    ({0: [8], 1: [8], 2: [7]},    {3: [6], 4: [6], 5: [6]},     False),   # 5/3
    ({0: [10]},                   {9: [1]},                     True),    # one rating each is a mean
    ({0: [10]},                   {10: [1]},                    False),   # baseline outside: no baseline
    ({0: [9], 3: [9]},            {},                           False),   # day 3 is the baseline's
    ({},                          {3: [1]},                     False),
    ({2: [9], -1: [9]},           {3: [1]},                     True),    # a future rating is ignored
])  # fmt: skip
def test_craving_escalation(recent, baseline, fired):
    m = Member()
    for ago, values in [*recent.items(), *baseline.items()]:
        m.crave(ago, *values)
    finding = craving_escalation(m.build())
    assert fires(finding) is fired
    if finding:
        cited = [c for c in m.cravings if 0 <= (TODAY - c.day).days <= 2]
        assert finding.evidence == tuple(sorted(c.evidence_id for c in cited))


def test_craving_escalation_summary():
    m = Member()
    m.crave(0, 9, 8)
    m.crave(3, 5, 6)
    assert craving_escalation(m.build()).summary == (
        "Craving averaged 8.5 over the last 3 days, up from 5.5 over the 7 days before."
    )


# Relapse pattern.


@pytest.mark.parametrize(("heavy", "light", "fired"), [
    ({0, 1, 2},      set(range(3, 17)),      True),
    ({0, 1},         set(range(2, 17)),      False),   # two heavy days
    ({0, 3, 6},      set(range(7, 21)),      True),    # spread over the week
    ({0, 1, 2, 10},  set(range(3, 17)) - {10}, False),  # a heavy day 8 days before the first
    ({0, 1, 2, 17},  set(range(3, 17)),      True),    # 14 heavy-free days, then one before them
    ({0, 1, 2},      set(range(3, 10)),      True),    # 7 of the 14 days logged
    ({0, 1, 2},      set(range(3, 9)),       False),   # 6 logged: not enough to call it sober
    ({0, 1, 2, 7},   set(range(8, 22)),      False),   # a heavy day right before the week
    ({0, 1, 2, 3, 4, 5, 6}, set(range(7, 21)), True),
])  # fmt: skip
def test_relapse_pattern(heavy, light, fired):
    m = Member()
    for ago in sorted(heavy | light):
        m.drink(ago, HEAVY if ago in heavy else LIGHT)
    finding = relapse_pattern(m.build())
    assert fires(finding) is fired
    if finding:
        recent = sorted(d for d in heavy if d <= 6)
        assert finding.evidence == tuple(sorted(drink_log_evidence(m.day(d)) for d in recent))
        assert (finding.first_seen, finding.last_seen) == (m.day(recent[-1]), m.day(recent[0]))


def test_relapse_pattern_uses_the_stored_heavy_flag_and_settings():
    m = Member()
    m.drinks(range(3, 17), 0)
    for ago in (0, 1, 2):
        m.drink(ago, 60, heavy=False)  # a man's 60 g is not heavy
    assert relapse_pattern(m.build()) is None
    m.day_logs = [dataclasses.replace(log, heavy=log.grams > 0) for log in m.day_logs]
    finding = relapse_pattern(m.build())
    assert finding.summary == (
        "3 heavy drinking days in the last 7 days, after 14 or more days without one; latest on 2026-11-20."
    )
    assert relapse_pattern(m.build(), SafetySettings(relapse_heavy_days=4)) is None
    assert relapse_pattern(m.build(), SafetySettings(relapse_min_logged_days=0, relapse_free_days=30))


# Disengagement.


@pytest.mark.parametrize(("entries", "last_entry", "enrolled", "fired", "first_seen"), [
    ({"drink": 4},       None,   90,    False,  None),
    ({"drink": 5},       None,   90,    True,   4),
    ({"craving": 5},     None,   90,    True,   4),
    ({"breath": 5},      None,   90,    True,   4),
    ({"checkin": 5},     None,   90,    True,   4),
    ({"effect": 5},      None,   90,    True,   4),
    ({"drink": 9},       4,      90,    False,  None),   # a recall log entered 4 days ago
    ({"drink": 4},       9,      90,    False,  None),   # the entries given are newer
    ({},                 None,   5,     True,   4),      # nothing since enrolling
    ({},                 None,   4,     False,  None),
    ({},                 None,   None,  False,  None),   # nothing known: no guess
    ({"drink": -2},      None,   90,    True,   89),     # a future-dated entry is not an entry
])  # fmt: skip
def test_disengagement(entries, last_entry, enrolled, fired, first_seen):
    m = Member(enrolled=0)
    m.enrolled_on = None if enrolled is None else m.day(enrolled)
    m.last_entry_date = None if last_entry is None else m.day(last_entry)
    for kind, ago in entries.items():
        if kind == "drink":
            m.drink(ago, 0)
        elif kind == "craving":
            m.crave(ago, 2)
        elif kind == "breath":
            m.blow(ago, "0")
        elif kind == "checkin":
            m.take(m.plan("naltrexone", start=ago, end=ago), [ago])
        else:
            m.report("nausea", MILD, ago, "naltrexone")
    finding = disengagement(m.build())
    assert fires(finding) is fired
    if finding:
        assert (finding.first_seen, finding.last_seen, finding.evidence) == (m.day(first_seen), TODAY, ())
        assert finding.tier == Tier.INFO


def test_disengagement_summary():
    m = Member()
    m.drink(6, 0)
    assert disengagement(m.build()).summary == "No entry for 6 days (last on 2026-11-14)."
    assert disengagement(Member(enrolled=7).build()).summary == (
        "No entry for 7 days (none since enrolling on 2026-11-13)."
    )
    assert disengagement(m.build(), SafetySettings(disengagement_days=7)) is None


# Properties: the same entries in any order, or with more history than the lookback, give the same findings.

_TEMPLATES = {
    "baclofen": ("08:00", "14:00", "20:00"),
    "gabapentin": ("09:00", "21:00"),
    "naltrexone": ("08:00",),
    "disulfiram": ("07:30",),
    "acamprosate": ("08:00", "14:00", "20:00"),
}
_CODES = (
    "drowsiness",
    "dizziness",
    "confusion",
    "nausea",
    "hallucinations",
    "dark_urine",
    "pregnancy",
    "other",
)
_DAYS = st.integers(min_value=-1, max_value=45)


@st.composite
def histories(draw) -> MemberHistory:
    m = Member(
        zone=draw(st.sampled_from([NY, AUCKLAND, LONDON, KOLKATA])),
        at=draw(st.sampled_from(["06:00", "21:00"])),
    )
    for medication in draw(st.lists(st.sampled_from(sorted(_TEMPLATES)), unique=True, max_size=3)):
        start = draw(st.integers(5, 60))
        end = draw(st.one_of(st.none(), st.integers(-5, start)))
        steps = draw(st.sampled_from([(), ((start // 2, "5", _TEMPLATES[medication]),)]))
        plan = m.plan(medication, *_TEMPLATES[medication], start=start, end=end, steps=steps)
        statuses = draw(st.lists(st.sampled_from(["taken", "skipped", "none"]), min_size=61, max_size=61))
        for ago, status in enumerate(statuses):
            if status != "none":
                m.take(plan, [ago], status=CheckInStatus(status))
        for code, severity, ago in draw(
            st.lists(st.tuples(st.sampled_from(_CODES), st.sampled_from(Severity), _DAYS), max_size=8)
        ):
            m.report(code, severity, ago, plan)
    for ago, grams in draw(
        st.dictionaries(_DAYS, st.sampled_from(["0", "10", "55.99", "56", "120"]))
    ).items():
        m.drink(ago, grams)
    for ago, intensity in draw(st.lists(st.tuples(_DAYS, st.integers(0, 10)), max_size=20)):
        m.crave(ago, intensity)
    for ago, g_dl in draw(
        st.lists(st.tuples(_DAYS, st.sampled_from(["0", "0.079", "0.08", "0.3"])), max_size=5)
    ):
        m.blow(ago, g_dl)
    m.last_entry_date = max(
        (e.day for e in [*m.doses, *m.side_effects, *m.day_logs, *m.cravings, *m.breath] if e.day <= m.today),
        default=None,
    )
    return m.build()


@settings(max_examples=60, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_findings_do_not_depend_on_input_order(history, rnd):
    def shuffled(items):
        items = list(items)
        rnd.shuffle(items)
        return tuple(items)

    findings = evaluate(history)
    assert evaluate(history) == findings  # deterministic
    reordered = dataclasses.replace(
        history,
        plans=shuffled(history.plans),
        doses=shuffled(history.doses),
        side_effects=shuffled(history.side_effects),
        day_logs=shuffled(history.day_logs),
        cravings=shuffled(history.cravings),
        breath=shuffled(history.breath),
    )
    assert evaluate(reordered) == findings
    for finding in findings:
        rule = RULES[finding.rule]
        assert (finding.version, finding.tier, finding.key) == (rule.version, rule.tier, "")
        assert list(finding.evidence) == sorted(set(finding.evidence))
        assert finding.first_seen <= finding.last_seen <= history.today
        assert finding.summary and "\n" not in finding.summary


@settings(max_examples=60, deadline=None)
@given(histories())
def test_history_beyond_the_lookback_changes_nothing(history):
    oldest = history.today - timedelta(days=LOOKBACK_DAYS - 1)

    def recent(entries):
        return tuple(e for e in entries if e.day >= oldest)

    trimmed = dataclasses.replace(
        history,
        doses=recent(history.doses),
        side_effects=recent(history.side_effects),
        day_logs=recent(history.day_logs),
        cravings=recent(history.cravings),
        breath=recent(history.breath),
    )
    assert evaluate(trimmed) == evaluate(history)


def test_a_realistic_month_is_deterministic():
    """30 days of a baclofen member: mostly adherent, some drinking, cravings, readings."""
    rnd = random.Random(20261120)
    m = Member()
    plan = _baclofen(m, steps=[(40, "15", TID), (30, "20", TID)])
    m.take(plan, [d for d in range(61) if rnd.random() > 0.1])
    for ago in range(30):
        m.drink(ago, rnd.choice(["0", "0", "0", "14", "28", "70"]))
        m.crave(ago, rnd.randint(0, 10))
        if rnd.random() < 0.3:
            m.report(rnd.choice(["drowsiness", "nausea", "dizziness"]), rnd.choice(list(Severity)), ago, plan)
        if rnd.random() < 0.5:
            m.blow(ago, str(rnd.choice([0, 0.02, 0.05, 0.09])))
    history = m.build()
    first = evaluate(history)
    assert all(evaluate(history) == first for _ in range(5))
    # Worked out once and pinned: a change here is a change in what coaches see.
    assert [(f.rule, f.first_seen, f.last_seen, len(f.evidence)) for f in first] == [
        ("severe_side_effect", date(2026, 10, 29), date(2026, 11, 19), 5),
        ("sedation_with_drinking", date(2026, 11, 12), date(2026, 11, 19), 6),
    ]


# Withdrawal after a stop (issue 19 item 4), and symptoms reported on no check-in (item 3).


@pytest.mark.parametrize(("plan_kwargs", "sign_ago", "fired"), [
    ({"end": 5},                                              0,  True),
    ({"end": 14},                                             0,  True),
    ({"end": 15},                                             0,  False),   # more than 14 days after
    ({"end": 0},                                              0,  False),   # the plan's own last day
    ({"end": 5},                                              6,  False),   # before the stop
    ({"end": 5, "steps": [(15, "5", ("08:00",))]},            0,  False),   # tapered to the end
    ({"end": 5, "steps": [(15, "5", ("08:00",), True)]},      0,  False),   # a marked taper
    ({"end": 5, "steps": [(40, "5", ("08:00",))]},            0,  True),    # a cut 36 days before: no taper
    ({"end": 30},                                             20, True),    # a late report counts
])  # fmt: skip
def test_withdrawal_after_a_stop(plan_kwargs, sign_ago, fired):
    m = Member()
    plan = m.plan("baclofen", "08:00", "20:00", start=50, **plan_kwargs)
    m.take(plan)
    sign = m.symptom("seizure", MODERATE, sign_ago, entered=0)
    finding = withdrawal_after_stop(m.build())
    assert fires(finding) is fired
    if finding:
        assert finding.evidence == (sign.evidence_id,) and sign.evidence_id.startswith("symptom:")
        assert finding.medications == ("baclofen",) and finding.cites_symptoms
        assert f"(Baclofen ended on {plan.end_date})" in finding.summary


def test_withdrawal_after_a_stop_needs_a_withdrawal_medication_and_no_plan_continuing_it():
    m = Member()
    m.plan("naltrexone", "08:00", start=50, end=5)
    m.symptom("hallucinations", MILD, 0)
    assert withdrawal_after_stop(m.build()) is None
    m = Member()
    m.plan("gabapentin", "08:00", start=50, end=5)
    m.plan("gabapentin", "08:00", start=4)  # a new plan the next day: a change, not a stop
    m.symptom("agitation", MILD, 0)
    assert withdrawal_after_stop(m.build()) is None
    m = Member()
    m.plan("gabapentin", "08:00", start=50, end=5)
    m.symptom("agitation", MILD, 0)
    assert withdrawal_after_stop(m.build())
    assert withdrawal_after_stop(m.build(), SafetySettings(withdrawal_after_stop_days=3)) is None


# Issue 19 item 4: withdrawal after doses stopped being taken (withdrawal_after_stop version 2).


BID = ("08:00", "20:00")
#: A plan that ends 4 days ago after a taper on paper (10 mg from 10 days ago): not an ended-plan stop.
TAPERED = {"end": 4, "steps": [(10, "10", BID)]}


def _stopped_history(last_taken_ago: int, **plan_kwargs) -> tuple[Member, Plan]:
    m = Member()
    plan = m.plan("baclofen", *BID, dose="20", start=50, **(plan_kwargs or TAPERED))
    m.take(plan, range(last_taken_ago, 61))
    return m, plan


@pytest.mark.parametrize(
    ("last_taken_ago", "plan_kwargs", "fired"),
    [
        (12, TAPERED, True),  # stopped two days before the taper began
        (14, TAPERED, True),  # the 14th day after the last dose taken counts ...
        (15, TAPERED, False),  # ... the 15th does not
        (12, {"end": 4, "steps": [(10, "10", BID, True)]}, True),  # a coach-marked taper, never taken
        (9, TAPERED, False),  # stopped during the taper: a taper cut short
        (9, {"end": 4, "steps": [(10, "10", BID, True)]}, False),  # ... a marked one too
        (4, TAPERED, False),  # the taper taken to its end
        (12, {"end": 4}, True),  # no taper: the ended-plan part fires too
    ],
)  # fmt: skip
def test_withdrawal_after_doses_stopped(last_taken_ago, plan_kwargs, fired):
    m, plan = _stopped_history(last_taken_ago, **plan_kwargs)
    sign = m.symptom("hallucinations", MODERATE, 0, at="15:00")
    history = m.build()
    finding = withdrawal_after_stop(history)
    stopped = fires(finding) and "last Baclofen dose taken" in finding.summary
    assert stopped is fired
    if stopped:
        last = max(
            (d for d in history.doses if d.day == m.day(last_taken_ago)), key=lambda d: d.scheduled_for
        )
        assert sign.evidence_id in finding.evidence and last.evidence_id in finding.evidence
        missed = [e for e in finding.evidence if e.startswith("dose:")]
        assert missed and all(e.startswith(f"dose:{plan.id}:") for e in missed)
        assert finding.medications == ("baclofen",) and finding.symptoms == ("hallucinations",)
        assert (
            f"last Baclofen dose taken: the 20:00 dose of {m.day(last_taken_ago)} (20 mg)" in finding.summary
        )
        assert f"then {len(missed)} doses missed" in finding.summary


def test_withdrawal_after_doses_stopped_leaves_a_plan_in_force_to_withdrawal_risk():
    m, _ = _stopped_history(10, end=None)
    m.symptom("seizure", MILD, 0, at="15:00")
    assert withdrawal_after_stop(m.build()) is None
    assert {f.rule for f in evaluate(m.build())} == {"withdrawal_risk"}


def test_withdrawal_after_doses_stopped_needs_a_missed_dose_and_reads_its_setting():
    # Every dose after the last one taken was at the plan's end (no missed dose): the ended-plan part's.
    m, _ = _stopped_history(5, end=5, steps=[(9, "10", BID)])
    m.symptom("seizure", MILD, 2)
    assert withdrawal_after_stop(m.build()) is None
    # The window is `withdrawal_after_stop_days`.
    m, _ = _stopped_history(11)
    m.symptom("agitation", MILD, 0, at="15:00")
    assert withdrawal_after_stop(m.build())
    assert withdrawal_after_stop(m.build(), SafetySettings(withdrawal_after_stop_days=10)) is None
    # Skipped doses are missed doses; a dose of another medication is not this one's.
    m = Member()
    baclofen = m.plan("baclofen", "08:00", start=50, end=3, steps=[(8, "5", ("08:00",))])
    m.take(baclofen, range(10, 61))
    m.skip(baclofen, range(3, 10))
    m.take(m.plan("naltrexone", "08:00", start=50))
    m.symptom("confusion", MILD, 0, at="15:00")
    finding = withdrawal_after_stop(m.build())
    assert finding and sum(e.startswith("checkin:") for e in finding.evidence) == 8  # 1 taken + 7 skipped


def test_symptom_reports_feed_the_same_rules():
    m = Member()
    plan = m.plan("acamprosate", "08:00")
    m.take(plan)
    m.symptom("seizure", SEVERE, 2)
    m.symptom("kidney_problems", MILD, 1)
    m.symptom("suicidal_thoughts", MILD, 0)
    for ago in (2, 1, 0):
        m.symptom("nausea", MODERATE, ago, at="09:00")
    found = {f.rule: f for f in evaluate(m.build())}
    assert set(found) == {
        "severe_side_effect", "contraindication", "suicidal_thoughts", "persistent_side_effect",
    }  # fmt: skip
    assert found["severe_side_effect"].summary == (
        "Severe side effect reported: Seizure (no medication); latest on 2026-11-18."
    )
    assert found["contraindication"].medications == ("acamprosate",)  # the plan in force that day


# PACS (issue 19 item 10): a weekly total of 15 or more, 5 or more above the previous week's.


def _pacs(m: Member, *totals_by_weeks_ago: int | None) -> list[PacsRecord]:
    """PACS totals from this week's Monday backwards (TODAY is a Friday); None: no PACS that week."""
    monday = TODAY - timedelta(days=TODAY.weekday())
    records = [
        PacsRecord(m.uuid(), monday - timedelta(weeks=n), total)
        for n, total in enumerate(totals_by_weeks_ago)
        if total is not None
    ]
    return records


@pytest.mark.parametrize(("totals", "fired"), [
    ((15, 10),        True),
    ((15, 11),        False),   # rose by 4
    ((14, 5),         False),   # under 15
    ((30, None, 5),   False),   # no previous week to compare with
    ((None, 20, 15),  True),    # last week's rise still counts (its Monday is 11 days back)
    ((None, None, 25, 10), False),  # more than 14 days back
])  # fmt: skip
def test_craving_escalation_on_the_weekly_pacs(totals, fired):
    m = Member()
    records = _pacs(m, *totals)
    finding = craving_escalation(m.build(pacs=tuple(records)))
    assert fires(finding) is fired
    if finding:
        assert finding.tier == Tier.WARNING and finding.version == 2
        assert len(finding.evidence) == 2 and all(e.startswith("pacs:") for e in finding.evidence)
        assert "PACS" in finding.summary


def test_pacs_thresholds_are_settings():
    m = Member()
    history = m.build(pacs=tuple(_pacs(m, 12, 6)))
    assert craving_escalation(history) is None
    assert craving_escalation(history, SafetySettings(pacs_high_total=12, pacs_min_rise=6))
