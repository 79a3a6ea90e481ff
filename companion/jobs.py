"""Send Celery tasks by name, and only once the surrounding transaction commits.

`companion` never imports `workers`: tests/test_architecture.py checks every name here is a task the
worker registers. This is at most once by design: if Redis is down at commit, the data is saved and
the message is lost, so every on-event task has a periodic sweep that catches up from the database.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from companion.db import session

log = logging.getLogger(__name__)

#: Task names: the contract between the web side and `workers/`.
PING = "system.ping"
#: One nudge dispatcher tick (beat's every minute; `helper=True`: a helper a busy tick asked for).
DISPATCH_NUDGES = "nudges.dispatch_due"
#: Deliver nudges by id (claims those still due, pushes them); the dispatcher re-sends what is lost.
DELIVER_NUDGES = "nudges.deliver"
#: Craving support right after a high rating (member and craving ids); its row is made first.
CRAVING_SUPPORT = "nudges.craving_support"
#: Build one insurer export (its id); `exports.sweep` re-sends what a lost message left queued.
BUILD_EXPORT = "exports.build"
SWEEP_EXPORTS = "exports.sweep"
#: Re-run the safety rules for one member after a new or changed entry (debounced by the worker).
SCAN_MEMBER = "safety.scan_member"
#: Hand pending staff notifications (urgent flags, escalations) to their channels.
DELIVER_NOTIFICATIONS = "safety.deliver_notifications"

_PENDING = "companion.pending_tasks"
#: After a failed send, skip sending for this long: the request path never waits on a broker that is
#: down, and the periodic sweeps re-send from the database what was skipped.
BROKER_BACKOFF_SECONDS = 15.0
_celery: Celery | None = None
_broker_down_until = 0.0
#: One producer per thread, kept between sends: Celery's pool hands out a producer per send and revives
#: its channel each time, most of a send's CPU. A producer is not thread-safe, hence per thread.
_local = threading.local()


def configure(celery: Celery) -> None:
    global _celery
    _celery = celery


def enqueue_after_commit(task_name: str, **ids: int | str) -> None:
    """Queue a task to be sent after COMMIT; dropped on ROLLBACK. Ids and small values only, no PHI."""
    session().info.setdefault(_PENDING, []).append((task_name, ids))


def enqueue_once_after_commit(task_name: str, **ids: int | str) -> None:
    """`enqueue_after_commit`, unless the same task with the same ids is already pending in this
    transaction (a sync batch of 500 entries asks for one member scan, not 500)."""
    pending = session().info.setdefault(_PENDING, [])
    if (task_name, ids) not in pending:
        pending.append((task_name, ids))


def send_now(task_name: str, **kwargs: Any) -> bool:
    """Send a task immediately; False (and a log line) when the broker cannot be reached."""
    global _broker_down_until
    if _celery is None:
        log.warning("task not sent: no celery app", extra={"task": task_name})
        return False
    if time.monotonic() < _broker_down_until:
        log.info("task not sent: broker recently unreachable", extra={"task": task_name})
        return False
    try:
        _celery.send_task(task_name, kwargs=kwargs, producer=_producer(_celery))
    except Exception:  # the broker may be down; the sweeps catch up from the database
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        _drop_producer()
        log.warning("task not sent: broker unreachable", extra={"task": task_name})
        return False
    return True


def _producer(celery: Celery) -> Any:
    """This thread's producer for `celery`, made on first use (lazily: no connection until a send).
    Keyed by process too: a forked worker child must not write on its parent's socket."""
    held = getattr(_local, "held", None)
    if held is None or held[0] is not celery or held[1] != os.getpid():
        if held is not None and held[1] == os.getpid():
            _drop_producer()
        held = _local.held = (celery, os.getpid(), celery.amqp.Producer(celery.connection_for_write()))
    return held[2]


def _drop_producer() -> None:
    """Forget this thread's producer after a failed send: the next send, after the back-off, starts
    from a fresh connection."""
    held = getattr(_local, "held", None)
    _local.held = None
    if held is not None and held[1] == os.getpid():
        held[2].connection.collect()  # frees its sockets without talking to the broker


@event.listens_for(Session, "after_commit")
def _send_pending(sess: Session) -> None:
    if sess.in_nested_transaction():
        return  # a savepoint was released (SQLAlchemy fires after_commit for it): nothing is committed yet
    for task_name, ids in sess.info.pop(_PENDING, []):
        send_now(task_name, **ids)


@event.listens_for(Session, "after_rollback")
def _drop_pending(sess: Session) -> None:
    if sess.in_nested_transaction():
        return  # a savepoint rolled back (one sync item): what the transaction asked for still stands
    sess.info.pop(_PENDING, None)
