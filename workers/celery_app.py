"""Worker and beat entry point: `celery -A workers.celery_app worker` / `... beat`.

The app is built with the same settings as the web side (companion.broker). Resolving the services
here means a worker started alone, with DATABASE_URL/REDIS_URL set, needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

from celery.signals import task_postrun, worker_process_init

from companion import db
from companion.app import create_app
from companion.config import Config
from companion.runtime import resolve
from workers.heartbeat import WorkerHeartbeat
from workers.schedule import BEAT_SCHEDULE

_config = Config.from_env()
_services = resolve(
    database_url=_config.database_url, redis_url=_config.redis_url, instance_path=Path(_config.instance_path)
)
flask_app = create_app(Config.from_env(database_url=_services.database_url, redis_url=_services.redis_url))
celery = flask_app.extensions["celery"]
celery.conf.beat_schedule = BEAT_SCHEDULE
celery.conf.beat_max_loop_interval = 30
celery.conf.include = ["workers.tasks"]
# Beat's own heartbeat (workers/heartbeat.py); `celery beat --scheduler` still overrides it.
celery.conf.beat_scheduler = "workers.heartbeat:HeartbeatScheduler"
celery.flask_app = flask_app  # the heartbeats read REDIS_URL from it
celery.steps["worker"].add(WorkerHeartbeat)

import workers.observe  # noqa: E402  (task metrics and the worker's metrics port)
import workers.tasks  # noqa: E402,F401  (registers every task by its explicit name)

app = celery


@worker_process_init.connect
def _fresh_connections(**_kwargs: object) -> None:
    # Pooled connections must not cross fork(): each pool process opens its own.
    flask_app.extensions["engine"].dispose(close=False)


@task_postrun.connect
def _release_session(**_kwargs: object) -> None:
    db.session.remove()
