"""Safety flags: run the pure rules (companion/domain/safety.py) over members' records and keep flags.

**Scanning.** `scan_members(ids, now=...)` loads each member's history for the rules' lookback
window in a handful of set-based queries (one per table, whatever the number of members), runs
`domain.safety.evaluate`, and records the findings. The same function serves one member after an
entry (task `safety.scan_member`) and a batch of the periodic sweep (`safety.scan_batch`).

**Flags** (DOMAIN.md "Safety rules", issue 5), the semantics chosen:

* One flag per member and rule is unresolved (open or acknowledged): a finding for a rule that has
  one updates it. Its evidence becomes the union of what it held and what the finding cites; first
  and last seen widen; summary, symptoms, medications and rule version follow the latest finding.
* An open flag whose finding is no longer true on a rescan is `cleared`, with the reason and the
  entries that showed it (domain/clearing.py: a finding that merely aged out of its window stays);
  a flag citing a reported symptom, or one a coach acknowledged, is closed only by a coach. A
  cleared flag leaves the queue but is kept, and does not stop a new flag from opening.
* A resolved flag stays resolved. A finding opens a new flag only when it cites evidence that no
  resolved flag of that member and rule already holds ("re-opens only on new evidence"); the new
  flag carries the finding's whole evidence, so the coach sees the full picture again.
* The disengagement rule cites no entry (absence has none). Its flag's evidence is the synthetic id
  `no_entry_since:<first day without an entry>`: stable while the member stays away, new when they
  come back and go quiet again.
* Routing: each flag is assigned to the member's current coach, or to the admins' queue (NULL) when
  there is none; a scan re-routes an unresolved flag when the caseload changed. Never dropped.
* Alerts: an urgent flag that opens, or gains evidence, raises an alert, at most one per member,
  rule and member-local day (`flag_alerts`' unique key). The alert notifies the coach, or every
  admin when the member has no coach, on every enabled channel (companion/safety/channels.py).
* Escalation: an urgent flag still `open` (not acknowledged) `urgent_sla` after it opened is
  escalated once (`escalated_at`), notifying every admin.

**Concurrency.** Writing a member's flags takes a transaction-scoped advisory lock on the member, so
two scans of one member (an entry and the sweep) write one after the other; the partial unique index
is the last guard. Unresolved flags are read `FOR UPDATE`: a coach resolving a flag during a scan
either waits for the scan's update or, having resolved first, is seen as resolved.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert

from companion import jobs, privacy
from companion.accounts.models import CoachAssignment, Member, Role, User
from companion.audit import services as audit
from companion.db import session
from companion.domain import clearing, localtime
from companion.domain import safety as rules
from companion.domain.errors import Conflict, NotFound
from companion.domain.medications import Severity
from companion.domain.plans import CheckInStatus
from companion.domain.summary import DayLog
from companion.medications.models import MedicationCheckin, MedicationPlan, SideEffectReport, plan_to_domain
from companion.pacs.models import PacsReport
from companion.pagination import cursor_error, decode_page_cursor, encode_page_cursor
from companion.safety import channels, watch
from companion.safety.models import (
    UNRESOLVED,
    Flag,
    FlagAlert,
    FlagStatus,
    NotificationKind,
    StaffNotification,
)
from companion.symptoms.models import SymptomReport
from companion.tracking.models import BacReading, Craving, DrinkLog

log = logging.getLogger(__name__)

#: The rules' thresholds. One place to change them; SafetySettings documents each.
SETTINGS = rules.DEFAULT
#: First key of the advisory locks that serialise writes of one member's flags.
FLAG_LOCK_NAMESPACE = 71_002
#: The synthetic evidence of a finding that cites no entry (disengagement): absence since that day.
NO_ENTRY_SINCE = "no_entry_since:"
#: The sweep hands members to `scan_batch` in groups of this many: one transaction and a few
#: queries per group, small enough that a batch holds its members' locks for well under a second.
SWEEP_BATCH = 500
#: The outbox is drained this many notifications at a time.
DELIVERY_BATCH = 200

_SEVERITIES = {s.label: s for s in Severity}
_STATUSES = {s.value: s for s in CheckInStatus}
_UNRESOLVED = UNRESOLVED


def _ids_param(name: str, ids: Sequence[uuid.UUID]):  # type: ignore[no-untyped-def]
    """`= ANY(:ids)` with one array parameter, however many ids."""
    return any_(bindparam(name, list(ids), type_=ARRAY(Uuid)))


def _window_start(now: datetime, settings: rules.SafetySettings) -> date:
    """A lower bound of every member's lookback window: local dates are within a day of UTC's, and
    loading a day more changes nothing (each rule reads only its own window)."""
    return localtime.to_utc(now).date() - timedelta(days=rules.lookback_days(settings))


# --- loading histories ------------------------------------------------------------------------------


@dataclass
class Loaded:
    """One member's history as the rules read it, and where their flags go."""

    history: rules.MemberHistory
    coach_id: uuid.UUID | None


