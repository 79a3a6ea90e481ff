"""Beat's schedule, in UTC. Member-local times are never beat entries: due rows in PostgreSQL are."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from companion.config import Config

_CONFIG = Config.from_env()
#: The dispatcher's period, from the settings (tests run it every few seconds).
_NUDGE_SECONDS = _CONFIG.nudge_dispatch_seconds
#: The safety pass's period (SAFETY_PASS_SECONDS).
_SAFETY_PASS_SECONDS = _CONFIG.safety_pass_seconds

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Every minute (NUDGE_DISPATCH_SECONDS): plan the nudges falling due within the hour, claim the
    # due rows (FOR UPDATE SKIP LOCKED) and hand them to `nudges.deliver` in batches. Reminders are
    # rows with a UTC due time, never eta/countdown messages: Redis re-delivers an unacked message
    # after visibility_timeout (a double nudge) and loses everything when it goes down; a row waits.
    "nudges.dispatch_due": {"task": "nudges.dispatch_due", "schedule": float(_NUDGE_SECONDS)},
    # Every minute: proves beat and the worker are alive end to end (the readiness of the queue).
    # Later issues add the nudge dispatcher here, with its reason.
    "system.heartbeat": {"task": "system.heartbeat", "schedule": 60.0},
    # Every minute: an insurer export is a row before it is a message; a queued export whose
    # message was lost (Redis down at commit, a worker killed) is sent again after a few minutes,
    # and a running one whose worker died is queued again (companion/exports/build_tx.py).
    "exports.sweep": {"task": "exports.sweep", "schedule": 60.0},
    # Every minute (SAFETY_PASS_SECONDS): the members whose `safety_watch` row is still due after a
    # grace: their scan message was lost (Redis down, a worker killed) or a dose deadline passed. The
    # write marked the row due in its own transaction, so a lost message costs about a minute, not an
    # hour. A pass not started within its period is dropped (`expires`): the next one does its work.
    "safety.scan_due": {
        "task": "safety.scan_due",
        "schedule": float(_SAFETY_PASS_SECONDS),
        "options": {"expires": float(_SAFETY_PASS_SECONDS)},
    },
    # Hourly at :07: what only absence reveals (doses missed past their grace, no entry for days) and
    # windows that slide with the date raise no entry event; the pass above finds them within a
    # minute once their row is due, and this visits the members never scanned (who have no row).
    # Set-based: one query picks the members, batches of 500 fan out to the workers
    # (bench/safety_sweep.py measures it).
    "safety.sweep": {"task": "safety.sweep", "schedule": crontab(minute=7)},
    # Every minute: urgent flags not acknowledged within the SLA (2 h) reach the admins within a
    # minute of it; escalated_at is set once, so a repeated run notifies no one twice.
    "safety.escalate_overdue": {"task": "safety.escalate_overdue", "schedule": 60.0},
    # Every minute: the safety net for staff notifications whose after-commit send was lost.
    "safety.deliver_notifications": {"task": "safety.deliver_notifications", "schedule": 60.0},
}
