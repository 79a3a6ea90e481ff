"""The Celery app's settings (DESIGN.md). The web side only sends tasks by name; `workers/` runs them."""

from __future__ import annotations

from typing import Any

import kombu.transport
import redis
from celery import Celery, Task
from flask import Flask
from kombu.transport import redis as kombu_redis

from companion.runtime import celery_broker_url


class RedisChannel(kombu_redis.Channel):
    """kombu's Redis channel, except that restoring unacknowledged messages through a connection that is
    already collected fails as the connection error it is, instead of an AttributeError.

    Celery 5.7's consumer, on losing the broker, first `collect()`s its connection, which detaches the
    transport (`connection.client` becomes None), then `close()`s it. When the first close of the task
    channel stopped early (a BRPOP in flight, or another channel's close failing first), the second one
    restores the prefetched messages through a new pool built from `connection.client.hostname`: an
    AttributeError, which `ignore_errors` does not catch, and the worker exits ("Unrecoverable error").
    Redis is down at that moment, so the restore cannot succeed anyway: the consumer reconnects, and the
    messages stay in the unacknowledged index until the visibility timeout restores them (the rows in
    PostgreSQL are the truth, and beat's passes do what a lost message would have done)."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is already closed")
        params: dict[str, Any] = super()._connparams(asynchronous=asynchronous)
        return params


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


# Every `redis://` and `redis+socket://` broker URL (worker, beat and the web side) resolves to it.
kombu.transport.TRANSPORT_ALIASES["redis"] = f"{__name__}:RedisTransport"


def celery_settings(redis_url: str, visibility_timeout: int) -> dict[str, Any]:
    broker = celery_broker_url(redis_url)
    transport = {
        # Redis re-delivers a task not acknowledged within this time: keep it above the longest task,
        # and never schedule with eta/countdown beyond a few minutes (STACK.md 3.3).
        "visibility_timeout": visibility_timeout,
        "socket_connect_timeout": 1,
        "socket_timeout": 5,
        "retry_on_timeout": True,
    }
    return {
        "broker_url": broker,
        "broker_transport_options": transport,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # A task is acknowledged after it ran, and re-delivered if its worker died: tasks are idempotent.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_soft_shutdown_timeout": 10,
        # Publishing must never hold a request hostage when Redis is down: a short, bounded retry.
        "broker_connection_timeout": 1,
        "broker_connection_retry_on_startup": True,
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.2,
        },
        "timezone": "UTC",
        "enable_utc": True,
        # Past-due periodic runs after beat downtime are skipped, not replayed in a burst.
        "beat_cron_starting_deadline": 120,
        "task_time_limit": 600,
        "task_soft_time_limit": 540,
        "worker_hijack_root_logger": False,
    }


def make_celery(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.conf.update(
        celery_settings(app.config["REDIS_URL"], app.config["COMPANION_CELERY_VISIBILITY_TIMEOUT"])
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
