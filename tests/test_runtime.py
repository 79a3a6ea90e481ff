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


def test_embedded_redis_under_a_long_path_is_stopped_by_its_last_user(tmp_path: Path) -> None:
    """redis-server's title (which names its config file) is cut at 255 bytes: under a deep instance
    folder the server was not recognised as ours, so it was never stopped (and a second one started)."""
    import psutil

    instance = tmp_path / ("deep" * 30) / "i"
    _url, server = runtime.embedded_redis(instance)
    pid = int(server.pidfile.read_text())
    try:
        assert str(server.config) not in " ".join(psutil.Process(pid).cmdline())  # the title is cut
        assert server._server_pid() == pid  # still known as ours: the next user joins, the last stops it
    finally:
        server.release()
        if server.socket.parent != server.dir:  # a path this long puts the socket in a folder in /tmp
            server.socket.parent.rmdir()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
