"""Insurer exports: build one (sent after the request commits) and the sweep that re-sends lost ones."""

from __future__ import annotations

import logging
import time
import uuid

from celery import shared_task
from sqlalchemy.exc import OperationalError

from companion import jobs, metrics
from companion.db import unit_of_work, utcnow
from companion.exports import build_tx

log = logging.getLogger(__name__)


@shared_task(name=jobs.BUILD_EXPORT, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def build(export_id: str) -> str:
    """Build one export. Idempotent: it claims the job (queued -> running) under a row lock, so a
    duplicate or late message, or one for a job already done, does nothing."""
    started = time.monotonic()
    outcome = build_tx.build_export(uuid.UUID(export_id), now=utcnow())
    metrics.EXPORT_BUILDS.labels(outcome).inc()
    if outcome != "skipped":
        metrics.EXPORT_DURATION.labels(outcome).observe(time.monotonic() - started)
    log.info("export build", extra={"export_id": export_id, "outcome": outcome})
    return outcome


@shared_task(name=jobs.SWEEP_EXPORTS)
def sweep() -> int:
    """Beat, every minute: re-send queued exports whose message was lost, re-queue those whose worker died."""
    with unit_of_work():
        sent = build_tx.resend_stale(now=utcnow())
    if sent:
        log.info("exports re-sent", extra={"count": sent})
    return sent
