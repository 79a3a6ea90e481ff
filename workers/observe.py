"""The worker's metrics: every task by name and state, its run time (Celery signals), and a port of its
own to scrape them from (WORKER_METRICS_BIND), adding up the pool processes' counters when
PROMETHEUS_MULTIPROC_DIR is set (companion/metrics.py)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery.signals import task_postrun, task_prerun, worker_process_shutdown, worker_ready

from companion import metrics

log = logging.getLogger(__name__)

_started: dict[str, float] = {}


@task_prerun.connect
def _task_started(task_id: str | None = None, **_kwargs: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@task_postrun.connect
def _task_finished(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_kw: Any
) -> None:
    name = getattr(task, "name", None) or "unknown"
    metrics.TASKS.labels(task=name, state=state or "UNKNOWN").inc()
    started = _started.pop(task_id or "", None)
    if started is not None:
        metrics.TASK_DURATION.labels(task=name).observe(time.monotonic() - started)


@worker_process_shutdown.connect
def _pool_process_gone(**_kwargs: Any) -> None:
    metrics.mark_process_dead(os.getpid())


@worker_ready.connect
def _serve_metrics(sender: Any = None, **_kwargs: Any) -> None:
    """After the pool has forked, so no pool process inherits the server's thread."""
    from prometheus_client import start_http_server

    bind = sender.app.flask_app.config["COMPANION_WORKER_METRICS_BIND"] if sender is not None else ""
    if not bind:
        return
    host, _, port = bind.rpartition(":")
    if not os.environ.get(metrics.MULTIPROC_ENV):
        log.warning("worker metrics without PROMETHEUS_MULTIPROC_DIR show only the main process's counters")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=metrics.counted_registry())
    log.info("worker metrics served", extra={"bind": bind})
