"""companion.runtime pieces that the default test path (local servers over TCP) never exercises."""

from __future__ import annotations

from pathlib import Path

import redis as redis_lib
from celery import Celery

from companion import runtime
from companion.broker import celery_settings


def test_celery_on_a_unix_socket_uses_the_database_in_the_url(tmp_path: Path) -> None:
    """kombu ignores `?db=N` on `redis+socket://`: tasks went to database 0 whatever REDIS_URL said."""
    assert runtime.celery_broker_url("unix:///s/r.sock?db=6") == "redis+socket:///s/r.sock?virtual_host=6"
    assert runtime.celery_broker_url("unix:///s/r.sock") == "redis+socket:///s/r.sock"
    url, server = runtime.embedded_redis(tmp_path / "i")
    sender = Celery("socket-db-test")
    sender.conf.update(celery_settings(f"{url}?db=6", 60))
    try:
        sender.send_task("system.ping", kwargs={"token": "socket-db"})
        queued = {n: redis_lib.Redis.from_url(f"{url}?db={n}").llen("celery") for n in (0, 6)}
        assert queued == {0: 0, 6: 1}
    finally:
        sender.close()
        server.release()
