"""Loading members' histories for the safety rules: each table read for the rules' lookback window in a
handful of set-based queries (one per table, whatever the number of members), as the pure
`domain.safety` values the rules take."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    Uuid,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    tuple_,
)

from companion.accounts.models import CoachAssignment, Member
from companion.db import session
from companion.domain import localtime
from companion.domain import safety as rules
from companion.domain.medications import Severity
from companion.domain.plans import CheckInStatus
from companion.domain.summary import DayLog
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport, plan_to_domain
from companion.pacs.models import PacsReport
from companion.symptoms.models import SymptomReport
from companion.tracking.models import BacReading, Craving, DrinkLog

#: The rules' thresholds. One place to change them; SafetySettings documents each.
SETTINGS = rules.DEFAULT


_SEVERITIES = {s.label: s for s in Severity}


_STATUSES = {s.value: s for s in CheckInStatus}


def ids_param(name: str, ids: Sequence[uuid.UUID]):
    """`= ANY(:ids)` with one array parameter, however many ids."""
    return any_(bindparam(name, list(ids), type_=ARRAY(Uuid)))


def _window_start(now: datetime, settings: rules.SafetySettings) -> date:
    """A lower bound of every member's lookback window: local dates are within a day of UTC's, and
    loading a day more changes nothing (each rule reads only its own window)."""
    return localtime.to_utc(now).date() - timedelta(days=rules.lookback_days(settings))


@dataclass
class Loaded:
    """One member's history as the rules read it, and where their flags go."""

    history: rules.MemberHistory
    coach_id: uuid.UUID | None


def last_entry_at(member_id_column: Any) -> Any:
    """The instant of the member's latest entry of any kind: each table's newest change, by index."""

    def newest(model: Any, instant: Any) -> Any:
        return (
            select(instant)
            .where(model.member_id == member_id_column)
            .order_by(model.change_seq.desc())
            .limit(1)
            .scalar_subquery()
        )

    return func.greatest(
        newest(DrinkLog, DrinkLog.server_updated_at),
        newest(Craving, Craving.created_at),
        newest(BacReading, BacReading.created_at),
        newest(MedicationCheckin, MedicationCheckin.created_at),
        newest(SymptomReport, SymptomReport.created_at),
        newest(PacsReport, PacsReport.created_at),
    )


def table_windows(settings: rules.SafetySettings = SETTINGS) -> dict[str, int]:
    """Local days, today included, each kind of entry is loaded for: the widest window among the
    rules that read it (domain/safety.py documents what each reads). Every rule still gets all of its
    window; what is left out no rule reads. Disengagement reads no entry here: the latest entry's day
    comes from when the member last entered anything (`last_entry_at`)."""
    recent = settings.recent_days
    return {
        # sedation and disulfiram with drinking (recent), relapse (its window and the stretch before)
        "drink_logs": max(recent, settings.relapse_window_days + settings.relapse_free_days),
        "cravings": settings.craving_recent_days + settings.craving_baseline_days,
        # craving escalation: the weekly PACS of its window and the week before each
        "pacs_reports": settings.pacs_recent_days + 7,
        "bac_readings": recent,
        # severe, liver, contraindication, withdrawal signs, suicidal thoughts, opioid use, kidney
        # stones: the whole backfill window (a late report counts); persistent, escalating, sedation
        "side_effect_reports": max(
            recent,
            settings.report_backfill_days,
            settings.persistent_window_days,
            settings.escalating_window_days,
        ),
        # withdrawal: missed doses in its window and the days before it; the check-ins of the days
        # before each withdrawal sign loaded (the longer of `withdrawal_sign_days` and
        # `withdrawal_after_stop_days`), however old, are loaded too (`_history_statements`)
        "medication_checkins": settings.withdrawal_window_days + settings.withdrawal_sign_days,
    }


