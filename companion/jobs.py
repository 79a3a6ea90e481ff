"""Send Celery tasks by name, and only once the surrounding transaction commits.

`companion` never imports `workers`: tests/test_architecture.py checks every name here is a task the
worker registers. This is at most once by design: if Redis is down at commit, the data is saved and
the message is lost, so every on-event task has a periodic sweep that catches up from the database.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from companion.db import session

log = logging.getLogger(__name__)

#: Task names: the contract between the web side and `workers/`.
PING = "system.ping"

_PENDING = "companion.pending_tasks"
_celery: Celery | None = None


def configure(celery: Celery) -> None:
    global _celery
    _celery = celery


def enqueue_after_commit(task_name: str, **ids: int | str) -> None:
    """Queue a task to be sent after COMMIT; dropped on ROLLBACK. Ids and small values only, no PHI."""
    session().info.setdefault(_PENDING, []).append((task_name, ids))


def send_now(task_name: str, **kwargs: Any) -> bool:
    """Send a task immediately; False (and a log line) when the broker cannot be reached."""
    if _celery is None:
        log.warning("task not sent: no celery app", extra={"task": task_name})
        return False
    try:
        _celery.send_task(task_name, kwargs=kwargs)
    except Exception:  # the broker may be down; the sweeps catch up from the database
        log.warning("task not sent: broker unreachable", extra={"task": task_name})
        return False
    return True


@event.listens_for(Session, "after_commit")
def _send_pending(sess: Session) -> None:
    for task_name, ids in sess.info.pop(_PENDING, []):
        send_now(task_name, **ids)


@event.listens_for(Session, "after_rollback")
def _drop_pending(sess: Session) -> None:
    sess.info.pop(_PENDING, None)
