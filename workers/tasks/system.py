"""Tasks about the system itself."""

from __future__ import annotations

import logging
import time

import redis
from celery import shared_task
from flask import current_app

from companion import heartbeats, jobs

log = logging.getLogger(__name__)


@shared_task(name=jobs.PING)
def ping(token: str = "") -> str:
    """Echo: lets tests and operators see a task go through the broker and come back."""
    client = redis.Redis.from_url(current_app.config["REDIS_URL"])
    try:
        client.set(f"companion:ping:{token}", "pong", ex=300)
    finally:
        client.close()
    return token


@shared_task(name="system.heartbeat", bind=True)
def heartbeat(self) -> None:
    """Beat sends this every minute: the worker that runs it records that the path beat → broker →
    worker works (its own timer writes the same field between two runs; companion/heartbeats.py)."""
    client = redis.Redis.from_url(current_app.config["REDIS_URL"])
    try:
        heartbeats.write_worker(client, self.request.hostname or "unknown", time.time())
    finally:
        client.close()
