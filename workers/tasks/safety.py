"""Safety tasks: thin, named boundaries around companion/safety/services.py. Ids in, counts logged.

* `safety.scan_member`: after each new or changed entry (sent by the web side after commit),
  debounced per member (companion/safety/debounce.py).
* `safety.sweep` (beat): picks, in one query, the members whose flags time alone can change (missed
  doses, disengagement, sliding windows) and fans them out in batches to `safety.scan_batch`.
* `safety.escalate_overdue` (beat): urgent flags not acknowledged within the SLA go to the admins.
* `safety.deliver_notifications`: hands staff notifications to their channels (after commit, and
  from beat as the safety net).

Every task is idempotent: scanning the same records again changes nothing and alerts no one
(flags and alerts are keyed in the database), escalation is set once, delivery claims its rows.
"""

from __future__ import annotations

import logging
import uuid

import redis
from celery import shared_task
from flask import current_app
from sqlalchemy.exc import OperationalError

from companion import jobs, metrics
from companion.db import unit_of_work, utcnow
from companion.safety import debounce, services

log = logging.getLogger(__name__)

SCAN_BATCH = "safety.scan_batch"
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
    return {"opened": result.opened, "updated": result.updated, "alerts": result.alerts}


@shared_task(name=jobs.SCAN_MEMBER, bind=True, **_RETRY)
def scan_member(self, member_id: str, trailing: bool = False) -> str:  # type: ignore[no-untyped-def]
    """Run the safety rules for one member, now or as the trailing scan of a debounce window."""
    admission = _admission(member_id, trailing)
    if admission.decision == debounce.Decision.DEFER:
        self.apply_async(kwargs={"member_id": member_id, "trailing": True}, countdown=admission.countdown)
    if admission.decision != debounce.Decision.SCAN:
        log.info("safety scan %s", admission.decision.value, extra={"member_id": member_id})
        return admission.decision.value
    with unit_of_work():
        result = services.scan_member(uuid.UUID(member_id), now=utcnow())
    metrics.flags_opened(result.opened_rules)
    log.info("safety scan", extra={"member_id": member_id, **_counts(result)})
    return debounce.Decision.SCAN.value


@shared_task(name=SCAN_BATCH, **_RETRY)
def scan_batch(member_ids: list[str]) -> int:
    """Run the safety rules for a batch of the sweep's members, in one transaction."""
    with unit_of_work():
        result = services.scan_members([uuid.UUID(m) for m in member_ids], now=utcnow())
    metrics.flags_opened(result.opened_rules)
    log.info("safety batch", extra={"members": result.members, **_counts(result)})
    return result.members


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
        escalated = services.escalate_overdue(now=utcnow())
    if escalated:
        log.info("safety escalation", extra={"flags": escalated})
    return escalated


@shared_task(name=jobs.DELIVER_NOTIFICATIONS, **_RETRY)
def deliver_notifications() -> int:
    """Hand pending staff notifications to their channels until none is left."""
    total = 0
    while True:
        with unit_of_work():
            sent = services.deliver_pending(now=utcnow())
        total += sent
        if sent < services.DELIVERY_BATCH:
            return total
