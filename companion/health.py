"""Liveness and readiness for load balancers and `companion up`."""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from companion.auth.access import PUBLIC, allow
from companion.db import session

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


def _redis_ok() -> bool:
    try:
        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@bp.get("/readyz")
@allow(PUBLIC)
def readyz():
    """Ready to serve: PostgreSQL and Redis both reachable, else 503 naming what is down."""
    checks = {"postgresql": _postgres_ok(), "redis": _redis_ok()}
    ready = all(checks.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {k: "ok" if v else "down" for k, v in checks.items()},
    }
    return jsonify(body), 200 if ready else 503
