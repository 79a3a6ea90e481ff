"""Beat's schedule, in UTC. Member-local times are never beat entries: due rows in PostgreSQL are."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Every minute: proves beat and the worker are alive end to end (the readiness of the queue).
    # Later issues add the nudge dispatcher and the safety sweep here, each with its reason.
    "system.heartbeat": {"task": "system.heartbeat", "schedule": 60.0},
    # Every minute: an insurer export is a row before it is a message; a queued export whose
    # message was lost (Redis down at commit, a worker killed) is sent again after a few minutes,
    # and a running one whose worker died is queued again (companion/exports/services.py).
    "exports.sweep": {"task": "exports.sweep", "schedule": 60.0},
}
