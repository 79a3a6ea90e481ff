"""Recording the rules' findings as flags, alerts and staff notifications.

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

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert

from companion import jobs
from companion.accounts.models import Role, User
from companion.db import session
from companion.domain import clearing
from companion.domain import safety as rules
from companion.safety import channels
from companion.safety.loading import SETTINGS, Loaded, ids_param, load_histories
from companion.safety.models import (
    UNRESOLVED,
    Flag,
    FlagAlert,
    FlagStatus,
    NotificationKind,
    StaffNotification,
)

#: First key of the advisory locks that serialise writes of one member's flags.
FLAG_LOCK_NAMESPACE = 71_002


#: The synthetic evidence of a finding that cites no entry (disengagement): absence since that day.
NO_ENTRY_SINCE = "no_entry_since:"


_UNRESOLVED = UNRESOLVED


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
            .where(Flag.member_id == ids_param("ids", list(found)), Flag.status.in_(_UNRESOLVED))
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
    }
    result.cleared = _clear_untrue(found, unresolved, now=now, settings=settings)
    if not with_findings:
        session.flush()
        return result
    ids = ids_param("ids", list(with_findings))
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


def admin_ids() -> list[uuid.UUID]:
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
            admins = admin_ids()
        recipients = [coach_id] if coach_id is not None else admins or []
        notifications += notification_rows(
            recipients, flag_id, NotificationKind.URGENT_FLAG, alert_id=alert_id, now=now
        )
    return len(raised), write_notifications(notifications)


def notification_rows(
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


def write_notifications(rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    statement = insert(StaffNotification).on_conflict_do_nothing().returning(StaffNotification.id)
    return len(_insert_many(statement, rows))


def _insert_many(statement: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """One cached statement for any number of rows (SQLAlchemy batches them into multi-row INSERTs);
    the rows it returned: those ON CONFLICT did not skip."""
    return list(session.connection().execute(statement, rows).all())
