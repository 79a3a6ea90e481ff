"""Nudge tasks: beat's dispatcher, batch delivery, and craving support right after a high rating.

Each is idempotent: rows are claimed with FOR UPDATE SKIP LOCKED, and every push is recorded before it
leaves (companion/nudges/delivery_tx.py), so a redelivered or repeated task never pushes twice.
"""

from __future__ import annotations

import logging
import uuid

from celery import shared_task
from sqlalchemy.exc import OperationalError

from companion import jobs, metrics
from companion.db import unit_of_work, utcnow
from companion.nudges import dispatcher_tx, services

log = logging.getLogger(__name__)


@shared_task(name=jobs.DISPATCH_NUDGES)
def dispatch_due(helper: bool = False) -> None:
    """Plan what falls due within the hour, claim what is due, hand it to `nudges.deliver` in batches.

    `helper`: asked for by a busy tick, to work beside it. Not retried: the next tick, a minute later,
    does the same work from the database.
    """
    tick = dispatcher_tx.dispatch_due(helper=helper)
    metrics.NUDGES_PLANNED.inc(tick.planned)
    log.info(
        "nudges dispatched",
        extra={
            "slot": tick.slot,
            "helpers_asked": tick.helpers_asked,
            "members_planned": tick.members_planned,
            "planned": tick.planned,
            "claimed": tick.claimed,
            "held": tick.held,
            "skipped": tick.skipped,
            "resent": tick.resent,
        },
    )


@shared_task(
    name=jobs.DELIVER_NUDGES,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def deliver(nudge_ids: list[str], claimed: bool = False) -> None:
    """Push these nudges (those still pending and due are claimed first, unless the dispatcher sent them:
    `claimed`). Safe to run twice."""
    report = dispatcher_tx.deliver([uuid.UUID(i) for i in nudge_ids], claimed=claimed)
    metrics.count_pushes(report.by_channel)
    log.info(
        "nudges delivered",
        extra={
            "nudges": report.nudges,
            "locked_elsewhere": report.locked_elsewhere,
            "pushes": dict(report.pushes),
            "finished": dict(report.finished),
        },
    )


@shared_task(
    name=jobs.CRAVING_SUPPORT,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def craving_support(member_id: str, craving_id: str) -> None:
    """Support right after a craving rated 8 or more: its row (made by the web side, or here) is pushed."""
    with unit_of_work():
        nudge_id = services.craving_support(uuid.UUID(member_id), uuid.UUID(craving_id), now=utcnow())
    if nudge_id is not None:
        metrics.count_pushes(dispatcher_tx.deliver([nudge_id]).by_channel)
