"""gunicorn's settings for Companion: `gunicorn -c python:companion.gunicorn_conf companion.wsgi:app`.

* Logs: gunicorn's own lines (start-up, worker boots and exits, errors) in the app's JSON format.
  No access log: the app logs every request with its route template, never the concrete path.
* Metrics (companion/metrics.py): the multiprocess folder is emptied when the arbiter starts, and a
  worker's live-gauge files are dropped when it exits.

Bind address, workers and threads stay on the command line (docker-compose.yml, `companion up`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

#: gthread, with connections shared between workers by how busy each is.
worker_class = "companion.gunicorn_worker.BalancedThreadWorker"
accesslog = None
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "companion.logs.JsonFormatter"}},
    "handlers": {
        "json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    },
    # The app adds its own JSON handler to the root logger (companion/logs.py): none here, or twice.
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"handlers": ["json"], "level": "INFO", "propagate": False},
        # Never: gunicorn's access lines carry the concrete path (a member's dates and ids).
        "gunicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
    },
}


def on_starting(_server: Any) -> None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        path = Path(folder)
        if path.is_dir():
            for child in path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        path.mkdir(parents=True, exist_ok=True)


def child_exit(_server: Any, worker: Any) -> None:
    from companion.metrics import mark_process_dead

    mark_process_dead(worker.pid)
