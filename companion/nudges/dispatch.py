"""Claiming: decide each due row with the pure `domain.nudges.delivery_decisions`, in batches.

`claim_due` locks a batch of pending rows whose `due_at` has come (`SELECT ... FOR UPDATE SKIP
LOCKED`, so concurrent dispatchers never take the same row), loads what the decisions need for the
whole batch (settings, what each member was sent on their local day, check-ins, logged days, last
entries), and writes the outcome with one UPDATE per outcome:

* send: `sending`, leased to a delivery task until `next_attempt_at`;
* hold (quiet hours, or not yet due in the member's new zone): `due_at` moves to the hold's end;
* skip (expired, done, muted, over the cap): `skipped`, with the reason.

A snoozed row coming due again (`send_round` > 0) was already decided and sent once: it is sent again
unless it has expired or its kind has been muted since; it is neither capped nor held, as the member
chose the time.

Several dispatchers may claim at once (beat's and its helpers, and the event path's `deliver`): the
rows are disjoint (SKIP LOCKED), and the members too: a claim takes a transaction-scoped advisory lock
per member and leaves the rows of a member another claim holds for a later pass, so the daily cap
counts every send of the member's day.

`claim_stale` takes back `sending` rows whose lease ran out (a delivery task lost with Redis, or a
worker killed) or whose push retry is due, for another delivery task.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict, namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, text, update

from companion.db import session
from companion.db.sql import any_of, pg_array, records
from companion.domain.nudges import (
    DEFAULT_POLICY,
    MemberSettings,
    NudgeKind,
    NudgePolicy,
    Outcome,
    PlannedNudge,
    cap_window,
    delivery_decisions,
    is_done,
)
from companion.nudges import inputs
from companion.nudges.models import Nudge, NudgeStatus, planned_of

log = logging.getLogger(__name__)

#: Rows decided per transaction.
CLAIM_BATCH = 1000
#: The longest local day (25 h) and some: sent rows older than this cannot count toward today's cap.
CAP_LOOKBACK = timedelta(hours=27)

_N = Nudge.__table__.c
_COLUMNS = (
    _N.id,
    _N.member_id,
    _N.kind,
    _N.dedupe_key,
    _N.local_date,
    _N.local_slot,
    _N.zone,
    _N.due_at,
    _N.expires_at,
    _N.template,
    _N.subject_id,
    _N.send_round,
)
#: `last_error` of the rows of a member whose stored settings the domain refuses.
REFUSED = "member settings refused"
#: First key of the advisory locks that let one claim at a time decide a member's rows.
MEMBER_CLAIM_LOCK_NAMESPACE = 71_003
#: Statuses of rows that were (or are being) sent: what the daily cap counts.
SENT_STATUSES = (NudgeStatus.SENDING.value, NudgeStatus.SENT.value, NudgeStatus.FAILED.value)
#: Those rows, coach messages aside (never capped), spelled as `ix_nudges_member_sent`'s predicate:
#: literal values, so PostgreSQL can prove a plan may use the index (bound values would not do).
SENT_ROWS = text(
    "nudges.status IN ({}) AND nudges.kind <> '{}'".format(
        ", ".join(f"'{status}'" for status in SENT_STATUSES), NudgeKind.COACH_MESSAGE.value
    )
)


@dataclass
class Claimed:
    send: list[uuid.UUID] = field(default_factory=list)
    held: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def decided(self) -> int:
        return len(self.send) + self.held + sum(self.skipped.values())


#: A row as `_COLUMNS` reads it, for rows decided before they are inserted.
Row = namedtuple("Row", [column.name for column in _COLUMNS])


def row_of(row_id: uuid.UUID, member_id: uuid.UUID, nudge: PlannedNudge) -> Any:
    """The row a planned nudge becomes (first send round), as `decide` reads rows."""
    return Row(
        row_id, member_id, nudge.kind.value, nudge.dedupe_key, nudge.local_date, nudge.local_slot,
        nudge.zone, nudge.due_at, nudge.expires_at, nudge.template, nudge.subject_id, 0,
    )  # fmt: skip


def claim_due(
    now: datetime,
    *,
    lease: timedelta,
    limit: int = CLAIM_BATCH,
    nudge_ids: Sequence[uuid.UUID] | None = None,
    policy: NudgePolicy = DEFAULT_POLICY,
) -> Claimed:
    """Decide a batch of due pending rows (all due rows, or those of `nudge_ids`). Flushes only."""
    query = select(*_COLUMNS).where(_N.status == NudgeStatus.PENDING.value, _N.due_at <= now)
    if nudge_ids is not None:
        query = query.where(any_of(_N.id, nudge_ids))
    rows = records(session.execute(query.order_by(_N.due_at).limit(limit).with_for_update(skip_locked=True)))
    if not rows:
        return Claimed()
    decided = decide(rows, now=now, policy=policy)
    if decided.send:
        session.execute(
            update(Nudge.__table__)
            .where(any_of(_N.id, decided.send))
            .values(status=NudgeStatus.SENDING.value, next_attempt_at=now + lease)
        )
    if decided.holds:
        session.execute(
            update(Nudge.__table__).where(_N.id == bindparam("b_id")).values(due_at=bindparam("b_until")),
            [{"b_id": row_id, "b_until": until} for row_id, until in decided.holds.items()],
        )
    for reason, ids in decided.skips.items():
        session.execute(
            update(Nudge.__table__)
            .where(any_of(_N.id, ids))
            .values(status=NudgeStatus.SKIPPED.value, skip_reason=reason)
        )
    if decided.resent_back:  # a snoozed nudge that can no longer go out stays in the inbox as it was
        session.execute(
            update(Nudge.__table__)
            .where(any_of(_N.id, decided.resent_back))
            .values(status=NudgeStatus.SENT.value)
        )
    if decided.refused:
        session.execute(
            update(Nudge.__table__)
            .where(any_of(_N.id, decided.refused))
            .values(status=NudgeStatus.FAILED.value, last_error=REFUSED)
        )
    return decided.claimed()


@dataclass
class Decided:
    """What `decide` made of a batch of rows, by row id, before anything is written."""

    send: list[uuid.UUID] = field(default_factory=list)
    #: Held (quiet hours, or not yet due in the member's new zone) until then.
    holds: dict[uuid.UUID, datetime] = field(default_factory=dict)
    skips: dict[str, list[uuid.UUID]] = field(default_factory=lambda: defaultdict(list))
    #: Snoozed rows that can no longer go out: back to `sent`, as they were.
    resent_back: list[uuid.UUID] = field(default_factory=list)
    #: Rows of members whose stored settings the domain refuses: `failed`. (Rows of a member another
    #: claim is deciding right now are in none of these: left as they are, for a later pass.)
    refused: list[uuid.UUID] = field(default_factory=list)

    def only(self, ids: set[uuid.UUID]) -> Decided:
        """The decisions of these rows only."""
        return Decided(
            send=[i for i in self.send if i in ids],
            holds={i: until for i, until in self.holds.items() if i in ids},
            skips={
                reason: kept for reason, rows in self.skips.items() if (kept := [i for i in rows if i in ids])
            },
            resent_back=[i for i in self.resent_back if i in ids],
            refused=[i for i in self.refused if i in ids],
        )

    def claimed(self) -> Claimed:
        skipped = {reason: len(ids) for reason, ids in self.skips.items()}
        if self.resent_back:
            skipped["snooze_expired"] = len(self.resent_back)
        return Claimed(send=self.send, held=len(self.holds), skipped=skipped)


def decide(
    rows: Sequence[Any],
    *,
    now: datetime,
    policy: NudgePolicy = DEFAULT_POLICY,
    settings: dict[uuid.UUID, MemberSettings] | None = None,
) -> Decided:
    """Decide due rows (records with `_COLUMNS`' fields) with `domain.nudges.delivery_decisions`, member
    by member, holding each member's claim lock until the transaction ends; `settings`: the members'
    settings when the caller has just read them. Reads only."""
    decided = Decided()
    members = _lock_members({row.member_id for row in rows})
    by_member: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for row in rows:
        if row.member_id in members:  # otherwise another claim is deciding this member: a later pass
            by_member[row.member_id].append(row)
    rows = [row for member_rows in by_member.values() for row in member_rows]
    if settings is None:
        settings = inputs.member_settings(list(by_member))
    sent_today = _sent_today({m: settings[m] for m in by_member if m in settings}, now=now, policy=policy)
    done = _done(rows, settings, policy=policy)

    for member_id, member_rows in by_member.items():
        member = settings.get(member_id)
        if member is None:
            decided.refused.extend(row.id for row in member_rows)
            continue
        fresh: dict[str, Any] = {}
        planned: list[PlannedNudge] = []
        for row in member_rows:
            nudge = planned_of(row)
            if row.send_round > 0:
                expired = row.expires_at is not None and now >= row.expires_at
                muted = NudgeKind(row.kind) in member.muted_kinds
                (decided.resent_back if expired or muted else decided.send).append(row.id)
            elif nudge is None:
                decided.skips["expired"].append(row.id)
            else:
                fresh[row.dedupe_key] = row
                planned.append(nudge)
        decisions = delivery_decisions(
            planned,
            settings=member,
            sent_today_count=sent_today.get(member_id, 0),
            now=now,
            done_keys={key for key in fresh if fresh[key].id in done},
            policy=policy,
        )
        for nudge, decision in decisions:
            row_id = fresh[nudge.dedupe_key].id
            if decision.outcome is Outcome.SEND:
                decided.send.append(row_id)
            elif decision.outcome is Outcome.HOLD_UNTIL:
                decided.holds[row_id] = decision.until
            else:
                decided.skips[decision.outcome.value.removeprefix("skip_")].append(row_id)
    return decided


def _lock_members(member_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """The members among these whose claim lock this transaction now holds (the others are held)."""
    return set(
        session.execute(
            text(
                "SELECT m FROM unnest(CAST(:ids AS uuid[])) AS m "
                "WHERE pg_try_advisory_xact_lock(:ns, hashtext(m::text))"
            ),
            {"ids": pg_array(member_ids), "ns": MEMBER_CLAIM_LOCK_NAMESPACE},
        ).scalars()
    )


def claim_stale(now: datetime, *, lease: timedelta, limit: int = CLAIM_BATCH) -> list[uuid.UUID]:
    """`sending` rows whose lease ended or whose push retry is due, leased again. Flushes only."""
    ids = list(
        session.execute(
            select(_N.id)
            .where(_N.status == NudgeStatus.SENDING.value, _N.next_attempt_at <= now)
            .order_by(_N.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    if ids:
        session.execute(update(Nudge.__table__).where(any_of(_N.id, ids)).values(next_attempt_at=now + lease))
    return ids


def _sent_today(
    settings: dict[uuid.UUID, MemberSettings], *, now: datetime, policy: NudgePolicy
) -> dict[uuid.UUID, int]:
    """Nudges counting toward the cap sent (or being sent) on each member's local day of `now`."""
    if not settings:
        return {}
    when = func.coalesce(_N.sent_at, _N.due_at)
    rows = session.execute(
        select(_N.member_id, _N.kind, when).where(
            any_of(_N.member_id, settings), SENT_ROWS, when >= now - CAP_LOOKBACK
        )
    )
    windows = {member_id: cap_window(now, s.zone) for member_id, s in settings.items()}
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for member_id, kind, at in rows:
        start, end = windows[member_id]
        if start <= at < end and policy.counts_toward_cap(NudgeKind(kind)):
            counts[member_id] += 1
    return counts


def _done(
    rows: Sequence[Any], settings: dict[uuid.UUID, MemberSettings], *, policy: NudgePolicy
) -> set[uuid.UUID]:
    """Ids of the rows whose ask has happened since planning (`domain.nudges.is_done`)."""
    doses = [r for r in rows if r.kind == NudgeKind.DOSE_REMINDER and r.member_id in settings]
    days = [r for r in rows if r.kind == NudgeKind.LOG_REMINDER and r.member_id in settings]
    quiet = [r for r in rows if r.kind == NudgeKind.REENGAGEMENT and r.member_id in settings]
    done: set[uuid.UUID] = set()
    if doses:
        first = min(r.local_date for r in doses) - timedelta(days=1)
        last = max(r.local_date for r in doses) + timedelta(days=1)
        checkins = inputs.checkins(sorted({r.member_id for r in doses}), first=first, last=last)
        for row in doses:
            nudge = planned_of(row)
            zone = settings[row.member_id].zone
            if nudge is not None and is_done(nudge, zone=zone, checkins=checkins.get(row.member_id, ())):
                done.add(row.id)
    if days:
        logged = inputs.logged_days((r.member_id, r.local_date) for r in days)
        done.update(r.id for r in days if (r.member_id, r.local_date) in logged)
    if quiet:
        entries = inputs.last_entry_dates({r.member_id: settings[r.member_id] for r in quiet})
        for row in quiet:
            nudge = planned_of(row)
            zone = settings[row.member_id].zone
            last_entry = entries.get(row.member_id)
            if nudge is not None and is_done(nudge, zone=zone, last_entry_date=last_entry, policy=policy):
                done.add(row.id)
    return done