def _last_entry_at(member_id_column: Any) -> Any:
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
    comes from when the member last entered anything (`_last_entry_at`)."""
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
            _last_entry_at(Member.id).label("last_entry_at"),
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


# --- recording findings -----------------------------------------------------------------------------


@dataclass
class ScanResult:
    """What a scan did, in counts: ids and counts are all a task may log."""

    members: int = 0
    findings: int = 0
    opened: int = 0
    updated: int = 0
    cleared: int = 0
    alerts: int = 0
    notifications: int = 0
    flag_ids: list[uuid.UUID] = field(default_factory=list)
    #: (rule, tier label) of each flag this scan opened, for the metrics
    opened_rules: list[tuple[str, str]] = field(default_factory=list)
    #: (rule, tier label, seconds) of each flag opened for a member whose row a write had made due:
    #: from that write to the flag (the flag latency, issue 26).
    latencies: list[tuple[str, str, float]] = field(default_factory=list)

    def add(self, other: ScanResult) -> None:
        """Fold another batch's result into this one (a pass runs several)."""
        for name in ("members", "findings", "opened", "updated", "cleared", "alerts", "notifications"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.flag_ids += other.flag_ids
        self.opened_rules += other.opened_rules
        self.latencies += other.latencies


def evidence_of(finding: rules.Finding) -> frozenset[str]:
    """The evidence a flag stores for `finding`: its ids, or for a finding that cites none the day
    absence began (disengagement)."""
    if finding.evidence:
        return frozenset(finding.evidence)
    return frozenset({f"{NO_ENTRY_SINCE}{finding.first_seen.isoformat()}"})


def lock_members(member_ids: Iterable[uuid.UUID]) -> None:
    """Take each member's flag lock for the rest of the transaction, in one order (no deadlocks)."""
    keys = sorted({_lock_key(m) for m in member_ids})
    if keys:
        session.execute(
            # unnest yields the keys in array order, so every transaction takes them in one order.
            text("SELECT pg_advisory_xact_lock(:ns, k) FROM unnest(CAST(:keys AS int[])) AS t(k)"),
            {"ns": FLAG_LOCK_NAMESPACE, "keys": keys},
        )


def _lock_key(member_id: uuid.UUID) -> int:
    # A stable 32-bit key; two members sharing one only ever wait for each other.
    return int.from_bytes(member_id.bytes[:4], "big", signed=True)


def record_findings(
    found: dict[uuid.UUID, tuple[Loaded, list[rules.Finding]]],
    *,
    now: datetime,
    settings: rules.SafetySettings = SETTINGS,
    due_since: Mapping[uuid.UUID, datetime | None] | None = None,
) -> ScanResult:
    """Open, update, clear or leave each member's flags for their findings; alert on urgent news. A
    fixed number of statements whatever the number of members and findings (the sweep records in
    batches)."""
    result = ScanResult(members=len(found))
    if not found:
        return result
    with_findings = {m: v for m, v in found.items() if v[1]}
    result.findings = sum(len(f) for _, f in with_findings.values())
    lock_members(with_findings)
    unresolved = {
        (flag.member_id, flag.rule): flag
        for flag in session.execute(
            select(Flag)
            .where(Flag.member_id == _ids_param("ids", list(found)), Flag.status.in_(_UNRESOLVED))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    }
    result.cleared = _clear_untrue(found, unresolved, now=now, settings=settings)
    if not with_findings:
        session.flush()
        return result
    ids = _ids_param("ids", list(with_findings))
    oldest = min(f.first_seen for _, findings in with_findings.values() for f in findings)
    resolved: dict[tuple[uuid.UUID, str], set[str]] = defaultdict(set)
    for member_id, rule, evidence in session.execute(
        select(Flag.member_id, Flag.rule, Flag.evidence).where(
            Flag.member_id == ids, Flag.status == FlagStatus.RESOLVED.value, Flag.last_seen >= oldest
        )
    ):
        resolved[(member_id, rule)].update(evidence)

    alerts: list[tuple[uuid.UUID, uuid.UUID, str, Loaded, str]] = []  # flag, member, rule, loaded, why
    new_flags: list[dict[str, Any]] = []
    opened_for: dict[tuple[uuid.UUID, str], Loaded] = {}
    for member_id, (loaded, findings) in with_findings.items():
        for finding in findings:
            evidence = evidence_of(finding)
            flag = unresolved.get((member_id, finding.rule))
            if flag is not None:
                grew = not evidence <= set(flag.evidence)
                if _update(flag, finding, evidence, loaded.coach_id, now=now):
                    result.updated += 1
                    result.flag_ids.append(flag.id)
                if grew and finding.tier == rules.Tier.URGENT:
                    alerts.append((flag.id, member_id, finding.rule, loaded, "new_evidence"))
            elif not evidence <= resolved.get((member_id, finding.rule), set()):
                new_flags.append(_new_flag(member_id, finding, evidence, loaded.coach_id, now=now))
                opened_for[(member_id, finding.rule)] = loaded
    session.flush()
    if new_flags:
        # With the members' locks held nothing else opens their flags; the index stays the last guard.
        inserted = _insert_many(
            insert(Flag)
            .on_conflict_do_nothing(
                index_elements=["member_id", "rule"],
                index_where=text("status IN ('open', 'acknowledged')"),
            )
            .returning(Flag.id, Flag.member_id, Flag.rule, Flag.tier),
            new_flags,
        )
        result.opened = len(inserted)
        for flag_id, member_id, rule, tier in inserted:
            result.flag_ids.append(flag_id)
            result.opened_rules.append((str(rule), rules.Tier(tier).label))
            since = (due_since or {}).get(member_id)
            if since is not None and since <= now:
                result.latencies.append((str(rule), rules.Tier(tier).label, (now - since).total_seconds()))
            if tier == rules.Tier.URGENT:
                alerts.append((flag_id, member_id, rule, opened_for[(member_id, rule)], "opened"))
    if alerts:
        result.alerts, result.notifications = _alert(alerts, now=now)
    if result.notifications:
        jobs.enqueue_once_after_commit(jobs.DELIVER_NOTIFICATIONS)
    return result


def _clear_untrue(
    found: dict[uuid.UUID, tuple[Loaded, list[rules.Finding]]],
    unresolved: dict[tuple[uuid.UUID, str], Flag],
    *,
    now: datetime,
    settings: rules.SafetySettings,
) -> int:
    """Clear each open flag whose finding is no longer true (domain/clearing.py); how many.

    Only a rule that found nothing now is a candidate, and never a flag citing a reported symptom.
    A flag last found days ago is judged on a history widened back to that day, loaded here for its
    members only (rare: most scans find what they found before)."""
    candidates: dict[tuple[uuid.UUID, str], clearing.OpenFlag] = {}
    for (member_id, rule), flag in unresolved.items():
        if flag.status != FlagStatus.OPEN.value or any(f.rule == rule for f in found[member_id][1]):
            continue
        candidate = clearing.OpenFlag(
            flag.rule, frozenset(flag.evidence), tuple(flag.symptoms), flag.first_seen, flag.last_seen,
            flag.updated_at,
        )  # fmt: skip
        if not clearing.cites_report(candidate):
            candidates[(member_id, rule)] = candidate
    if not candidates:
        return 0
    extra = min(max((now - c.found_at).days + 2 for c in candidates.values()), rules.lookback_days(settings))
    members = sorted({member_id for member_id, _ in candidates})
    histories = load_histories(members, now=now, settings=settings, extra_days=extra)
    cleared = 0
    for (member_id, rule), candidate in candidates.items():
        loaded = histories.get(member_id)
        if loaded is None:
            continue
        verdict = clearing.clearance(candidate, loaded.history, settings, extra_days=extra - 1)
        if verdict is None:
            continue
        flag = unresolved.pop((member_id, rule))
        flag.status = FlagStatus.CLEARED.value
        flag.cleared_at = now
        flag.cleared_reason = verdict.reason
        flag.cleared_evidence = list(verdict.evidence)
        flag.updated_at = now
        cleared += 1
    return cleared


def _new_flag(
    member_id: uuid.UUID,
    finding: rules.Finding,
    evidence: frozenset[str],
    coach_id: uuid.UUID | None,
    *,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "member_id": member_id,
        "rule": finding.rule,
        "rule_version": finding.version,
        "tier": int(finding.tier),
        "status": FlagStatus.OPEN.value,
        "evidence": sorted(evidence),
        "summary": finding.summary,
        "symptoms": list(finding.symptoms),
        "medications": list(finding.medications),
        "first_seen": finding.first_seen,
        "last_seen": finding.last_seen,
        "created_at": now,
        "updated_at": now,
        "assigned_coach_id": coach_id,
    }


def _update(
    flag: Flag, finding: rules.Finding, evidence: frozenset[str], coach_id: uuid.UUID | None, *, now: datetime
) -> bool:
    """Fold `finding` into an unresolved flag; whether anything changed."""
    values = {
        "evidence": sorted(set(flag.evidence) | evidence),
        "first_seen": min(flag.first_seen, finding.first_seen),
        "last_seen": max(flag.last_seen, finding.last_seen),
        "summary": finding.summary,
        "symptoms": sorted(set(flag.symptoms) | set(finding.symptoms)),
        "medications": sorted(set(flag.medications) | set(finding.medications)),
        "rule_version": finding.version,
        "tier": int(finding.tier),
        "assigned_coach_id": coach_id,
    }
    changed = {k: v for k, v in values.items() if getattr(flag, k) != v}
    if not changed:
        return False
    for name, value in changed.items():
        setattr(flag, name, value)
    flag.updated_at = now
    return True


def _admin_ids() -> list[uuid.UUID]:
    return list(
        session.execute(
            select(User.id).where(User.role == Role.ADMIN, User.deleted_at.is_(None)).order_by(User.id)
        ).scalars()
    )


def _alert(alerts: list[tuple[uuid.UUID, uuid.UUID, str, Loaded, str]], *, now: datetime) -> tuple[int, int]:
    """Raise today's alert for each flag's member and rule, unless one was raised already (the
    ledger's unique key decides), and notify: the coach, or every admin for a member with none.
    The numbers of alerts raised and notifications written."""
    rows = [
        {
            "flag_id": flag_id,
            "member_id": member_id,
            "rule": rule,
            "day": loaded.history.today,
            "reason": reason,
            "recipient_id": loaded.coach_id,
            "created_at": now,
        }
        for flag_id, member_id, rule, loaded, reason in alerts
    ]
    raised = _insert_many(
        insert(FlagAlert)
        .on_conflict_do_nothing(constraint="uq_flag_alerts_member_rule_day")
        .returning(FlagAlert.id, FlagAlert.flag_id, FlagAlert.recipient_id),
        rows,
    )
    admins: list[uuid.UUID] | None = None
    notifications: list[dict[str, Any]] = []
    for alert_id, flag_id, coach_id in raised:
        if coach_id is None and admins is None:
            admins = _admin_ids()
        recipients = [coach_id] if coach_id is not None else admins or []
        notifications += _notifications(
            recipients, flag_id, NotificationKind.URGENT_FLAG, alert_id=alert_id, now=now
        )
    return len(raised), _write_notifications(notifications)


def _notifications(
    recipients: Sequence[uuid.UUID],
    flag_id: uuid.UUID,
    kind: NotificationKind,
    *,
    alert_id: int | None = None,
    now: datetime,
) -> list[dict[str, Any]]:
    return [
        {
            "recipient_id": recipient,
            "flag_id": flag_id,
            "alert_id": alert_id,
            "kind": kind.value,
            "channel": name,
            "created_at": now,
            "sent_at": now if channels.CHANNELS[name].immediate else None,
        }
        for recipient in recipients
        for name in channels.ENABLED
    ]


def _write_notifications(rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    statement = insert(StaffNotification).on_conflict_do_nothing().returning(StaffNotification.id)
    return len(_insert_many(statement, rows))


def _insert_many(statement: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """One cached statement for any number of rows (SQLAlchemy batches them into multi-row INSERTs);
    the rows it returned: those ON CONFLICT did not skip."""
    return list(session.connection().execute(statement, rows).all())


# --- scans ------------------------------------------------------------------------------------------


def scan_members(
    member_ids: Sequence[uuid.UUID], *, now: datetime, settings: rules.SafetySettings = SETTINGS
) -> ScanResult:
    """Run every rule for these members as of `now` and record the findings. Idempotent: the same
    records scanned again change nothing and alert no one. The caller commits."""
    due = watch.claim(member_ids)  # before reading: a write in flight commits first, or comes after
    loaded = load_histories(member_ids, now=now, settings=settings)
    found = {m: (data, rules.evaluate(data.history, settings)) for m, data in loaded.items()}
    result = record_findings(found, now=now, settings=settings, due_since=due)
    watch.schedule({m: rules.next_check(data.history, settings) for m, data in loaded.items()})
    return result


def scan_member(member_id: uuid.UUID, *, now: datetime) -> ScanResult:
    """`scan_members` for one member: what runs after each new or changed entry."""
    return scan_members([member_id], now=now)


def scan_due(*, now: datetime, grace: timedelta, limit: int = SWEEP_BATCH) -> ScanResult:
    """One batch of the every-minute pass: the members whose `safety_watch` row has been due for at
    least `grace` (their scan message lost or still to come: a write marks its row due in its own
    transaction, so this holds whatever happened to Redis; or a dose deadline or midnight passed),
    locked with SKIP LOCKED so passes and writers never wait for each other, then scanned. Rows due
    for less than `grace` are left to the message, the fast path. `members` < `limit`: none left."""
    return scan_members(watch.take_due(before=now - grace, limit=limit), now=now)


def scan_due_isolated(
    *, now: datetime, grace: timedelta, retry_after: timedelta, limit: int = SWEEP_BATCH
) -> tuple[ScanResult, list[uuid.UUID]]:
    """`scan_due` after a batch failed: each member in a savepoint of their own, so one member whose
    records make the rules fail never holds back the others; that member's next check moves
    `retry_after` on (and the caller logs it). What was scanned, and the members that failed."""
    total, failed = ScanResult(), []
    for member_id in watch.take_due(before=now - grace, limit=limit):
        try:
            with session.begin_nested():
                result = scan_members([member_id], now=now)
        except Exception:
            failed.append(member_id)
            continue
        total.add(result)
    if failed:
        watch.postpone(failed, until=now + retry_after)
    return total, failed


def sweep_candidates(*, now: datetime) -> list[uuid.UUID]:
    """The members the periodic sweep visits, in one indexed query: those whose next check has
    passed (a dose deadline or midnight that can change a finding, `domain.safety.next_check`; or a
    write whose scan message may have been lost) and those never scanned. Everyone else has nothing
    time alone could change, so the sweep does not look at them."""
    return watch.due(now=now)


def batches(ids: Sequence[uuid.UUID], size: int = SWEEP_BATCH) -> Iterator[list[uuid.UUID]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


# --- escalation and delivery ------------------------------------------------------------------------


def escalate_overdue(*, now: datetime, settings: rules.SafetySettings = SETTINGS) -> int:
    """Escalate every urgent flag still open `urgent_sla` after it opened: set `escalated_at` once
    and notify every admin. Set-based and idempotent; the number of flags escalated."""
    escalated = list(
        session.execute(
            update(Flag)
            .where(
                Flag.id.in_(
                    select(Flag.id)
                    .where(
                        Flag.tier == int(rules.Tier.URGENT),
                        Flag.status == FlagStatus.OPEN.value,
                        Flag.escalated_at.is_(None),
                        Flag.created_at <= now - settings.urgent_sla,
                    )
                    .with_for_update(skip_locked=True)
                )
            )
            .values(escalated_at=now)
            .returning(Flag.id)
        ).scalars()
    )
    if not escalated:
        return 0
    admins = _admin_ids()
    if not admins:
        # Nobody to escalate to: loud in the logs, and a banner on every coach's dashboard
        # (`unescalated_overdue`) until an admin exists; `companion up` warns at start.
        log.error("urgent flags past their SLA and no admin account to tell", extra={"flags": len(escalated)})
    written = _write_notifications(
        [
            row
            for flag_id in escalated
            for row in _notifications(admins, flag_id, NotificationKind.ESCALATION, now=now)
        ]
    )
    if written:
        jobs.enqueue_once_after_commit(jobs.DELIVER_NOTIFICATIONS)
    return len(escalated)


def unescalated_overdue(*, now: datetime, settings: rules.SafetySettings = SETTINGS) -> int:
    """Urgent flags still open past their SLA while no admin account exists: escalation reaches no one,
    so every coach's dashboard says so. 0 whenever an admin exists (one indexed query otherwise)."""
    if _admin_ids():
        return 0
    return session.execute(
        select(func.count())
        .select_from(Flag)
        .where(
            Flag.tier == int(rules.Tier.URGENT),
            Flag.status == FlagStatus.OPEN.value,
            Flag.created_at <= now - settings.urgent_sla,
        )
    ).scalar_one()


def admin_exists() -> bool:
    return bool(_admin_ids())


def deliver_pending(*, now: datetime, limit: int = DELIVERY_BATCH) -> int:
    """Hand unsent notifications to their channels, claiming them so two workers never send one
    twice; the number sent. A notification whose channel fails stays unsent for the next run."""
    pending = list(
        session.execute(
            select(StaffNotification)
            .where(StaffNotification.sent_at.is_(None))
            .order_by(StaffNotification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    sent = 0
    for notification in pending:
        channel = channels.CHANNELS.get(notification.channel)
        if channel is None:
            continue  # a channel this process does not know: left for one that does
        try:
            channel.send(notification)
        except Exception:  # a provider down or refusing: retried by the next run (beat, every minute)
            log.warning(
                "staff notification not sent",
                extra={"notification_id": notification.id, "channel": notification.channel},
                exc_info=True,
            )
            continue
        notification.sent_at = now
        sent += 1
    session.flush()
    return sent


# --- the coach side ---------------------------------------------------------------------------------


def _visible(actor: User) -> Any:
    """The flags `actor` may see: an admin all of them; a coach those of members on their caseload."""
    query = select(Flag)
    if actor.role != Role.ADMIN:
        query = query.join(
            CoachAssignment,
            and_(
                CoachAssignment.member_id == Flag.member_id,
                CoachAssignment.coach_id == actor.id,
                CoachAssignment.ended_at.is_(None),
            ),
        )
    return query


def flag_view(flag: Flag) -> dict[str, Any]:
    return {
        "id": flag.id,
        "member_id": flag.member_id,
        "rule": flag.rule,
        "rule_version": flag.rule_version,
        "severity": rules.Tier(flag.tier).label,
        "status": flag.status,
        "summary": flag.summary,
        "symptoms": list(flag.symptoms),
        "medications": list(flag.medications),
        "evidence": list(flag.evidence),
        "first_seen": flag.first_seen,
        "last_seen": flag.last_seen,
        "created_at": flag.created_at,
        "updated_at": flag.updated_at,
        "acknowledged_by": flag.acknowledged_by,
        "acknowledged_at": flag.acknowledged_at,
        "resolved_by": flag.resolved_by,
        "resolved_at": flag.resolved_at,
        "resolution_note": flag.resolution_note,
        "escalated_at": flag.escalated_at,
        "cleared_at": flag.cleared_at,
        "cleared_reason": flag.cleared_reason,
        "cleared_evidence": list(flag.cleared_evidence or ()),
        "queue": "coach" if flag.assigned_coach_id is not None else "admins",
        "assigned_coach_id": flag.assigned_coach_id,
    }


def list_flags(
    actor: User,
    *,
    status: str | None,
    severity: str | None,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> dict[str, Any]:
    """`GET /coach/flags`: most urgent first, then oldest (by when the flag opened), keyset-paged.
    Without `status`, the flags still to handle (open and acknowledged)."""
    query = _visible(actor).where(Flag.status.in_([status] if status else _UNRESOLVED))
    if severity:
        query = query.where(Flag.tier == int(rules.Tier[severity.upper()]))
    filters = ("flags", actor.id, status, severity)
    after = decode_page_cursor(cursor, filters=filters)
    if after:
        tier, created_at, flag_id = _flag_cursor(after)
        query = query.where(
            or_(
                Flag.tier < tier,
                and_(Flag.tier == tier, tuple_(Flag.created_at, Flag.id) > (created_at, flag_id)),
            )
        )
    flags = list(
        session.execute(query.order_by(Flag.tier.desc(), Flag.created_at, Flag.id).limit(limit + 1)).scalars()
    )
    more = len(flags) > limit
    flags = flags[:limit]
    audit.record_many(
        "flags.listed", actor_id=actor.id, now=now, subject_member_ids=[f.member_id for f in flags]
    )
    last = flags[-1] if flags else None
    return {
        "items": [flag_view(f) for f in flags],
        "next_cursor": encode_page_cursor(
            [last.tier, last.created_at.isoformat(), str(last.id)], filters=filters
        )
        if more and last
        else None,
    }


def _flag_cursor(after: list[Any]) -> tuple[int, datetime, uuid.UUID]:
    try:
        tier, created_at, flag_id = after
        instant = datetime.fromisoformat(str(created_at))
        localtime.to_utc(instant)
        return int(tier), instant, uuid.UUID(str(flag_id))
    except (ValueError, TypeError, OverflowError) as exc:
        raise cursor_error() from exc


def _flag_for(actor: User, flag_id: uuid.UUID) -> Flag:
    flag = session.execute(
        _visible(actor).where(Flag.id == flag_id).with_for_update(of=Flag)
    ).scalar_one_or_none()
    if flag is None:
        raise NotFound("No such flag on your caseload.")
    return flag


def acknowledge(actor: User, flag_id: uuid.UUID, *, now: datetime) -> Flag:
    """`POST /coach/flags/{id}/acknowledge`: the flag is being handled; it no longer escalates.
    Acknowledging it again changes nothing (the first who and when stay).

    :raises NotFound: not a flag `actor` may see.
    :raises Conflict: the flag is resolved, or cleared (no longer true: nothing to handle).
    """
    flag = _flag_for(actor, flag_id)
    if flag.status == FlagStatus.RESOLVED:
        raise Conflict("This flag is resolved.", current=_dumped(flag))
    if flag.status == FlagStatus.CLEARED:
        raise Conflict("This flag was cleared: it is no longer true.", current=_dumped(flag))
    if flag.status == FlagStatus.OPEN:
        flag.status = FlagStatus.ACKNOWLEDGED.value
        flag.acknowledged_by = actor.id
        flag.acknowledged_at = now
        flag.updated_at = now
        session.flush()
        audit.record(
            "flag.acknowledged",
            actor_id=actor.id,
            now=now,
            subject_member_id=flag.member_id,
            flag_id=str(flag.id),
            rule=flag.rule,
        )
    return flag


def resolve(actor: User, flag_id: uuid.UUID, note: str, *, now: datetime) -> Flag:
    """`POST /coach/flags/{id}/resolve`: closed, with the coach's note. From open or acknowledged.

    :raises NotFound: not a flag `actor` may see.
    :raises Conflict: already resolved, or cleared (the stored flag under `error.current`).
    """
    flag = _flag_for(actor, flag_id)
    if flag.status == FlagStatus.RESOLVED:
        raise Conflict("This flag is already resolved.", current=_dumped(flag))
    if flag.status == FlagStatus.CLEARED:
        raise Conflict("This flag was cleared: it is no longer true.", current=_dumped(flag))
    flag.status = FlagStatus.RESOLVED.value
    flag.resolved_by = actor.id
    flag.resolved_at = now
    flag.resolution_note = note
    flag.updated_at = now
    session.flush()
    audit.record(
        "flag.resolved",
        actor_id=actor.id,
        now=now,
        subject_member_id=flag.member_id,
        flag_id=str(flag.id),
        rule=flag.rule,
    )
    return flag


def _dumped(flag: Flag) -> dict[str, Any]:
    from companion.safety.schemas import FlagSchema

    return FlagSchema().dump(flag_view(flag))


def _export(member_id: uuid.UUID) -> dict[str, Any]:
    """The flags raised about the member and what staff wrote and did about them (GET /me/export)."""
    flags = session.execute(
        select(Flag).where(Flag.member_id == member_id).order_by(Flag.created_at)
    ).scalars()
    return {
        "flags": [
            {
                "id": str(f.id),
                "rule": f.rule,
                "rule_version": f.rule_version,
                "tier": f.tier,
                "status": f.status,
                "summary": f.summary,
                "symptoms": list(f.symptoms or []),
                "medications": list(f.medications or []),
                "first_seen": f.first_seen.isoformat(),
                "last_seen": f.last_seen.isoformat(),
                "created_at": f.created_at.isoformat(),
                "acknowledged_by": str(f.acknowledged_by) if f.acknowledged_by else None,
                "acknowledged_at": f.acknowledged_at.isoformat() if f.acknowledged_at else None,
                "resolved_by": str(f.resolved_by) if f.resolved_by else None,
                "resolved_at": f.resolved_at.isoformat() if f.resolved_at else None,
                "staff_note": f.resolution_note,
            }
            for f in flags
        ]
    }


privacy.register_exporter("safety", _export)
