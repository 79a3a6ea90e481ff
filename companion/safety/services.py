"""Safety flags: run the pure rules (companion/domain/safety.py) over members' records and keep flags.

**Scanning.** `scan_members(ids, now=...)` loads each member's history for the rules' lookback
window in a handful of set-based queries (one per table, whatever the number of members), runs
`domain.safety.evaluate`, and records the findings. The same function serves one member after an
entry (task `safety.scan_member`) and a batch of the periodic sweep (`safety.scan_batch`).

The rest of the safety feature: histories are loaded by `safety.loading`, findings recorded as flags by
`safety.findings`, urgent flags escalated and staff notified by `safety.escalation`, and the coach's
queue is `safety.queue`; when a member is due for a scan is `safety.watch`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from companion.db import session
from companion.domain import safety as rules
from companion.safety import watch
from companion.safety.findings import ScanResult, record_findings
from companion.safety.loading import SETTINGS, load_histories

log = logging.getLogger(__name__)

#: The sweep hands members to `scan_batch` in groups of this many: one transaction and a few
#: queries per group, small enough that a batch holds its members' locks for well under a second.
SWEEP_BATCH = 500


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
