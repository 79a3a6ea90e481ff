"""Liveness and readiness for load balancers, operators and `companion up`.

* `/healthz`: liveness. The process answers; nothing else is checked and it is never rate-limited, so
  a probe every second never marks a healthy node down and a database outage never restarts the web tier.
* `/metrics`: Prometheus text for a scrape presenting `Bearer METRICS_TOKEN`; 404 while no token is set.
* `/readyz`: the whole system, as `companion status` prints it: PostgreSQL, Redis, the worker's and
  beat's heartbeats (stale after HEARTBEAT_STALE_SECONDS, companion/heartbeats.py) and the queue's
  depth. 503 names what is down or stale.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import text

from companion import heartbeats, metrics
from companion.auth.access import PUBLIC, allow
from companion.db import session
from companion.domain.errors import NotFound, Unauthenticated

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@allow(PUBLIC)
def healthz():
    """The process answers. Nothing else is checked, so a database outage never restarts the web tier."""
    return jsonify(status="ok")


def _postgres_ok() -> bool:
    try:
        session.execute(text("SELECT 1"))
        return True
    except Exception:
        session.rollback()
        return False
    finally:
        session.remove()


def _iso(at: float | None) -> str | None:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if at is not None else None


@dataclass(frozen=True)
class Readiness:
    #: name -> "ok", "down" (PostgreSQL, Redis), "stale" or "missing" (worker, beat), "unknown" (no Redis)
    checks: dict[str, str]
    worker: heartbeats.Liveness | None
    beat: heartbeats.Liveness | None
    queue_depth: int | None

    @property
    def ready(self) -> bool:
        return all(v == "ok" for v in self.checks.values())

    @property
    def failing(self) -> list[str]:
        return [name for name, status in self.checks.items() if status != "ok"]

    def as_json(self) -> dict[str, Any]:
        def described(liveness: heartbeats.Liveness | None) -> dict[str, Any] | None:
            if liveness is None:
                return None
            body = asdict(liveness)
            body["last_seen"] = _iso(liveness.last_seen)
            return body

        return {
            "status": "ready" if self.ready else "unavailable",
            "checks": self.checks,
            "failing": self.failing,
            "heartbeats": {"worker": described(self.worker), "beat": described(self.beat)},
            "queue_depth": self.queue_depth,
        }


def readiness(now: float | None = None) -> Readiness:
    """Check everything readiness covers (inside an app context); never raises."""
    now = time.time() if now is None else now
    stale_after = current_app.config["COMPANION_HEARTBEAT_STALE_SECONDS"]
    checks = {"postgresql": "ok" if _postgres_ok() else "down"}
    worker = beat = None
    depth = None
    try:
        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            client.ping()
            beats = heartbeats.read(client)
            depth = heartbeats.queue_depth(client)
        finally:
            client.close()
    except Exception:
        checks.update(redis="down", worker="unknown", beat="unknown")
        return Readiness(checks, None, None, None)
    worker = heartbeats.judge_worker(beats, now=now, stale_after=stale_after)
    beat = heartbeats.judge_beat(beats, now=now, stale_after=stale_after)
    checks.update(redis="ok", worker=worker.status, beat=beat.status)
    return Readiness(checks, worker, beat, depth)


@bp.get("/readyz")
@allow(PUBLIC)
def readyz():
    """Ready: PostgreSQL and Redis reachable, a worker and beat seen within 3 minutes; else 503 naming
    what is not."""
    report = readiness()
    return jsonify(report.as_json()), 200 if report.ready else 503


@bp.get("/metrics")
@allow(PUBLIC)  # not a user's route: the scrape's own bearer token, checked below
def prometheus_metrics():
    """Every process's counters (companion/metrics.py) and what Redis and PostgreSQL say now."""
    expected = current_app.config["COMPANION_METRICS_TOKEN"]
    if not expected:
        raise NotFound("Metrics are off: set METRICS_TOKEN.")
    if not metrics.token_matches(request.headers.get("Authorization"), expected):
        raise Unauthenticated("A scrape must send Authorization: Bearer <METRICS_TOKEN>.")
    body, content_type = metrics.exposition(
        metrics.SystemCollector(current_app.config["REDIS_URL"], current_app.extensions["engine"])
    )
    return Response(body, content_type=content_type)
