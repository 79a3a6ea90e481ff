"""What `companion up` runs and how it keeps it running: the web, worker and beat commands, the restart
backoff of a child that keeps exiting, each child's metrics folder, and signals to a child's process group."""

from __future__ import annotations

import os
import subprocess
from contextlib import suppress
from pathlib import Path

#: Seconds the children get to finish in-flight work after Ctrl-C before they are killed.
STOP_GRACE = 15
#: A child that exits is started again after a wait that doubles up to this (seconds) ...
RESTART_MAX_DELAY = 30.0
#: ... while it keeps exiting within this many seconds of its start.
RESTART_STABLE = 60.0


#: gthread, with connections shared between workers by how busy each is (companion/gunicorn_worker.py).
WEB_WORKER_CLASS = "companion.gunicorn_worker.BalancedThreadWorker"
#: gunicorn's request-head limits, above the app's own (8190 is the longest request line gunicorn takes).
GUNICORN_HEAD_LIMITS = ("--limit-request-line", "8190", "--limit-request-fields", "200",
                        "--limit-request-field_size", "16384")  # fmt: skip


def child_commands(
    python: str, host: str, port: int, web_workers: int, instance: Path
) -> dict[str, list[str]]:
    # fmt: off
    return {
        # No gunicorn access log: the app logs every request with its route template, never the
        # concrete path (which can hold a member's dates and ids).
        # gunicorn's head limits stand above the app's (companion/api.py MAX_REQUEST_TARGET, ...), so an
        # oversized request line or header gets the app's JSON 414/431, not gunicorn's HTML.
        # JSON logs and the metrics folder's cleanup: companion/gunicorn_conf.py. Celery's --quiet
        # drops its plain-text banner; its log lines are the app's JSON.
        "web": [python, "-m", "gunicorn", "--config", "python:companion.gunicorn_conf",
                "--bind", f"{host}:{port}", "--workers", str(web_workers),
                "--worker-class", WEB_WORKER_CLASS, "--threads", "4",
                "--graceful-timeout", str(STOP_GRACE - 5),
                *GUNICORN_HEAD_LIMITS, "companion.wsgi:app"],
        "worker": [python, "-m", "celery", "-A", "workers.celery_app", "--quiet", "worker",
                   "--loglevel", "INFO", "--concurrency", "2", "--hostname", f"companion-{port}@%h"],
        "beat": [python, "-m", "celery", "-A", "workers.celery_app", "--quiet", "beat", "--loglevel", "INFO",
                 "--schedule", str(instance / "celerybeat-schedule")],
    }


class Restarts:
    """When to start a child again after it exited: at once the first time, then after doubling
    waits (1, 2, 4 ... RESTART_MAX_DELAY s) while it keeps exiting within RESTART_STABLE s of its start."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.since = 0.0
        self.due_at: float | None = None

    def started(self, now: float) -> None:
        self.since, self.due_at = now, None

    def exited(self, now: float) -> float:
        if now - self.since >= RESTART_STABLE:
            self.delay = 0.0  # it had been running well: this exit is news, not a loop
        self.due_at = now + self.delay
        delay, self.delay = self.delay, min(max(1.0, self.delay * 2), RESTART_MAX_DELAY)
        return delay


def metrics_folder(instance: Path, name: str) -> str:
    """One child's multiprocess metrics folder (companion/metrics.py), emptied before it starts."""
    import shutil

    folder = instance / "metrics" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return str(folder)


def signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    """Signal a child and everything it forked (gunicorn workers, the Celery pool): its own process group."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, sig)
