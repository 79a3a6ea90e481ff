"""The safety watch (`safety_watch`): when each member's rules must run next, kept in the database so
that a lost `safety.scan_member` message or a quiet member's coming deadline is found by the pass
that runs every minute (`take_due`) and the hourly sweep (`due`, which also finds never-scanned members).

Ordering, so no write is ever left unscanned: a write sets its member's row in its own transaction
(`request_check`); a scan first locks its members' rows (`claim`), which waits for any writer still
holding one, then reads the records, then sets each row to its next check. A write that commits
before the claim is read by the scan; one that comes after waits for the scan to commit and then
marks the row due again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import ARRAY, DateTime, Uuid, bindparam, event, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from companion import jobs
from companion.accounts.models import Member
from companion.db import session
from companion.safety.models import SafetyWatch

_REQUESTED = "companion.safety_watch_requested"


#: A write finds its member already due since at most this long: a scan is pending (asked for by the
#: write that made the row due, whose message went out), so it does not publish another message. A row
#: due for longer (a lost message, or a deadline the sweep has not reached) is made due again from now,
#: and the write publishes: a lost message delays a scan by this long at most while writes go on, and
#: the sweep over due rows catches a member who writes nothing more.
PENDING_SCAN_SECONDS = 60

#: The row write behind every scan request, as SQL other statements embed (`tracking.rowset` puts it
#: in the same statement as the records it inserts): parameters `member_id`, `now`; a WHERE may follow
#: REQUEST_SQL. Its one row says whether the scan message must be published.
REQUEST_SQL = (
    "INSERT INTO safety_watch (member_id, next_check_at) "
    "SELECT CAST(:member_id AS uuid), CAST(:now AS timestamptz)"
)
REQUEST_CONFLICT_SQL = (
    "ON CONFLICT (member_id) DO UPDATE SET next_check_at = CASE "
    "WHEN safety_watch.next_check_at <= EXCLUDED.next_check_at "
    f"AND safety_watch.next_check_at > EXCLUDED.next_check_at - interval '{PENDING_SCAN_SECONDS} seconds' "
    "THEN safety_watch.next_check_at ELSE EXCLUDED.next_check_at END "
    "RETURNING next_check_at = CAST(:now AS timestamptz) AS publish"
)
_REQUEST = text(f"{REQUEST_SQL} {REQUEST_CONFLICT_SQL}")


def request_check(member_id: uuid.UUID, *, now: datetime) -> None:
    """Mark the member due for a scan (once per transaction): a new or changed entry or plan; the
    `safety.scan_member` message goes after commit unless a scan is already pending."""
    if member_id in session().info.get(_REQUESTED, ()):
        return
    publish = session.execute(_REQUEST, {"member_id": member_id, "now": now}).scalar_one()
    requested(member_id, publish=bool(publish))


def requested(member_id: uuid.UUID, *, publish: bool) -> None:
    """A statement of this transaction marked the member due (`REQUEST_SQL`); queue the message if it
    said to."""
    session().info.setdefault(_REQUESTED, set()).add(member_id)
    if publish:
        jobs.enqueue_once_after_commit(jobs.SCAN_MEMBER, member_id=str(member_id))


def claim(member_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime | None]:
    """Lock the members' rows for the rest of the transaction (creating missing ones), before their
    records are read; each row's next check as it stood (when a write made it due: the flag latency's
    start). Ids of members that no longer exist are ignored."""
    if not member_ids:
        return {}
    existing = select(Member.id, literal_column("NULL::timestamptz")).where(
        Member.id == func.any(bindparam("ids", list(member_ids), type_=ARRAY(Uuid)))
    )
    statement = insert(SafetyWatch).from_select(["member_id", "next_check_at"], existing.order_by(Member.id))
    return dict(
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[SafetyWatch.member_id],
                set_={"next_check_at": SafetyWatch.next_check_at},  # a no-op that takes the row lock
            ).returning(SafetyWatch.member_id, SafetyWatch.next_check_at)
        ).all()
    )


def schedule(next_checks: Mapping[uuid.UUID, datetime | None]) -> None:
    """Set each claimed member's next check, in one statement."""
    if not next_checks:
        return
    session.execute(
        text(
            "UPDATE safety_watch AS w SET next_check_at = s.at "
            "FROM unnest(:ids, :ats) AS s(member_id, at) WHERE w.member_id = s.member_id"
        ).bindparams(
            bindparam("ids", type_=ARRAY(Uuid)), bindparam("ats", type_=ARRAY(DateTime(timezone=True)))
        ),
        {"ids": list(next_checks), "ats": list(next_checks.values())},
    )


def take_due(*, before: datetime, limit: int) -> list[uuid.UUID]:
    """Lock up to `limit` rows due at or before `before` (oldest first) for the rest of the
    transaction, skipping rows another transaction holds (a writer, or another pass's batch): the
    every-minute pass scans these members. Indexed by `ix_safety_watch_next_check_at`."""
    return list(
        session.execute(
            select(SafetyWatch.member_id)
            .where(SafetyWatch.next_check_at <= before)
            .order_by(SafetyWatch.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def postpone(member_ids: Sequence[uuid.UUID], *, until: datetime) -> None:
    """Move the members' next check to `until` (a member whose scan failed must not block the pass)."""
    schedule(dict.fromkeys(member_ids, until))


def due(*, now: datetime) -> list[uuid.UUID]:
    """The members the sweep visits: next check passed, or never scanned; in id order."""
    never = select(Member.id).where(
        ~select(SafetyWatch.member_id).where(SafetyWatch.member_id == Member.id).exists()
    )
    passed = select(SafetyWatch.member_id).where(SafetyWatch.next_check_at <= now)
    ids = passed.union(never).subquery()
    return list(session.execute(select(ids.c[0]).order_by(ids.c[0])).scalars())


@event.listens_for(Session, "after_commit")
def _requests_committed(sess: Session) -> None:
    if not sess.in_nested_transaction():  # a released savepoint commits nothing yet
        sess.info.pop(_REQUESTED, None)


@event.listens_for(Session, "after_rollback")
def _requests_rolled_back(sess: Session) -> None:
    # Also a savepoint's (one sync item): its row write may be undone, so the next write redoes it.
    sess.info.pop(_REQUESTED, None)
