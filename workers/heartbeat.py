"""The worker's and beat's own heartbeats (companion/heartbeats.py), written from inside each process.

* `WorkerHeartbeat`, a worker bootstep: writes at start, then every 30 seconds (heartbeats.interval) from
  the worker's own timer (the main process's event loop: a stuck loop stops it), and removes its field
  when the worker stops cleanly, so readiness turns 503 at once rather than after 3 minutes.
* `HeartbeatScheduler`, beat's scheduler: the default persistent one, writing beat's key from its tick
  (its sleep is capped at the heartbeat's period).

A Redis outage never stops either process: a heartbeat that cannot be written is skipped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import bootsteps
from celery.beat import PersistentScheduler

from companion import heartbeats

log = logging.getLogger(__name__)


def _client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)


class WorkerHeartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None

    def _redis_url(self, worker: Any) -> str:
        return worker.app.flask_app.config["REDIS_URL"]

    def _interval(self, worker: Any) -> float:
        return heartbeats.interval(worker.app.flask_app.config["COMPANION_HEARTBEAT_STALE_SECONDS"])

    def beat(self, worker: Any) -> None:
        try:
            client = _client(self._redis_url(worker))
            try:
                heartbeats.write_worker(client, worker.hostname, time.time())
            finally:
                client.close()
        except redis.RedisError as exc:
            log.warning("worker heartbeat not written", extra={"error": type(exc).__name__})

    def start(self, worker: Any) -> None:
        self.beat(worker)
        self.tref = worker.timer.call_repeatedly(self._interval(worker), self.beat, (worker,))

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        try:
            client = _client(self._redis_url(worker))
            try:
                heartbeats.remove_worker(client, worker.hostname)
            finally:
                client.close()
        except redis.RedisError:
            pass  # the field goes stale instead


class HeartbeatScheduler(PersistentScheduler):
    """Beat's default scheduler, plus its heartbeat."""

    _last_heartbeat = 0.0

    def _redis_url(self) -> str:
        return self.app.flask_app.config["REDIS_URL"]

    def _interval(self) -> float:
        return heartbeats.interval(self.app.flask_app.config["COMPANION_HEARTBEAT_STALE_SECONDS"])

    def tick(self, *args: Any, **kwargs: Any) -> float:
        now = time.time()
        every = self._interval()
        if now - self._last_heartbeat >= every:
            try:
                client = _client(self._redis_url())
                try:
                    heartbeats.write_beat(client, now)
                finally:
                    client.close()
                self._last_heartbeat = now
            except redis.RedisError as exc:
                log.warning("beat heartbeat not written", extra={"error": type(exc).__name__})
        # Never sleep past the next heartbeat, however far the next task is.
        return min(super().tick(*args, **kwargs), every)

    def close(self) -> None:
        try:
            client = _client(self._redis_url())
            try:
                heartbeats.remove_beat(client)
            finally:
                client.close()
        except redis.RedisError:
            pass
        super().close()