@cache
def _history_statements() -> dict[str, Any]:
    """The loader's statements, built once: a scan after one entry runs them for one member, and
    building SQLAlchemy expressions costs more than running them. Parameters: `ids` (an array),
    each table's `since` date, `plans_since` and `plans_until`."""
    ids = any_(bindparam("ids", type_=ARRAY(Uuid)))
    effects_where = and_(
        SideEffectReport.member_id == ids, SideEffectReport.date >= bindparam("effects_since")
    )
    # A withdrawal sign's rules read the doses of its day and the days before it: `withdrawal_sign_days`
    # (withdrawal risk), `withdrawal_after_stop_days` (doses that stopped being taken).
    signs = SideEffectReport.__table__.alias("signs")
    near_a_sign = (
        select(signs.c.id)
        .where(
            signs.c.member_id == MedicationCheckin.member_id,
            signs.c.code.in_(sorted(rules.WITHDRAWAL_SIGNS)),
            signs.c.date >= bindparam("effects_since"),
            signs.c.date >= MedicationCheckin.date,
            signs.c.date <= MedicationCheckin.date + bindparam("sign_days", type_=Integer),
        )
        .exists()
    )
    # ... and so does one reported on its own (a symptom report).
    near_a_report = (
        select(SymptomReport.id)
        .where(
            SymptomReport.member_id == MedicationCheckin.member_id,
            SymptomReport.codes.overlap(sorted(rules.WITHDRAWAL_SIGNS)),
            SymptomReport.date >= bindparam("effects_since"),
            SymptomReport.date >= MedicationCheckin.date,
            SymptomReport.date <= MedicationCheckin.date + bindparam("sign_days", type_=Integer),
        )
        .exists()
    )
    entered = MedicationCheckin.__table__.alias("entered")
    return {
        "members": select(
            Member.id,
            Member.timezone,
            Member.country,
            Member.sex,
            Member.enrolled_at,
            last_entry_at(Member.id).label("last_entry_at"),
            CoachAssignment.coach_id,
        )
        .outerjoin(
            CoachAssignment, and_(CoachAssignment.member_id == Member.id, CoachAssignment.ended_at.is_(None))
        )
        .where(Member.id == ids),
        "logs": select(DrinkLog.member_id, DrinkLog.date, DrinkLog.grams_ethanol, DrinkLog.heavy).where(
            DrinkLog.member_id == ids, DrinkLog.date >= bindparam("logs_since"), DrinkLog.deleted_at.is_(None)
        ),
        "cravings": select(Craving.member_id, Craving.id, Craving.date, Craving.intensity).where(
            Craving.member_id == ids, Craving.date >= bindparam("cravings_since")
        ),
        "breath": select(BacReading.member_id, BacReading.id, BacReading.date, BacReading.bac_g_dl).where(
            BacReading.member_id == ids, BacReading.date >= bindparam("breath_since")
        ),
        "effects": select(
            SideEffectReport.member_id,
            SideEffectReport.id,
            SideEffectReport.checkin_id,
            SideEffectReport.medication,
            SideEffectReport.date,
            SideEffectReport.code,
            SideEffectReport.severity,
            entered.c.created_at,
        )
        .outerjoin(
            entered,
            and_(
                entered.c.member_id == SideEffectReport.member_id, entered.c.id == SideEffectReport.checkin_id
            ),
        )
        .where(effects_where),
        "doses": select(
            MedicationCheckin.member_id,
            MedicationCheckin.id,
            MedicationCheckin.plan_id,
            MedicationCheckin.scheduled_for,
            MedicationCheckin.status,
            MedicationCheckin.date,
        ).where(
            MedicationCheckin.member_id == ids,
            or_(
                MedicationCheckin.date >= bindparam("doses_since"),
                # the check-ins of the side effects loaded: their slots order same-day reports
                tuple_(MedicationCheckin.member_id, MedicationCheckin.id).in_(
                    select(SideEffectReport.member_id, SideEffectReport.checkin_id).where(effects_where)
                ),
                near_a_sign,
                near_a_report,
            ),
        ),
        "symptoms": select(
            SymptomReport.member_id,
            SymptomReport.id,
            SymptomReport.date,
            SymptomReport.reported_at,
            SymptomReport.created_at,
            SymptomReport.symptoms,
        ).where(SymptomReport.member_id == ids, SymptomReport.date >= bindparam("effects_since")),
        "pacs": select(PacsReport.member_id, PacsReport.id, PacsReport.week_of, PacsReport.total).where(
            PacsReport.member_id == ids, PacsReport.week_of >= bindparam("pacs_since")
        ),
        "plans": select(
            MedicationPlan.member_id,
            MedicationPlan.id,
            MedicationPlan.medication,
            MedicationPlan.dose_mg,
            MedicationPlan.times,
            MedicationPlan.start_date,
            MedicationPlan.end_date,
            MedicationPlan.steps,
        ).where(
            MedicationPlan.member_id == ids,
            MedicationPlan.start_date <= bindparam("plans_until"),
            or_(MedicationPlan.end_date.is_(None), MedicationPlan.end_date >= bindparam("plans_since")),
        ),
    }


