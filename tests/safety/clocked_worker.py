"""A real Celery worker, started as production starts it (`workers.celery_app`, solo pool), whose
clock starts at an instant the test chooses and then runs on: the scenario table's histories end at
fixed instants, and the rules read `now`. The worker's clock is moved for the whole process, so the
countdowns it sends and the ones it waits for agree.

    python -m tests.safety.clocked_worker 2026-11-21T02:00:00+00:00

After each task the worker appends {task, kwargs, result, state} to the Redis list `RAN`, so a test
waits for the task it needs instead of sleeping.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime

RAN = "companion:test:ran"


def main(instant: str) -> None:
    import time_machine

    time_machine.travel(datetime.fromisoformat(instant), tick=True).start()

    import redis
    from celery.signals import task_postrun

    from workers.celery_app import app, flask_app

    client = redis.Redis.from_url(flask_app.config["REDIS_URL"])

    @task_postrun.connect(weak=False)
    def _record(task=None, kwargs=None, retval=None, state=None, **_: object) -> None:
        ran = {"task": task.name, "kwargs": kwargs, "result": repr(retval), "state": state}
        client.rpush(RAN, json.dumps(ran, default=str))

    app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", "--without-heartbeat", "--without-gossip"])


if __name__ == "__main__":
    main(sys.argv[1])
