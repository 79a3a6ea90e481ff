"""Tasks about the system itself."""

from __future__ import annotations

import logging
import time

import redis
from celery import shared_task
from flask import current_app

from companion import jobs

log = logging.getLogger(__name__)

HEARTBEAT_KEY = "companion:worker:heartbeat"


@shared_task(name=jobs.PING)
def ping(token: str = "") -> str:
    """Echo: lets tests and operators see a task go through the broker and come back."""
    client = redis.Redis.from_url(current_app.config["REDIS_URL"])
    try:
        client.set(f"companion:ping:{token}", "pong", ex=300)
    finally:
        client.close()
    return token


@shared_task(name="system.heartbeat")
def heartbeat() -> None:
    """Beat sends this every minute; the worker records when it last ran."""
    client = redis.Redis.from_url(current_app.config["REDIS_URL"])
    try:
        client.set(HEARTBEAT_KEY, str(int(time.time())), ex=600)
    finally:
        client.close()
