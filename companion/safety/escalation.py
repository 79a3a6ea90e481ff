"""Escalation of urgent flags left unacknowledged past their SLA, and delivery of the staff notifications
the scans and escalation queue (the outbox)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import (
    func,
    select,
    update,
)

from companion import jobs
from companion.db import session
from companion.domain import safety as rules
from companion.safety import channels
from companion.safety.findings import admin_ids, notification_rows, write_notifications
from companion.safety.loading import SETTINGS
from companion.safety.models import (
    Flag,
    FlagStatus,
    NotificationKind,
    StaffNotification,
)

log = logging.getLogger(__name__)

#: The outbox is drained this many notifications at a time.
DELIVERY_BATCH = 200


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
    admins = admin_ids()
    if not admins:
        # Nobody to escalate to: loud in the logs, and a banner on every coach's dashboard
        # (`unescalated_overdue`) until an admin exists; `companion up` warns at start.
        log.error("urgent flags past their SLA and no admin account to tell", extra={"flags": len(escalated)})
    written = write_notifications(
        [
            row
            for flag_id in escalated
            for row in notification_rows(admins, flag_id, NotificationKind.ESCALATION, now=now)
        ]
    )
    if written:
        jobs.enqueue_once_after_commit(jobs.DELIVER_NOTIFICATIONS)
    return len(escalated)


def unescalated_overdue(*, now: datetime, settings: rules.SafetySettings = SETTINGS) -> int:
    """Urgent flags still open past their SLA while no admin account exists: escalation reaches no one,
    so every coach's dashboard says so. 0 whenever an admin exists (one indexed query otherwise)."""
    if admin_ids():
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
    return bool(admin_ids())


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