def load_histories(
    member_ids: Sequence[uuid.UUID],
    *,
    now: datetime,
    settings: rules.SafetySettings = SETTINGS,
    extra_days: int = 0,
) -> dict[uuid.UUID, Loaded]:
    """Every member's history for the rules' windows (each widened by `extra_days` into the past), in
    nine set-based queries whatever the number of members (Core rows, not ORM objects: the sweep
    reads millions). Members that no longer exist (erased) are left out."""
    if not member_ids:
        return {}
    # Local dates are within a day of UTC's; a day more than a window changes nothing.
    utc_today = localtime.to_utc(now).date()
    windows = {table: days + extra_days for table, days in table_windows(settings).items()}
    params = {
        "ids": list(member_ids),
        "logs_since": utc_today - timedelta(days=windows["drink_logs"]),
        "cravings_since": utc_today - timedelta(days=windows["cravings"]),
        "breath_since": utc_today - timedelta(days=windows["bac_readings"]),
        "effects_since": utc_today - timedelta(days=windows["side_effect_reports"]),
        "doses_since": utc_today - timedelta(days=windows["medication_checkins"]),
        "plans_since": _window_start(now, settings) - timedelta(days=extra_days),
        "plans_until": utc_today + timedelta(days=1),
        "sign_days": max(settings.withdrawal_sign_days, settings.withdrawal_after_stop_days),
        "pacs_since": utc_today - timedelta(days=windows["pacs_reports"]),
    }
    statements = _history_statements()
    connection = session.connection()
    members = connection.execute(statements["members"], params).all()
    if not members:
        return {}

    def rows(name: str) -> dict[uuid.UUID, list[Any]]:
        grouped: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for row in connection.execute(statements[name], params).all():
            grouped[row[0]].append(row)
        return grouped

    logs, cravings, breath = rows("logs"), rows("cravings"), rows("breath")
    effects, doses, plans = rows("effects"), rows("doses"), rows("plans")
    reported, pacs = rows("symptoms"), rows("pacs")

    loaded = {}
    for m in members:
        zone = m.timezone
        history = rules.MemberHistory(
            now=now,
            zone=zone,
            country=m.country,
            sex=m.sex,
            enrolled_on=localtime.local_date(m.enrolled_at, zone),
            last_entry_date=localtime.local_date(m.last_entry_at, zone) if m.last_entry_at else None,
            plans=tuple(plan_to_domain(p) for p in plans.get(m.id, ())),
            doses=tuple(
                rules.DoseRecord(d.id, d.plan_id, d.scheduled_for, _STATUSES[d.status], d.date)
                for d in doses.get(m.id, ())
            ),
            side_effects=tuple(
                rules.SideEffectRecord(
                    e.id,
                    e.checkin_id,
                    e.medication,
                    e.date,
                    e.code,
                    _SEVERITIES[e.severity],
                    localtime.local_date(e.created_at, zone) if e.created_at else None,
                )
                for e in effects.get(m.id, ())
            )
            + tuple(
                rules.SideEffectRecord(
                    f"{r.id}:{symptom['code']}",
                    None,
                    "",
                    r.date,
                    symptom["code"],
                    _SEVERITIES[symptom["severity"]],
                    localtime.local_date(r.created_at, zone),
                    r.reported_at,
                )
                for r in reported.get(m.id, ())
                for symptom in r.symptoms
            ),
            day_logs=tuple(DayLog(log.date, log.grams_ethanol, log.heavy) for log in logs.get(m.id, ())),
            cravings=tuple(rules.CravingRecord(c.id, c.date, c.intensity) for c in cravings.get(m.id, ())),
            breath=tuple(rules.BreathRecord(b.id, b.date, b.bac_g_dl) for b in breath.get(m.id, ())),
            pacs=tuple(rules.PacsRecord(p.id, p.week_of, p.total) for p in pacs.get(m.id, ())),
        )
        loaded[m.id] = Loaded(history, m.coach_id)
    return loaded
