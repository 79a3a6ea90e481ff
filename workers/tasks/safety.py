"""Safety tasks: thin, named boundaries around companion/safety/ (scans; escalation). Ids in, counts logged.

* `safety.scan_member`: after each new or changed entry (sent by the web side after commit),
  debounced per member (companion/safety/debounce.py).
* `safety.scan_due` (beat, every minute): scans the members whose `safety_watch` row is still due
  after a grace (a lost or late scan message, a dose deadline passed), in batches until none is left.
  The row, not the message, is the guarantee: a write marks its member due in its own transaction.
* `safety.sweep` (beat, hourly): picks, in one query, the members whose flags time alone can change (missed
  doses, disengagement, sliding windows) and fans them out in batches to `safety.scan_batch`.
* `safety.escalate_overdue` (beat): urgent flags not acknowledged within the SLA go to the admins.
* `safety.deliver_notifications`: hands staff notifications to their channels (after commit, and
  from beat as the safety net).

Every task is idempotent: scanning the same records again changes nothing and alerts no one
(flags and alerts are keyed in the database), escalation is set once, delivery claims its rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

import redis
from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from companion import jobs, metrics
from companion.db import unit_of_work, utcnow
from companion.safety import debounce, escalation, services

log = logging.getLogger(__name__)

SCAN_BATCH = "safety.scan_batch"
SCAN_DUE = "safety.scan_due"
SWEEP = "safety.sweep"
ESCALATE_OVERDUE = "safety.escalate_overdue"

_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


def _admission(member_id: str, trailing: bool) -> debounce.Admission:
    client = redis.Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=1, socket_connect_timeout=1)
    try:
        return debounce.admit(client, member_id, trailing=trailing)
    except redis.RedisError:
        return debounce.Admission(debounce.Decision.SCAN)  # no debounce without Redis: scan now
    finally:
        client.close()


def _counts(result: services.ScanResult) -> dict[str, int]:
    return {
        "opened": result.opened,
        "updated": result.updated,
        "cleared": result.cleared,
        "alerts": result.alerts,
    }


def _measure(result: services.ScanResult) -> None:
    metrics.flags_opened(result.opened_rules)
    for rule, tier, seconds in result.latencies:
        metrics.observe_flag_latency(seconds, rule, tier)


#: The pass takes no new batch after this long, so it ends before beat sends the next one.
PASS_BUDGET_SECONDS = 45
#: A member whose scan fails is tried again this much later (and logged at error level each time).
FAILED_SCAN_RETRY = timedelta(minutes=10)


@shared_task(name=jobs.SCAN_MEMBER, bind=True, **_RETRY)
def scan_member(self, member_id: str, trailing: bool = False) -> str:
    """Run the safety rules for one member, now or as the trailing scan of a debounce window."""
    admission = _admission(member_id, trailing)
    if admission.decision == debounce.Decision.DEFER:
        self.apply_async(kwargs={"member_id": member_id, "trailing": True}, countdown=admission.countdown)
    if admission.decision != debounce.Decision.SCAN:
        log.info("safety scan %s", admission.decision.value, extra={"member_id": member_id})
        return admission.decision.value
    with unit_of_work():
        result = services.scan_member(uuid.UUID(member_id), now=utcnow())
    _measure(result)
    log.info("safety scan", extra={"member_id": member_id, **_counts(result)})
    return debounce.Decision.SCAN.value


@shared_task(name=SCAN_BATCH, **_RETRY)
def scan_batch(member_ids: list[str]) -> int:
    """Run the safety rules for a batch of the sweep's members, in one transaction."""
    with unit_of_work():
        result = services.scan_members([uuid.UUID(m) for m in member_ids], now=utcnow())
    _measure(result)
    log.info("safety batch", extra={"members": result.members, **_counts(result)})
    return result.members


@shared_task(name=SCAN_DUE, **_RETRY)
def scan_due() -> int:
    """Scan every member still due after the grace, a batch per transaction, until none is left or
    the pass's time is up (the next pass goes on). A batch that fails for a reason other than the
    database is redone member by member, so one member's bad records never block the others."""
    grace = timedelta(seconds=current_app.config["COMPANION_SAFETY_PASS_GRACE_SECONDS"])
    started, total = time.monotonic(), services.ScanResult()
    while time.monotonic() - started < PASS_BUDGET_SECONDS:
        try:
            with unit_of_work():
                result = services.scan_due(now=utcnow(), grace=grace)
        except OperationalError:
            raise  # the database is away: Celery retries the pass with back-off
        except Exception:
            log.exception("safety pass batch failed; scanning its members one by one")
            with unit_of_work():
                result, failed = services.scan_due_isolated(
                    now=utcnow(), grace=grace, retry_after=FAILED_SCAN_RETRY
                )
            for member_id in failed:
                log.error("safety scan failed; retried later", extra={"member_id": str(member_id)})
        _measure(result)
        total.add(result)
        if result.members < services.SWEEP_BATCH:
            break
    if total.members:
        log.info("safety pass", extra={"members": total.members, **_counts(total)})
    return total.members


@shared_task(name=SWEEP, **_RETRY)
def sweep() -> int:
    """Pick the members with something to check and send them to `safety.scan_batch` in batches."""
    with unit_of_work():
        candidates = services.sweep_candidates(now=utcnow())
    for batch in services.batches(candidates):
        scan_batch.apply_async(kwargs={"member_ids": [str(m) for m in batch]})
    log.info("safety sweep", extra={"members": len(candidates)})
    return len(candidates)


@shared_task(name=ESCALATE_OVERDUE, **_RETRY)
def escalate_overdue() -> int:
    """Escalate urgent flags not acknowledged within the SLA to every admin, once."""
    with unit_of_work():
        escalated = escalation.escalate_overdue(now=utcnow())
    if escalated:
        log.info("safety escalation", extra={"flags": escalated})
    return escalated


@shared_task(name=jobs.DELIVER_NOTIFICATIONS, **_RETRY)
def deliver_notifications() -> int:
    """Hand pending staff notifications to their channels until none is left."""
    total = 0
    while True:
        with unit_of_work():
            sent = escalation.deliver_pending(now=utcnow())
        total += sent
        if sent < escalation.DELIVERY_BATCH:
            return total
